//! The rollout commands: `set image`, the change cause and who changed the spec in
//! `history`, `history --revision N`, the deploy and rollback records, `pin` checked before it
//! writes, and `status --watch` on a terminal and in a log. The real binary and real kubectl
//! against the simulator, with the operator running in-process.
#[path = "cli_support/mod.rs"]
mod cli_support;
#[path = "support/mod.rs"]
mod support;

use baton::api::rollout::RolloutPhase;
use cli_support::*;
use kube::ResourceExt;
use serde_json::{json, Value};
use support::kubectl::Kubectl;
use support::*;

const NAME: &str = "svc";

async fn cli(env: &Env, args: &[&str]) -> Run {
    let mut all = vec!["rollout"];
    all.extend_from_slice(args);
    baton(env.sim.kubeconfig_path(), &all).await
}

fn fast(version: &str, image: &str) -> Value {
    let mut m = manifest(NAME, 3, version, image);
    m["spec"]["progressDeadlineSeconds"] = json!(3);
    m
}

/// `set image` deploys and records why; `history` says when, why and who for each revision
/// (a cause left by an earlier command is not credited to a later `kubectl apply`), lists each
/// deploy and rollback with its outcome, and shows one revision's template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_history_and_the_deploy_records() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&fast("v1", "svc:v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;

    let r = cli(&env, &["set", "image", NAME, "app=svc:v2"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "rollout.baton.dev/svc image updated (version v2)\n", ""),
        "{r}"
    );
    let rollout = env.wait_healthy(NAME, "v2", 3).await;
    assert_eq!(
        rollout
            .annotations()
            .get("kubernetes.io/change-cause")
            .map(String::as_str),
        Some("baton rollout set image svc app=svc:v2")
    );
    let r = cli(&env, &["set", "image", NAME, "app=svc:v2"]).await;
    assert_eq!(r.stdout, "rollout.baton.dev/svc unchanged\n", "{r}");
    let r = cli(&env, &["set", "image", NAME, "web=svc:v2"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: unable to find container named \"web\"\n")
    );

    // kubectl apply changes the template: its manager is credited, not baton's old cause.
    let kubectl = Kubectl::new(&env.sim);
    let file = kubectl.file("v3.json", &fast("v3", "svc:v3"));
    kubectl.ok(&["apply", "-f", &file]).await;
    env.wait_healthy(NAME, "v3", 3).await;
    let r = cli(&env, &["undo", NAME, "--to-revision", "1"]).await;
    assert_eq!(
        r.stdout, "rollout.baton.dev/svc rolled back to revision 1 (v1)\n",
        "{r}"
    );
    env.wait_healthy(NAME, "v1", 3).await;
    let r = cli(
        &env,
        &["set", "image", NAME, "app=svc:v4-never-ready", "--version", "v4"],
    )
    .await;
    assert_eq!(r.code, 0, "{r}");
    env.wait_rollout(NAME, "v4 rolled back", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::RolledBack)
    })
    .await;

    let r = cli(&env, &["history", NAME]).await;
    assert_eq!(r.code, 0, "{r}");
    let (revisions, records) = r.stdout.split_once("\n\n").expect("two tables");
    assert_eq!(
        cells(revisions, &["AGE"]),
        expect(&[
            &["REVISION", "VERSION", "AGE", "CHANGE-CAUSE", "CHANGED-BY", "STATUS"],
            &["1", "v1", "<age>", "<none>", "test", "current"],
            &[
                "2",
                "v2",
                "<age>",
                "baton rollout set image svc app=svc:v2",
                "baton",
                "-"
            ],
            &["3", "v3", "<age>", "<none>", "kubectl-client-side-apply", "-"],
            &[
                "4",
                "v4",
                "<age>",
                "baton rollout set image svc app=svc:v4-never-ready --version v4",
                "baton",
                "update,failed"
            ],
        ])
    );
    assert_eq!(
        cells(records, &["STARTED", "DURATION"]),
        expect(&[
            &["ID", "KIND", "TRIGGER", "REVISION", "VERSION", "STARTED", "DURATION", "OUTCOME"],
            &["1", "Deploy", "Spec", "1", "v1", "<age>", "<age>", "Succeeded"],
            &["2", "Deploy", "Spec", "2", "v2", "<age>", "<age>", "Succeeded"],
            &["3", "Deploy", "Spec", "3", "v3", "<age>", "<age>", "Succeeded"],
            &["4", "Rollback", "Undo", "1", "v1", "<age>", "<age>", "Succeeded"],
            &["5", "Deploy", "Spec", "4", "v4", "<age>", "<age>", "Failed"],
            &["6", "Rollback", "Automatic", "1", "v1", "<age>", "<age>", "Succeeded"],
        ])
    );

    // -o json: the same, with times.
    let r = cli(&env, &["history", NAME, "-o", "json"]).await;
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["revisions"][3]["changedBy"], "baton");
    let deploys = doc["deploys"].as_array().unwrap();
    assert_eq!(deploys[4]["outcome"], "Failed");
    assert!(
        deploys[4]["message"].as_str().unwrap_or("").contains("svc-"),
        "{}",
        deploys[4]
    );
    assert_eq!(deploys[3]["changeCause"], "baton rollout undo svc --to-revision 1");
    for d in deploys {
        let (start, end) = (d["startedAt"].as_str().unwrap(), d["finishedAt"].as_str().unwrap());
        assert!(start <= end, "{d}");
    }

    // --revision N: its origin and template.
    let r = cli(&env, &["history", NAME, "--revision", "2"]).await;
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "rollout.baton.dev/svc with revision #2");
    assert_eq!(lines[1], "Version:        v2");
    assert!(lines[2].starts_with("Revision:       svc-"), "{}", r.stdout);
    assert!(
        lines[3].starts_with("Created:        20") && lines[3].ends_with(" ago)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[4..].join("\n"),
        "Change-Cause:   baton rollout set image svc app=svc:v2\n\
         Changed-By:     baton\n\
         Pod Template:\n  \
           metadata:\n    \
             labels:\n      \
               app: svc\n  \
           spec:\n    \
             containers:\n    \
             - image: svc:v2\n      \
               name: app"
    );
    let r = cli(&env, &["history", NAME, "--revision", "9"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            1,
            "error: unable to find the specified revision 9; see `baton rollout history svc`\n"
        )
    );
    op.stop().await;
}

