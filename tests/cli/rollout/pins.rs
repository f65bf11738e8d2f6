//! `pin` and `unpin`: checked against the Rollout and its history before anything is written,
//! then followed by the instances; with `history` and `undo --to-revision` around them.

use baton::api::rollout::RolloutPhase;
use kube::ResourceExt;

use super::{cli, cli_exits, v1_deployed, NAME};
use crate::support::*;

/// `pin` names what is wrong with the instances or the version and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_is_checked_against_the_rollout_and_its_history_before_writing() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&env.manifest_v(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    env.wait_healthy(NAME, "v2", 3).await;
    let before = env.get(NAME).await.resource_version();
    for (args, message) in [
        (
            vec!["pin", NAME, "--instances", "svc-7", "--version", "v1"],
            "error: rollout svc has no instance svc-7: its instances are svc-0 to svc-2 (spec.replicas: 3)\n",
        ),
        (
            vec!["pin", NAME, "--instances", "svc-0,web-1,svc-01", "--version", "v1"],
            "error: rollout svc has no instance web-1, svc-01: its instances are svc-0 to svc-2 (spec.replicas: 3)\n",
        ),
        (
            vec!["pin", NAME, "--instances", "svc-0", "--version", "v0"],
            "error: version v0 is not in the history of rollout svc (versions: v1, v2); see `baton rollout history svc`\n",
        ),
        (
            vec!["pin", NAME, "--instances", "svc-9", "--version", "v0"],
            "error: rollout svc has no instance svc-9: its instances are svc-0 to svc-2 (spec.replicas: 3); version v0 is not in the history of rollout svc (versions: v1, v2); see `baton rollout history svc`\n",
        ),
        (
            vec!["unpin", NAME, "--instances", "svc-1"],
            "error: svc-1 is not pinned (pinned: none)\n",
        ),
    ] {
        let r = cli(&env, &args).await;
        assert_eq!((r.code, r.stderr.as_str(), r.stdout.as_str()), (1, message, ""), "{args:?}");
    }
    assert_eq!(env.get(NAME).await.resource_version(), before, "nothing was written");
    let r = cli(&env, &["pin", NAME, "--instances", "svc-1", "--version", "v1"]).await;
    assert_eq!(r.stdout, "rollout.baton.dev/svc pinned svc-1 to v1\n", "{r}");
    let pinned = env.get(NAME).await;
    assert_eq!(pinned.spec.pins.len(), 1);
    // The same pin again changes nothing, and says so.
    let r = cli(&env, &["pin", NAME, "--instances", "svc-1", "--version", "v1"]).await;
    assert_eq!(
        r.stdout, "rollout.baton.dev/svc pinned svc-1 to v1 (no change)\n",
        "{r}"
    );
    assert_eq!(
        pinned
            .annotations()
            .get("kubernetes.io/change-cause")
            .map(String::as_str),
        Some("baton rollout pin svc --instances svc-1 --version v1")
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pin_unpin_and_undo_to_revision() {
    let (env, op) = v1_deployed().await;
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    let st = status(&r);

    // history: both revisions, the current one marked (the full table is asserted in
    // `history::set_image_history_and_the_deploy_records`).
    let o = cli_exits(&env, &["history", NAME], 0).await;
    let text = &o.stdout;
    let table: String = text.split("\n\n").next().unwrap_or_default().to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let v1_line: Vec<&str> = lines[1].split_whitespace().collect();
    let v2_line: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&v1_line[..2], ["1", "v1"], "{text}");
    assert_eq!(&v2_line[..2], ["2", "v2"], "{text}");
    assert_eq!(v2_line.last(), Some(&"current,update"), "{text}");
    assert_eq!(v1_line.last(), Some(&"-"), "no mark on the old revision: {text}");
    let o = cli(&env, &["history", NAME, "-o", "wide"]).await;
    assert!(o.stdout.contains(st.current_revision.as_deref().unwrap()), "{}", o);

    // pin / unpin.
    let o = cli_exits(&env, &["pin", NAME, "--instances", "svc-0,svc-2", "--version", "v1"], 0).await;
    assert_eq!(o.stdout.trim(), "rollout.baton.dev/svc pinned svc-0,svc-2 to v1");
    let r = env
        .wait_rollout(NAME, "svc-0 and svc-2 on v1", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Healthy)
                && status(r).instances.iter().all(|i| i.ready)
                && instance_versions(r) == [("v1".to_string(), 2), ("v2".to_string(), 1)].into()
        })
        .await;
    let pinned: Vec<String> = status(&r)
        .instances
        .iter()
        .filter(|i| i.pinned)
        .map(|i| i.name.clone())
        .collect();
    assert_eq!(pinned, ["svc-0", "svc-2"]);
    assert_eq!(r.spec.pins.len(), 1);
    let o = cli(&env, &["status", NAME, "--watch=false"]).await;
    let pins: Vec<String> = o
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("svc-"))
        .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(pins, ["pinned to v1", "-", "pinned to v1"], "{}", o);
    let o = cli_exits(&env, &["unpin", NAME, "--instances", "svc-2"], 0).await;
    assert_eq!(o.stdout.trim(), "rollout.baton.dev/svc unpinned svc-2");
    env.wait_rollout(NAME, "only svc-0 pinned", LONG, |r| {
        current_generation(r)
            && status(r).phase == Some(RolloutPhase::Healthy)
            && instance_versions(r) == [("v1".to_string(), 1), ("v2".to_string(), 2)].into()
    })
    .await;
    let o = cli_exits(&env, &["unpin", NAME], 0).await;
    assert_eq!(o.stdout.trim(), "rollout.baton.dev/svc unpinned all instances");
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert!(r.spec.pins.is_empty());
    // A second `unpin` has nothing to unpin: it writes nothing and says so, as `kubectl patch`
    // says of a patch that changes nothing.
    let o = cli_exits(&env, &["unpin", NAME], 0).await;
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("rollout.baton.dev/svc unpinned all instances (no change)\n", "")
    );

    // A pin of a version that is not in the history is refused before anything is written.
    let before = env.get(NAME).await.resource_version();
    let o = cli_exits(&env, &["pin", NAME, "--instances", "svc-1", "--version", "v9"], 1).await;
    assert_eq!(
        o.stderr,
        "error: version v9 is not in the history of rollout svc (versions: v1, v2); see `baton rollout history svc`\n"
    );
    assert_eq!(env.get(NAME).await.resource_version(), before);

    // undo --to-revision 1.
    let o = cli_exits(&env, &["undo", NAME, "--to-revision", "1"], 0).await;
    assert_eq!(o.stdout.trim(), "rollout.baton.dev/svc rolled back to revision 1 (v1)");
    let r = env.wait_healthy(NAME, "v1", 3).await;
    assert_eq!(r.spec.version, "v1");
    assert_eq!(cond(&r, "InvalidSpec").0, "False");
    // An unknown revision is an error that says where to look.
    let o = cli(&env, &["undo", NAME, "--to-revision", "42"]).await;
    assert_ne!(o.code, 0, "{}", o);
    assert!(
        o.stderr.contains("revision 42 not found") && o.stderr.contains("baton rollout history svc"),
        "{}",
        o
    );
    op.stop().await;
}
