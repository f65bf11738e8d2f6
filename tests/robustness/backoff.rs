//! (7) Failing reconciles back off exponentially per object.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

use crate::controller::{start, temp_dir, NO_ELECTION};
use crate::support::{current_generation, manifest_v, wait_for, Env, LONG};

/// JSON patch of the Rollout CRD's status schema: `status.message` at most `n` characters.
async fn limit_status_message(env: &Env, n: Option<i64>) {
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let path = "/spec/versions/0/schema/openAPIV3Schema/properties/status/properties/message/maxLength";
    let op = match n {
        Some(n) => json!([{"op": "add", "path": path, "value": n}]),
        None => json!([{"op": "remove", "path": path}]),
    };
    let patch: json_patch::Patch = serde_json::from_value(op).expect("a JSON patch");
    crds.patch("rollouts.baton.dev", &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .expect("patching the CRD");
}

fn duration_secs(v: &Value) -> Option<f64> {
    // `retry_in` is logged with Debug: "1s", "2s", "100ms".
    let s = v.as_str()?;
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse::<f64>().ok().map(|m| m / 1000.0);
    }
    s.strip_suffix('s')?.parse().ok()
}

/// The API server refuses every status write of one Rollout (its CRD's status schema changed
/// under it). Its reconciles fail; they are retried 1 s, 2 s, 4 s, … apart (before: every
/// second, forever), with one log line per attempt and `baton_reconcile_backoff_objects` 1; once
/// writes pass again it is reconciled and the gauge returns to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_reconciles_back_off_exponentially_per_object() {
    let env = Env::start().await;
    let dir = temp_dir("backoff");
    let mut c = start(&env.sim, dir.path(), "baton-backoff", &NO_ELECTION).await;
    c.wait_ready().await;
    env.apply(&manifest_v("svc", 1, "v1")).await;
    env.wait_healthy("svc", "v1", 1).await;

    limit_status_message(&env, Some(1)).await;
    env.merge("svc", json!({"spec": {"revisionHistoryLimit": 5}})).await;
    let failed = wait_for("four failed attempts", LONG, || async {
        let lines: Vec<Value> = c
            .log_lines("reconcile failed")
            .into_iter()
            .filter(|l| l["rollout"] == "svc")
            .collect();
        (lines.len() >= 4).then_some(lines)
    })
    .await;
    let delays: Vec<f64> = failed.iter().filter_map(|l| duration_secs(&l["retry_in"])).collect();
    let attempts: Vec<i64> = failed.iter().filter_map(|l| l["attempt"].as_i64()).collect();
    assert_eq!(&attempts[..4], &[1, 2, 3, 4], "{failed:?}");
    assert_eq!(&delays[..4], &[1.0, 2.0, 4.0, 8.0], "{failed:?}");
    assert!(
        failed[0]["error"].as_str().unwrap_or("").contains("422"),
        "{:?}",
        failed[0]
    );
    assert_eq!(
        c.metric("baton_reconcile_backoff_objects{controller=\"rollout\"}")
            .await,
        Some(1.0)
    );

    // Writes pass again; a change wakes it at once and the success resets the backoff.
    limit_status_message(&env, None).await;
    env.merge("svc", json!({"metadata": {"annotations": {"test/poke": "1"}}}))
        .await;
    env.wait_rollout("svc", "reconciled at its generation", LONG, current_generation)
        .await;
    wait_for("baton_reconcile_backoff_objects 0", LONG, || async {
        (c.metric("baton_reconcile_backoff_objects{controller=\"rollout\"}")
            .await
            == Some(0.0))
        .then_some(())
    })
    .await;
    c.stop().await;
    let _ = Duration::ZERO;
}
