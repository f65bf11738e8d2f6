//! The `baton rollout …` commands, run as the real binary against the simulator
//! (`KUBECONFIG` = the simulator's kubeconfig), with the operator running in-process.
mod support;

use std::process::Output;

use baton::api::rollout::{annotations, RolloutPhase};
use kube::ResourceExt;
use serde_json::json;
use support::*;

const NAME: &str = "svc";

/// Runs `baton rollout <args>` and returns its output.
async fn baton(env: &Env, args: &[&str]) -> Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("rollout")
        .args(args)
        .env("KUBECONFIG", env.sim.kubeconfig_path())
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(LONG, out)
        .await
        .unwrap_or_else(|_| panic!("baton rollout {args:?} did not finish"))
        .expect("running the baton binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited with a code")
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

async fn deployed(env: &Env, version: &str) {
    env.apply(&manifest_v(NAME, 3, version)).await;
    env.wait_healthy(NAME, version, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_0_when_healthy_and_shows_instances() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&manifest_v(NAME, 3, "v1")).await;
    // Started before the rollout is done: it follows the watch until Healthy.
    let o = baton(&env, &["status", NAME, "--timeout", "30s"]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = stdout(&o);
    assert!(text.contains("rollout svc — Healthy — version v1"), "{text}");
    for i in 0..3 {
        assert!(text.contains(&format!("svc-{i}")), "{text}");
    }
    assert!(
        text.contains("INSTANCE") && text.contains("VERSION") && text.contains("READY"),
        "{text}"
    );
    assert!(text.contains("3/3 updated"), "{text}");
    assert!(text.contains("versions: v1: 3"), "{text}");
    // Once Healthy it answers at once, also without --watch.
    let o = baton(&env, &["status", NAME, "--watch=false"]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_1_after_an_automatic_rollback() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, "v1").await;
    let mut m = manifest(NAME, 3, "v2", "svc:v2-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    env.apply(&m).await;
    let o = baton(&env, &["status", NAME, "--timeout", "30s"]).await;
    assert_eq!(code(&o), 1, "{}", show(&o));
    let text = stdout(&o);
    assert!(text.contains("rolled back to v1") && text.contains("v2"), "{text}");
    let r = env.get(NAME).await;
    assert_eq!(cond(&r, "Progressing"), ("False".into(), "RolledBack".into()));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_2_on_timeout_while_paused() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, "v1").await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["paused"] = json!(true);
    env.apply(&m).await;
    env.wait_rollout(NAME, "Paused", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    let o = baton(&env, &["status", NAME, "--timeout", "1s"]).await;
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(stdout(&o).contains("Paused"), "{}", show(&o));
    assert!(stderr(&o).contains("timed out waiting for rollout svc"), "{}", show(&o));
    // Without --watch a rollout in progress exits 3.
    let o = baton(&env, &["status", NAME, "--watch=false"]).await;
    assert_eq!(code(&o), 3, "{}", show(&o));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pin_unpin_and_undo_to_revision() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, "v1").await;
    env.apply(&manifest_v(NAME, 3, "v2")).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    let st = status(&r);

    // history: both revisions, the current one marked.
    let o = baton(&env, &["history", NAME]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("REVISION") && lines[0].contains("VERSION") && lines[0].contains("NOTE"),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "{text}");
    let v1_line: Vec<&str> = lines[1].split_whitespace().collect();
    let v2_line: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&v1_line[..2], ["1", "v1"], "{text}");
    assert_eq!(&v2_line[..2], ["2", "v2"], "{text}");
    assert_eq!(v2_line[2], st.current_revision.as_deref().unwrap(), "{text}");
    assert_eq!(v2_line.get(3), Some(&"current,update"), "{text}");
    assert_eq!(v1_line.len(), 3, "no note on the old revision: {text}");

    // pin / unpin.
    let o = baton(&env, &["pin", NAME, "--instances", "svc-0,svc-2", "--version", "v1"]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(stdout(&o).trim(), "rollout.baton.dev/svc pinned svc-0,svc-2 to v1");
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
    let o = baton(&env, &["status", NAME, "--watch=false"]).await;
    assert!(stdout(&o).contains("(pinned)"), "{}", show(&o));
    let o = baton(&env, &["unpin", NAME, "--instances", "svc-2"]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(stdout(&o).trim(), "rollout.baton.dev/svc unpinned svc-2");
    env.wait_rollout(NAME, "only svc-0 pinned", LONG, |r| {
        current_generation(r)
            && status(r).phase == Some(RolloutPhase::Healthy)
            && instance_versions(r) == [("v1".to_string(), 1), ("v2".to_string(), 2)].into()
    })
    .await;
    let o = baton(&env, &["unpin", NAME]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(stdout(&o).trim(), "rollout.baton.dev/svc unpinned all instances");
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert!(r.spec.pins.is_empty());

    // A pin of a version that is not in the history is refused by the controller.
    let o = baton(&env, &["pin", NAME, "--instances", "svc-1", "--version", "v9"]).await;
    assert_eq!(
        code(&o),
        0,
        "the CLI writes the spec; the controller judges it: {}",
        show(&o)
    );
    let r = env
        .wait_rollout(NAME, "InvalidSpec", LONG, |r| {
            current_generation(r) && cond(r, "InvalidSpec").0 == "True"
        })
        .await;
    assert!(condition(&r, "InvalidSpec").unwrap().message.contains("\"v9\""));
    baton(&env, &["unpin", NAME]).await;

    // undo --to-revision 1.
    let o = baton(&env, &["undo", NAME, "--to-revision", "1"]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        stdout(&o).trim(),
        "rollout.baton.dev/svc rolled back to revision 1 (v1)"
    );
    let r = env.wait_healthy(NAME, "v1", 3).await;
    assert_eq!(r.spec.version, "v1");
    assert_eq!(cond(&r, "InvalidSpec").0, "False");
    // An unknown revision is an error that says where to look.
    let o = baton(&env, &["undo", NAME, "--to-revision", "42"]).await;
    assert_ne!(code(&o), 0, "{}", show(&o));
    assert!(
        stderr(&o).contains("revision 42 not found") && stderr(&o).contains("baton rollout history svc"),
        "{}",
        show(&o)
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_ends_the_wait_for_promotion() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, "v1").await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["batches"] = json!([1, "100%"]);
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    env.wait_rollout(NAME, "waiting for promotion", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    let o = baton(&env, &["status", NAME, "--watch=false"]).await;
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert!(stdout(&o).contains("waiting for promotion"), "{}", show(&o));

    let o = baton(&env, &["promote", NAME]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(stdout(&o).trim(), "rollout.baton.dev/svc promoted");
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert!(r.annotations().contains_key(annotations::PROMOTE));
    let o = baton(&env, &["status", NAME, "--timeout", "30s"]).await;
    assert_eq!(code(&o), 0, "{}", show(&o));
    op.stop().await;
}
