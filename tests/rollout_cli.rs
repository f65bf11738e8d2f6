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

/// Runs `baton rollout <args>`, expecting it to exit with `expected`.
async fn baton_exits(env: &Env, args: &[&str], expected: i32) -> Output {
    let o = baton(env, args).await;
    assert_eq!(code(&o), expected, "baton rollout {args:?}: {}", show(&o));
    o
}

/// A simulator with the operator running and v1 of the Rollout deployed and Healthy.
async fn v1_deployed() -> (Env, OperatorTask) {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, "v1").await;
    (env, op)
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
    let o = baton_exits(&env, &["status", NAME, "--timeout", "30s"], 0).await;
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
    baton_exits(&env, &["status", NAME, "--watch=false"], 0).await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_1_after_an_automatic_rollback() {
    let (env, op) = v1_deployed().await;
    let mut m = manifest(NAME, 3, "v2", "svc:v2-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    env.apply(&m).await;
    let o = baton_exits(&env, &["status", NAME, "--timeout", "30s"], 1).await;
    let text = stdout(&o);
    assert!(text.contains("rolled back to v1") && text.contains("v2"), "{text}");
    let r = env.get(NAME).await;
    assert_eq!(cond(&r, "Progressing"), ("False".into(), "RolledBack".into()));
    // The header of the final view agrees with exit 1: it names what serves and what failed.
    let o = baton_exits(&env, &["status", NAME, "--watch=false"], 1).await;
    let header = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert_eq!(
        header,
        "rollout svc — RolledBack — serving v1; v2 failed (ProgressDeadlineExceeded) and was rolled back"
    );
    assert!(!stdout(&o).contains("Healthy"), "{}", show(&o));
    assert!(
        stdout(&o).contains("(failed 1, pending 0, rolled back 2)"),
        "{}",
        show(&o)
    );

    // A spec the controller has not seen yet is not judged by the previous generation's status.
    op.stop().await;
    env.apply(&manifest_v(NAME, 3, "v3")).await;
    let o = baton_exits(&env, &["status", NAME, "--watch=false"], 3).await;
    assert_eq!(
        stdout(&o).lines().next().unwrap_or_default(),
        "rollout svc — Pending — v3: generation 3 not observed by the controller yet",
        "{}",
        show(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_2_on_timeout_while_paused() {
    let (env, op) = v1_deployed().await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["paused"] = json!(true);
    env.apply(&m).await;
    env.wait_rollout(NAME, "Paused", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    let o = baton_exits(&env, &["status", NAME, "--timeout", "1s"], 2).await;
    assert!(stdout(&o).contains("Paused"), "{}", show(&o));
    assert!(stderr(&o).contains("timed out waiting for rollout svc"), "{}", show(&o));
    // Without --watch a rollout in progress exits 3.
    baton_exits(&env, &["status", NAME, "--watch=false"], 3).await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pin_unpin_and_undo_to_revision() {
    let (env, op) = v1_deployed().await;
    env.apply(&manifest_v(NAME, 3, "v2")).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    let st = status(&r);

    // history: both revisions, the current one marked (the full table is asserted in
    // tests/cli_rollout.rs).
    let o = baton_exits(&env, &["history", NAME], 0).await;
    let text = stdout(&o);
    let table: String = text.split("\n\n").next().unwrap_or_default().to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let v1_line: Vec<&str> = lines[1].split_whitespace().collect();
    let v2_line: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&v1_line[..2], ["1", "v1"], "{text}");
    assert_eq!(&v2_line[..2], ["2", "v2"], "{text}");
    assert_eq!(v2_line.last(), Some(&"current,update"), "{text}");
    assert_eq!(v1_line.last(), Some(&"-"), "no mark on the old revision: {text}");
    let o = baton(&env, &["history", NAME, "-o", "wide"]).await;
    assert!(
        stdout(&o).contains(st.current_revision.as_deref().unwrap()),
        "{}",
        show(&o)
    );

    // pin / unpin.
    let o = baton_exits(&env, &["pin", NAME, "--instances", "svc-0,svc-2", "--version", "v1"], 0).await;
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
    let pins: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.trim_start().starts_with("svc-"))
        .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(pins, ["pinned to v1", "-", "pinned to v1"], "{}", show(&o));
    let o = baton_exits(&env, &["unpin", NAME, "--instances", "svc-2"], 0).await;
    assert_eq!(stdout(&o).trim(), "rollout.baton.dev/svc unpinned svc-2");
    env.wait_rollout(NAME, "only svc-0 pinned", LONG, |r| {
        current_generation(r)
            && status(r).phase == Some(RolloutPhase::Healthy)
            && instance_versions(r) == [("v1".to_string(), 1), ("v2".to_string(), 2)].into()
    })
    .await;
    let o = baton_exits(&env, &["unpin", NAME], 0).await;
    assert_eq!(stdout(&o).trim(), "rollout.baton.dev/svc unpinned all instances");
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert!(r.spec.pins.is_empty());

    // A pin of a version that is not in the history is refused before anything is written.
    let before = env.get(NAME).await.resource_version();
    let o = baton_exits(&env, &["pin", NAME, "--instances", "svc-1", "--version", "v9"], 1).await;
    assert_eq!(
        stderr(&o),
        "error: version v9 is not in the history of rollout svc (versions: v1, v2); see `baton rollout history svc`\n"
    );
    assert_eq!(env.get(NAME).await.resource_version(), before);

    // undo --to-revision 1.
    let o = baton_exits(&env, &["undo", NAME, "--to-revision", "1"], 0).await;
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
    let (env, op) = v1_deployed().await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["batches"] = json!([1, "100%"]);
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    env.wait_rollout(NAME, "waiting for promotion", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    let o = baton_exits(&env, &["status", NAME, "--watch=false"], 3).await;
    assert!(stdout(&o).contains("waiting for promotion"), "{}", show(&o));

    let o = baton_exits(&env, &["promote", NAME], 0).await;
    assert_eq!(stdout(&o).trim(), "rollout.baton.dev/svc promoted");
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert!(r.annotations().contains_key(annotations::PROMOTE));
    baton_exits(&env, &["status", NAME, "--timeout", "30s"], 0).await;
    op.stop().await;
}

/// Applies v2 with a pause waiting for promotion after each batch, and waits for the first.
async fn v2_waiting_after_batch_1(env: &Env) {
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({"manual": true});
    env.apply(&m).await;
    env.wait_rollout(NAME, "waiting for promotion after batch 1", LONG, |r| {
        current_generation(r)
            && status(r).phase == Some(RolloutPhase::Paused)
            && instance_versions(r) == [("v1".to_string(), 2), ("v2".to_string(), 1)].into()
    })
    .await;
}

/// Promote while `spec.paused` is refused with a message and exit 1, and a
/// promotion that lands while paused anyway is acted on at resume, never lost. Promote, abort
/// and retry with nothing to act on say so and exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_while_paused_is_refused_or_kept_never_lost() {
    let (env, op) = v1_deployed().await;
    v2_waiting_after_batch_1(&env).await;
    baton_exits(&env, &["pause", NAME], 0).await;
    env.wait_rollout(NAME, "spec.paused observed", LONG, |r| {
        current_generation(r) && cond(r, "Progressing") == ("Unknown".into(), "RolloutPaused".into())
    })
    .await;
    let o = baton_exits(&env, &["promote", NAME], 1).await;
    assert_eq!(
        stderr(&o).trim(),
        "error: rollout svc is paused (spec.paused: true): nothing moves until `baton rollout resume svc`; resume it, then promote"
    );
    assert!(!env.get(NAME).await.annotations().contains_key(annotations::PROMOTE));

    // The race the CLI cannot close: a promotion written while paused. It arrives with a spec
    // change, so once that generation is observed the controller has seen the promotion too.
    let r = env
        .merge(
            NAME,
            json!({"metadata": {"annotations": {annotations::PROMOTE: "race-1"}}, "spec": {"revisionHistoryLimit": 9}}),
        )
        .await;
    let generation = r.metadata.generation;
    let r = env
        .wait_rollout(NAME, "the promotion seen while paused", LONG, |r| {
            status(r).observed_generation == generation
        })
        .await;
    assert_eq!(status(&r).phase, Some(RolloutPhase::Paused));
    assert_ne!(
        status(&r).actions.and_then(|a| a.promote).as_deref(),
        Some("race-1"),
        "recorded while paused: it would be lost"
    );
    baton_exits(&env, &["resume", NAME], 0).await;
    let r = env
        .wait_rollout(NAME, "promoted past batch 1 on resume", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Paused)
                && status(r).batch.as_ref().is_some_and(|b| b.current == 2)
                && instance_versions(r) == [("v1".to_string(), 1), ("v2".to_string(), 2)].into()
        })
        .await;
    assert_eq!(status(&r).actions.and_then(|a| a.promote).as_deref(), Some("race-1"));

    baton_exits(&env, &["promote", NAME], 0).await;
    env.wait_healthy(NAME, "v2", 3).await;

    // Nothing in progress: each request says so and exits 1, writing nothing.
    let before = env.get(NAME).await.annotations().clone();
    for (args, message) in [
        (vec!["promote", NAME], "error: rollout svc has no rollout in progress to promote: it is Healthy (3 of 3 instances available on v2)"),
        (vec!["promote", "--full", NAME], "error: rollout svc has no rollout in progress to promote: it is Healthy (3 of 3 instances available on v2)"),
        (vec!["abort", NAME], "error: rollout svc has no rollout in progress to abort: it is Healthy (3 of 3 instances available on v2)"),
        (vec!["retry", NAME], "error: rollout svc has no failed rollout to retry: it is Healthy (3 of 3 instances available on v2)"),
    ] {
        let o = baton(&env, &args).await;
        assert_eq!(code(&o), 1, "{args:?}: {}", show(&o));
        assert_eq!(stderr(&o).trim(), message, "{args:?}");
    }
    assert_eq!(env.get(NAME).await.annotations(), &before);
    op.stop().await;
}

/// `promote --full` skips the remaining batches and pauses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_full_skips_the_remaining_batches_and_pauses() {
    let (env, op) = v1_deployed().await;
    v2_waiting_after_batch_1(&env).await;
    let recorder = StatusRecorder::start(&env, NAME);
    let o = baton_exits(&env, &["promote", "--full", NAME], 0).await;
    assert_eq!(
        stdout(&o).trim(),
        "rollout.baton.dev/svc promoted fully: the remaining batches and pauses are skipped"
    );
    env.wait_healthy(NAME, "v2", 3).await;
    let after: Vec<_> = recorder
        .take()
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.actions.as_ref().is_some_and(|a| a.promote_full.is_some()))
        .collect();
    assert!(!after.is_empty());
    for s in &after {
        assert_ne!(s.phase, Some(RolloutPhase::Paused), "paused again: {s:#?}");
        assert_eq!(s.batch.as_ref().map(|b| b.current), Some(3), "{s:#?}");
    }
    env.wait_event(NAME, "Promoted (full)", |e| {
        e.reason.as_deref() == Some("Promoted") && e.note.as_deref().unwrap_or("").contains("fully promoted")
    })
    .await;
    op.stop().await;
}

