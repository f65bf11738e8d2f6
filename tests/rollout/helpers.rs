//! Shared setup for the Rollout scenarios: the Rollout's name, a deploy-and-wait helper and
//! small assertion helpers.

use std::collections::BTreeMap;
use std::process::ExitCode;

use k8s_openapi::api::core::v1::Pod;

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
    env.apply(&manifest_v(NAME, replicas, version)).await;
    env.wait_healthy(NAME, version, usize::try_from(replicas).unwrap())
        .await;
    env.pods(NAME).await
}

/// A simulator with the operator running and v1 Healthy on 3 instances (their pods).
pub(crate) async fn operator_with_v1() -> (Env, OperatorTask, Vec<Pod>) {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let pods = deployed(&env, 3, "v1").await;
    (env, op, pods)
}

pub(crate) fn event_reasons(events: &[k8s_openapi::api::events::v1::Event]) -> Vec<String> {
    events.iter().filter_map(|e| e.reason.clone()).collect()
}

/// Applies v2 of a 3-instance Rollout with a pause (no duration) after every batch but the last,
/// so it stops after batch 1 until promoted.
pub(crate) async fn apply_v2_pausing(env: &Env) {
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = serde_json::json!({});
    env.apply(&m).await;
}
