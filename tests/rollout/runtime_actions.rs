//! Runtime actions through the CLI's annotations.

use baton::api::rollout::{annotations, RolloutPhase};
use baton::cli::rollout::RolloutCommand;
use kube::ResourceExt;
use serde_json::json;

use crate::helpers::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_advances_a_pause_waiting_for_promotion() {
    let (env, op, _) = operator_with_v1().await;
    apply_v2_pausing(&env).await;
    for (batch, versions) in [(1, map(&[("v1", 2), ("v2", 1)])), (2, map(&[("v1", 1), ("v2", 2)]))] {
        let r = env
            .wait_rollout(NAME, &format!("waiting for promotion after batch {batch}"), LONG, |r| {
                current_generation(r)
                    && status(r).phase == Some(RolloutPhase::Paused)
                    && status(r).batch.as_ref().is_some_and(|b| b.current == batch)
                    && instance_versions(r) == versions
            })
            .await;
        assert_eq!(cond(&r, "Progressing"), ("True".into(), "BatchPaused".into()));
        assert_eq!(cond(&r, "Available").0, "True");
        assert_ok(
            env.cli(RolloutCommand::Promote {
                name: NAME.into(),
                full: false,
            })
            .await,
            "promote",
        );
    }
    let r = env.wait_healthy(NAME, "v2", 3).await;
    let nonce = r.annotations().get(annotations::PROMOTE).cloned();
    assert!(nonce.is_some());
    assert_eq!(
        status(&r).actions.and_then(|a| a.promote),
        nonce,
        "the handled nonce is recorded"
    );
    assert_event(&env, "Promoted").await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_then_retry() {
    let (env, op, _) = operator_with_v1().await;
    apply_v2_pausing(&env).await;
    wait_phase(&env, "paused after batch 1", RolloutPhase::Paused).await;

    let recorder = StatusRecorder::start(&env, NAME);
    assert_ok(env.cli(RolloutCommand::Abort { name: NAME.into() }).await, "abort");
    let r = env
        .wait_rollout(NAME, "aborted and back on v1", LONG, |r| {
            current_generation(r)
                && cond(r, "Progressing") == ("False".into(), "RolloutAborted".into())
                && status(r).phase == Some(RolloutPhase::RolledBack)
                && instance_versions(r) == map(&[("v1", 3)])
        })
        .await;
    // Straight back, never stopping at a pause on the way.
    let phases: Vec<RolloutPhase> = recorder
        .take()
        .into_iter()
        .filter(|(_, s)| s.failed_update.is_some())
        .filter_map(|(_, s)| s.phase)
        .collect();
    assert!(
        phases
            .iter()
            .all(|p| matches!(p, RolloutPhase::RollingBack | RolloutPhase::RolledBack)),
        "{phases:?}"
    );
    let p = status(&r).progress.expect("progress");
    assert_eq!((p.completed, p.failed, p.pending, p.rolled_back), (0, 0, 0, 3), "{p:?}");
    let f = status(&r).failed_update.expect("failedUpdate");
    assert_eq!(
        (f.reason.as_str(), f.version.as_str(), f.rolled_back),
        ("Aborted", "v2", true)
    );
    assert_eq!(cond(&r, "Available").0, "True");
    env.wait_pods(NAME, "all pods on v1", |p| {
        p.len() == 3 && p.iter().all(|p| pod_version(p) == "v1")
    })
    .await;
    env.wait_event(NAME, "RolloutAborted Warning", |e| {
        e.reason.as_deref() == Some("RolloutAborted") && e.type_.as_deref() == Some("Warning")
    })
    .await;

    // Retry: v2 again from batch 1.
    assert_ok(env.cli(RolloutCommand::Retry { name: NAME.into() }).await, "retry");
    let r = env
        .wait_rollout(NAME, "v2 retried, paused after batch 1", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Paused)
                && status(r).failed_update.is_none()
                && instance_versions(r) == map(&[("v1", 2), ("v2", 1)])
        })
        .await;
    assert_eq!(status(&r).batch.map(|b| b.current), Some(1));
    env.merge(NAME, json!({"spec": {"strategy": {"pause": null}}})).await;
    env.wait_healthy(NAME, "v2", 3).await;
    assert_event(&env, "RetryRequested").await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_every_pod_with_a_new_revision_of_the_same_version() {
    let (env, op, before) = operator_with_v1().await;
    let old = env.get(NAME).await;
    let old_rev = status(&old).current_revision.unwrap();
    let rec = PodRecorder::start(&env, NAME).await;
    assert_ok(env.cli(RolloutCommand::Restart { name: NAME.into() }).await, "restart");
    let r = env
        .wait_rollout(NAME, "restarted on a new revision", LONG, |r| {
            healthy_on(r, "v1", 3)
                && status(r).current_revision.as_deref().is_some_and(|c| c != old_rev)
                && status(r).current_revision == status(r).update_revision
        })
        .await;
    assert!(status(&r).instances.iter().all(|i| i.revision == 2));
    let pods = env
        .wait_pods(NAME, "3 new pods", |p| {
            p.len() == 3 && p.iter().all(|p| p.metadata.deletion_timestamp.is_none())
        })
        .await;
    assert!(
        identities(&pods).is_disjoint(&identities(&before)),
        "every pod replaced"
    );
    let stamp = r
        .annotations()
        .get(annotations::RESTARTED_AT)
        .cloned()
        .expect("annotation");
    for p in &pods {
        assert_eq!(pod_version(p), "v1");
        assert_eq!(
            p.annotations().get(annotations::RESTARTED_AT),
            Some(&stamp),
            "{}",
            p.name_any()
        );
    }
    let h = rec.take();
    assert!(
        h.max_live_total <= 4 && h.max_live_per_slot.values().all(|n| *n <= 2),
        "{h:?}"
    );
    op.stop().await;
}