/// `undo` goes straight to the revision, without stopping at the strategy's
/// manual pauses; `undo --batches` goes through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_goes_straight_to_the_revision_unless_asked_for_batches() {
    let (env, op) = v1_deployed().await;
    let pausing = |version: &str| {
        let mut m = manifest_v(NAME, 3, version);
        m["spec"]["strategy"]["pause"] = json!({"manual": true});
        m
    };
    env.apply(&manifest_v(NAME, 3, "v2")).await;
    env.wait_healthy(NAME, "v2", 3).await;
    env.apply(&pausing("v3")).await;
    env.wait_rollout(NAME, "v3 waiting after batch 1", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    let recorder = StatusRecorder::start(&env, NAME);
    let o = baton_exits(&env, &["undo", NAME, "--to-revision", "1"], 0).await;
    assert_eq!(
        stdout(&o).trim(),
        "rollout.baton.dev/svc rolled back to revision 1 (v1)"
    );
    let r = env.wait_healthy(NAME, "v1", 3).await;
    let v1 = status(&r).update_revision;
    let phases: Vec<RolloutPhase> = recorder
        .take()
        .into_iter()
        .filter(|(_, s)| s.update_revision == v1)
        .filter_map(|(_, s)| s.phase)
        .collect();
    assert!(!phases.contains(&RolloutPhase::Paused), "{phases:?}");

    // Asked for batches: the undo stops at the first pause like any rollout.
    env.apply(&pausing("v3")).await;
    env.wait_rollout(NAME, "v3 waiting after batch 1", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    baton_exits(&env, &["undo", NAME, "--to-revision", "2", "--batches"], 0).await;
    env.wait_rollout(NAME, "undo to v2 waiting after batch 1", LONG, |r| {
        current_generation(r)
            && r.spec.version == "v2"
            && status(r).phase == Some(RolloutPhase::Paused)
            && instance_versions(r) == [("v1".to_string(), 2), ("v2".to_string(), 1)].into()
    })
    .await;
    op.stop().await;
}
