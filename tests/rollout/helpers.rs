//! Shared setup for the Rollout scenarios: the Rollout's name, a deploy-and-wait helper and
//! small assertion helpers.

use std::collections::BTreeMap;
use std::process::ExitCode;

use baton::api::rollout::{FailedUpdate, Rollout, RolloutPhase};
use k8s_openapi::api::core::v1::Pod;

use crate::support::kubectl::Kubectl;
use crate::support::*;

pub(crate) const NAME: &str = "svc";

pub(crate) fn map(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

pub(crate) fn assert_ok(code: ExitCode, what: &str) {
    assert_eq!(code, ExitCode::SUCCESS, "{what} failed");
}

/// Deploys `version` on `replicas` instances, waits until it is Healthy, returns its pods.
pub(crate) async fn deployed(env: &Env, replicas: i32, version: &str) -> Vec<Pod> {
    env.apply(&env.manifest_v(NAME, replicas, version)).await;
    env.wait_healthy(NAME, version, usize::try_from(replicas).unwrap())
        .await;
    env.pods(NAME).await
}

/// A fresh test world (simulator or namespace) with the in-process operator running (leading),
/// and kubectl for it.
pub(crate) async fn with_operator() -> (Env, OperatorTask, Kubectl) {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let k = env.kubectl();
    (env, op, k)
}

/// [`with_operator`] and v1 Healthy on 3 instances (their pods).
pub(crate) async fn operator_with_v1() -> (Env, OperatorTask, Vec<Pod>) {
    let (env, op, _) = with_operator().await;
    let pods = deployed(&env, 3, "v1").await;
    (env, op, pods)
}

/// The Rollout has an Event with `reason`.
pub(crate) async fn assert_event(env: &Env, reason: &str) {
    let events = env.events(NAME).await;
    assert!(
        event_reasons(&events).iter().any(|r| r == reason),
        "no {reason} Event: {}",
        describe_events(&events)
    );
}

pub(crate) fn event_reasons(events: &[k8s_openapi::api::events::v1::Event]) -> Vec<String> {
    events.iter().filter_map(|e| e.reason.clone()).collect()
}

/// Applies v2 of a 3-instance Rollout with a pause (no duration) after every batch but the last,
/// so it stops after batch 1 until promoted.
pub(crate) async fn apply_v2_pausing(env: &Env) {
    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = serde_json::json!({});
    env.apply(&m).await;
}

/// Waits until the Rollout's current generation is in `phase` (`what` names the wait in the
/// failure message); returns the Rollout.
pub(crate) async fn wait_phase(env: &Env, what: &str, phase: RolloutPhase) -> Rollout {
    env.wait_rollout(NAME, what, LONG, |r| {
        current_generation(r) && status(r).phase == Some(phase)
    })
    .await
}

/// Waits until the current generation is rolled back; returns it and its recorded failure.
pub(crate) async fn wait_rolled_back(env: &Env) -> (Rollout, FailedUpdate) {
    let r = wait_phase(env, "RolledBack", RolloutPhase::RolledBack).await;
    let f = status(&r)
        .failed_update
        .expect("a rolled-back Rollout records failedUpdate");
    (r, f)
}

/// Waits until v2 (of [`apply_v2_pausing`] or alike on 3 instances) waits for promotion after
/// batch 1: v1 on 2 instances, v2 on 1.
pub(crate) async fn wait_promotion_after_batch_1(env: &Env) -> Rollout {
    env.wait_rollout(NAME, "waiting for promotion after batch 1", LONG, |r| {
        current_generation(r)
            && status(r).phase == Some(RolloutPhase::Paused)
            && instance_versions(r) == map(&[("v1", 2), ("v2", 1)])
    })
    .await
}

/// Waits for InvalidSpec=True on the current generation with every `needles` in its message,
/// the Rollout Degraded, and a Warning `InvalidSpec` Event whose note has every `needles` too.
pub(crate) async fn wait_invalid_spec(env: &Env, needles: &[&str]) -> Rollout {
    let r = env
        .wait_rollout(NAME, "InvalidSpec=True", LONG, |r| {
            current_generation(r) && cond(r, "InvalidSpec").0 == "True"
        })
        .await;
    let c = condition(&r, "InvalidSpec").expect("InvalidSpec");
    for n in needles {
        assert!(
            c.message.contains(n),
            "InvalidSpec message {:?} should contain {n:?}",
            c.message
        );
    }
    assert_eq!(status(&r).phase, Some(RolloutPhase::Degraded));
    let ev = env
        .wait_event(NAME, "InvalidSpec Warning", |e| {
            e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning")
        })
        .await;
    for n in needles {
        assert!(
            ev.note.as_deref().unwrap_or("").contains(n),
            "event note {:?} should contain {n:?}",
            ev.note
        );
    }
    r
}