/// `pin` names what is wrong with the instances or the version and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_is_checked_against_the_rollout_and_its_history_before_writing() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&manifest_v(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    env.apply(&manifest_v(NAME, 3, "v2")).await;
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
    assert_eq!(
        pinned
            .annotations()
            .get("kubernetes.io/change-cause")
            .map(String::as_str),
        Some("baton rollout pin svc --instances svc-1 --version v1")
    );
    op.stop().await;
}

/// Applies v2 with short timed pauses after each batch, so the status changes several times.
async fn v2_in_batches(env: &Env) {
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({"duration": "1s"});
    env.apply(&m).await;
}

/// Off a terminal (CI logs): the first view, one line per change, the final view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_prints_a_line_per_change_off_a_terminal() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&manifest_v(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    v2_in_batches(&env).await;
    let r = cli(&env, &["status", NAME, "--timeout", "60s"]).await;
    assert_eq!(r.code, 0, "{r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("rollout svc — "), "{}", r.stdout);
    let updates: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("rollout svc — ") && l.contains(" · "))
        .collect();
    assert!(updates.len() >= 3, "one line per change:\n{}", r.stdout);
    for pair in updates.windows(2) {
        assert_ne!(pair[0], pair[1], "a line repeats:\n{}", r.stdout);
    }
    assert!(
        updates.iter().any(|l| l.contains("batch 2/3")),
        "the batches show:\n{}",
        r.stdout
    );
    // No escape sequences in a log, and the final view closes it.
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
    let last_view = r.stdout.rsplit("rollout svc — ").next().unwrap_or_default();
    assert!(last_view.starts_with("Healthy — version v2\n"), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with("versions: v2: 3"), "{}", r.stdout);
    op.stop().await;
}

/// On a terminal (a pty from `script`): the view is redrawn in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_redraws_in_place_on_a_terminal() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&manifest_v(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    v2_in_batches(&env).await;
    let command = format!("stty cols 200 rows 50; {BATON} rollout status {NAME} --timeout 60s");
    let kc = env.sim.kubeconfig_path().to_string_lossy().into_owned();
    let r = run(
        "script",
        &["-qfec", &command, "/dev/null"],
        &[("KUBECONFIG", &kc), ("TERM", "xterm")],
    )
    .await;
    assert_eq!(r.code, 0, "{r}");
    // indicatif moves the cursor up over the previous view and clears it before drawing.
    let redraws = r.stdout.matches("\x1b[1A").count() + r.stdout.matches("\x1b[2K").count();
    assert!(redraws > 0, "no redraw in place: {:?}", r.stdout);
    assert!(!r.stdout.contains(" · "), "no log lines on a terminal: {:?}", r.stdout);
    assert!(
        r.stdout.contains("rollout svc — Healthy — version v2"),
        "{:?}",
        r.stdout
    );
    op.stop().await;
}
