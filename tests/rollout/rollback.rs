//! (4) A failed batch is rolled back automatically.
//!
//! (5) Whole-service undo mid-rollout.

use std::collections::BTreeSet;

use baton::api::rollout::RolloutPhase;
use baton::cli::rollout::RolloutCommand;
use serde_json::json;

use crate::helpers::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_ready_batch_is_rolled_back_automatically() {
    let (env, op, _) = operator_with_v1().await;
    let recorder = StatusRecorder::start(&env, NAME);
    recorder.wait_synced().await;

    let mut m = env.manifest(NAME, 3, "v2", "svc:v2-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    let applied = env.apply(&m).await;
    env.wait_rollout(NAME, "Progressing=False/RolledBack", LONG, |r| {
        current_generation(r) && cond(r, "Progressing") == ("False".into(), "RolledBack".into())
    })
    .await;
    let r = env
        .wait_rollout(NAME, "RolledBack after the rollback", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::RolledBack)
                && instance_versions(r) == map(&[("v1", 3)])
        })
        .await;
    let st = status(&r);
    assert_eq!(st.versions, map(&[("v1", 3)]), "status.versions after the rollback");
    // The failed instance counts as failed, nothing is pending, and the counts add
    // up to the instances.
    let p = st.progress.clone().expect("progress");
    assert_eq!(
        (p.total, p.completed, p.failed, p.pending, p.rolled_back),
        (3, 0, 1, 0, 2),
        "{p:?}"
    );
    // Nothing says Healthy or Ready about v2.
    assert_eq!(cond(&r, "Ready"), ("False".into(), "RolledBack".into()));
    assert_eq!(cond(&r, "Stalled"), ("True".into(), "RolledBack".into()));
    assert_eq!(cond(&r, "Reconciling").0, "False");
    for c in &st.conditions {
        assert_eq!(c.observed_generation, r.metadata.generation, "{c:?}");
    }
    let progressing = condition(&r, "Progressing").unwrap();
    assert_eq!(progressing.reason, "RolledBack");
    assert!(
        progressing.message.contains("v2"),
        "message names the failed version: {}",
        progressing.message
    );
    assert!(
        progressing.message.contains("rolled back to v1"),
        "{}",
        progressing.message
    );
    assert_eq!(
        cond(&r, "Available"),
        ("True".into(), "MinimumReplicasAvailable".into())
    );
    let failed = st.failed_update.clone().expect("failedUpdate recorded");
    assert_eq!(
        (failed.version.as_str(), failed.reason.as_str(), failed.rolled_back),
        ("v2", "ProgressDeadlineExceeded", true)
    );
    assert_eq!(failed.instances, ["svc-0"]);
    assert_eq!(st.version.as_deref(), Some("v1"));
    assert_ne!(st.current_revision, st.update_revision);
    assert!(st
        .instances
        .iter()
        .all(|i| i.ready && i.version.as_deref() == Some("v1") && i.revision == 1));

    // Available never dropped; the rollout went through RollingBack.
    let snaps: Vec<_> = recorder
        .take()
        .into_iter()
        .filter(|(g, _)| *g >= applied.metadata.generation)
        .map(|(_, s)| s)
        .collect();
    assert!(
        snaps.iter().any(|s| s.phase == Some(RolloutPhase::RollingBack)),
        "no RollingBack phase seen"
    );
    for s in &snaps {
        let a = s
            .conditions
            .iter()
            .find(|c| c.type_ == "Available")
            .expect("Available condition");
        assert_eq!(a.status, "True", "Available dropped: {s:#?}");
    }

    env.wait_pods(NAME, "all pods back on v1", |p| {
        p.len() == 3 && p.iter().all(|p| pod_version(p) == "v1")
    })
    .await;
    let ev = env
        .wait_event(NAME, "RolledBack event", |e| e.reason.as_deref() == Some("RolledBack"))
        .await;
    assert_eq!(ev.regarding.as_ref().unwrap().name.as_deref(), Some(NAME));
    assert!(ev.note.as_deref().unwrap_or("").contains("v2"), "{:?}", ev.note);
    let events = env.events(NAME).await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("BatchFailed") && e.type_.as_deref() == Some("Warning")),
        "{}",
        describe_events(&events)
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_batch_fails_and_is_rolled_back() {
    let (env, op, _) = operator_with_v1().await;
    // A long deadline: the crash loop, not the deadline, must fail the batch.
    let mut m = env.manifest(NAME, 3, "v2", "svc:v2-crash");
    m["spec"]["progressDeadlineSeconds"] = json!(600);
    env.apply(&m).await;
    let r = env
        .wait_rollout(NAME, "rolled back after a crash loop", LONG, |r| {
            current_generation(r)
                && cond(r, "Progressing") == ("False".into(), "RolledBack".into())
                && status(r).phase == Some(RolloutPhase::RolledBack)
        })
        .await;
    let p = status(&r).progress.expect("progress");
    assert_eq!(
        (p.failed, p.pending, p.completed + p.failed + p.pending + p.rolled_back),
        (1, 0, 3),
        "{p:?}"
    );
    let f = status(&r).failed_update.expect("failedUpdate");
    assert_eq!(
        (f.reason.as_str(), f.version.as_str(), f.batch),
        ("PodCrashLooping", "v2", 1)
    );
    assert!(f.message.contains("crash-looping"), "{}", f.message);
    assert_eq!(cond(&r, "Available").0, "True");
    env.wait_pods(NAME, "all pods on v1", |p| {
        p.len() == 3 && p.iter().all(|p| pod_version(p) == "v1")
    })
    .await;
    env.wait_event(NAME, "BatchFailed (crash-looping)", |e| {
        e.reason.as_deref() == Some("BatchFailed") && e.note.as_deref().unwrap_or("").contains("crash-looping")
    })
    .await;
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// (5) Whole-service undo mid-rollout.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_mid_rollout_returns_everything_to_v1() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let v1 = deployed(&env, 3, "v1").await;
    apply_v2_pausing(&env).await;
    let r = wait_promotion_after_batch_1(&env).await;
    assert_eq!(cond(&r, "Progressing"), ("True".into(), "BatchPaused".into()));
    assert!(status(&r).message.unwrap_or_default().contains("waiting for promotion"));
    assert_eq!(status(&r).batch.as_ref().map(|b| (b.current, b.total)), Some((1, 3)));

    assert_ok(
        env.cli(RolloutCommand::Undo {
            name: NAME.into(),
            to_revision: None,
            batches: false,
            force: false,
        })
        .await,
        "undo",
    );
    let r = env.wait_healthy(NAME, "v1", 3).await;
    assert_eq!(r.spec.version, "v1");
    assert_eq!(
        r.spec.template.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("svc:v1")
    );
    let st = status(&r);
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(cond(&r, "Progressing"), ("True".into(), "NewRevisionAvailable".into()));
    let pods = env.pods(NAME).await;
    // The slots that never left v1 kept their pods.
    let kept: BTreeSet<_> = identities(&pods).intersection(&identities(&v1)).cloned().collect();
    assert_eq!(
        kept.len(),
        2,
        "the two untouched v1 pods stay: {}",
        describe_pods(&pods)
    );
    op.stop().await;
}
