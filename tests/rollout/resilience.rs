//! (6) The controller is killed mid-batch and restarted, or cut off from the API server for a
//! while.
//!
//! (7) 409 and 500 answers injected for the controller's client.

use std::time::Duration;

use baton_sim::faults::FaultRule;

use crate::helpers::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_killed_mid_batch_and_restarted_finishes_safely() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 4, "v1").await;
    let rec = PodRecorder::start(&env, NAME).await;
    env.apply(&env.manifest_v(NAME, 4, "v2")).await;

    // Kill it as soon as batch 2 has started, and the next one as soon as batch 3 has.
    env.wait_rollout(NAME, "batch 2 started", LONG, |r| {
        current_generation(r) && status(r).batch.as_ref().is_some_and(|b| b.current == 2 && b.total == 3)
    })
    .await;
    op.kill().await;
    let op = env.start_operator().await;
    env.wait_rollout(NAME, "batch 3 started", LONG, |r| {
        current_generation(r) && status(r).batch.as_ref().is_some_and(|b| b.current == 3)
    })
    .await;
    op.kill().await;
    let op = env.start_operator().await;

    let r = env.wait_healthy(NAME, "v2", 4).await;
    let p = status(&r).progress.unwrap();
    assert_eq!((p.completed, p.failed), (4, 0));
    let h = rec.take();
    h.assert_surge_of_one(5);
    assert_eq!(h.creations.len(), 4, "exactly one new pod per slot: {:?}", h.creations);
    op.stop().await;
}

/// The controller cut off from the API server in the middle of batch 2 — its requests and
/// watches hang, as over a partitioned network (baton-sim's fault rule, or a fault proxy in
/// front of kube-apiserver) — while the pods settle without it; let through again, it finishes
/// from what it then reads: one new pod per slot, never more than one surge pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_cut_off_mid_batch_finishes_once_let_through_again() {
    let env = Env::start().await;
    let id = env.cuttable_identity(CONTROLLER_ID);
    let op = env.start_operator_with(env.cuttable_client(&id).await);
    deployed(&env, 4, "v1").await;
    let rec = PodRecorder::start(&env, NAME).await;
    env.apply(&env.manifest_v(NAME, 4, "v2")).await;
    env.wait_rollout(NAME, "batch 2 started", LONG, |r| {
        current_generation(r) && status(r).batch.as_ref().is_some_and(|b| b.current == 2 && b.total == 3)
    })
    .await;
    env.set_cut_off(&id, true);
    env.wait_pods(NAME, "every pod Ready and none terminating", |pods| {
        pods.iter().all(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
    })
    .await;
    let cut_off = env.get(NAME).await;
    assert!(
        !healthy_on(&cut_off, "v2", 4),
        "the rollout was not over when the controller was cut off: {}",
        describe(Some(&cut_off))
    );
    env.set_cut_off(&id, false);

    let r = env.wait_healthy(NAME, "v2", 4).await;
    let p = status(&r).progress.unwrap();
    assert_eq!((p.completed, p.failed), (4, 0));
    let h = rec.take();
    h.assert_surge_of_one(5);
    assert_eq!(h.creations.len(), 4, "exactly one new pod per slot: {:?}", h.creations);
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// (7) 409 and 500 answers injected for the controller's client.

/// Sim-only: the 409 and 500 answers are baton-sim's fault injection (an error rate for one
/// identity); the real tier's fault proxy can cut a client off, not make kube-apiserver answer
/// an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_rollout_completes_despite_injected_409_and_500() {
    let (env, op, _) = operator_with_v1().await;
    let rec = PodRecorder::start(&env, NAME).await;
    env.sim.faults.set_error_rate(Some(CONTROLLER_ID), 0.2, &[409, 500]);
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    env.sim.faults.clear();
    let st = status(&r);
    assert!(
        st.failed_update.is_none(),
        "the rollout must not fail: {:?}",
        st.failed_update
    );
    assert_eq!(st.progress.as_ref().map(|p| p.completed), Some(3));
    assert_eq!(st.current_revision, st.update_revision);
    let h = rec.take();
    h.assert_surge_of_one(4);
    op.stop().await;
}

/// Someone else's write to the Rollout (an annotation, a label, `kubectl apply` of metadata)
/// between the controller's status write and its next reconcile must not stall the rollout.
/// The controller plans only once its cache shows its last status write; it used to compare
/// the status it planned (sub-second times) with the one stored (whole seconds), so once the
/// Rollout had moved on to a newer resourceVersion it waited for the 30 s expectation timeout,
/// and the batch missed its 30 s progress deadline and was rolled back.
///
/// Sim-only: the order of the writes is made by baton-sim's fault rule delaying the
/// controller's pod writes alone (one request path of one identity); the real tier's fault proxy
/// holds back every request of an identity, not its pod writes alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_a_metadata_write_after_a_status_write_does_not_stall_the_rollout() {
    let (env, op, _) = operator_with_v1().await;
    // The controller's pod writes take 1.5 s: the reconcile that starts batch 1 has written its
    // status and is still creating the pod when the annotation lands, so the next reconcile
    // finds the Rollout at a newer resourceVersion than its status write.
    env.sim.faults.add_rule(FaultRule {
        client: Some(CONTROLLER_ID.into()),
        latency: Duration::from_millis(1500),
        path: Some(format!("/namespaces/{}/pods", env.ns)),
        ..FaultRule::default()
    });
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    env.wait_rollout(NAME, "batch 1/3 of v2 started", LONG, |r| {
        current_generation(r) && status(r).batch.is_some_and(|b| b.current == 1 && b.total == 3)
    })
    .await;
    env.merge(
        NAME,
        serde_json::json!({"metadata": {"annotations": {"example.com/touched": "yes"}}}),
    )
    .await;
    env.sim.faults.clear();
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert!(status(&r).failed_update.is_none(), "{:?}", status(&r).failed_update);
    op.stop().await;
}
