//! Targeted batches: a batch names the instances it includes (a canary on a chosen
//! instance), with the real `baton controller`.

use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::helpers::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_batch_is_the_named_instance_and_a_bad_name_moves_nothing() {
    let env = Env::start().await;
    let _ctrl = env.controller().await;
    let mut m = env.manifest_v(NAME, 4, "v1");
    m["spec"]["strategy"] = json!({"batches": [1, "100%"], "pause": {"manual": true}});
    env.apply(&m).await;
    env.wait_healthy(NAME, "v1", 4).await;

    // v2 with the canary on svc-2: batch 1 is svc-2 alone, and the rollout waits for promote.
    let mut v2 = env.manifest_v(NAME, 4, "v2");
    v2["spec"]["strategy"] = json!({
        "batches": [1, "100%"], "pause": {"manual": true},
        "targets": [{"batch": 1, "instances": ["svc-2"]}]
    });
    env.apply(&v2).await;
    let r = env
        .wait_rollout(NAME, "batch 1 healthy, waiting for promotion", LONG, |r| {
            current_generation(r) && status(r).phase == Some(baton::api::rollout::RolloutPhase::Paused)
        })
        .await;
    assert_eq!(instance_versions(&r), map(&[("v1", 3), ("v2", 1)]));
    let canary: Vec<String> = status(&r)
        .instances
        .iter()
        .filter(|i| i.version.as_deref() == Some("v2"))
        .map(|i| i.name.clone())
        .collect();
    assert_eq!(canary, ["svc-2"], "{}", describe(Some(&r)));
    let pods = env.pods(NAME).await;
    // Only svc-2 has a v2 pod; every other instance is still on v1 (svc-2's old pod may still
    // be terminating).
    assert!(
        pods.iter().all(|p| pod_version(p) != "v2" || pod_slot(p) == 2)
            && pods.iter().all(|p| pod_slot(p) == 2 || pod_version(p) == "v1"),
        "{}",
        describe_pods(&pods)
    );

    // The API server refuses a target beyond the written batches (CEL).
    let mut beyond = v2.clone();
    beyond["spec"]["strategy"]["targets"] = json!([{"batch": 3, "instances": ["svc-1"]}]);
    let err = env
        .rollouts()
        .patch(NAME, &PatchParams::apply("test").force(), &Patch::Apply(&beyond))
        .await
        .expect_err("a target beyond the batches is refused");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(s.message.contains("strategy.targets[].batch"), "{}", s.message);
        }
        e => panic!("unexpected error {e}"),
    }

    // An instance that does not exist: InvalidSpec with a Warning Event, nothing moves. The
    // snapshot is taken once svc-2's old pod has finished terminating, so its removal (the
    // canary's, not v3's) is not counted as a move.
    let settled = env
        .wait_pods(NAME, "svc-2's old pod gone", |pods| {
            pods.len() == 4 && pods.iter().all(|p| p.metadata.deletion_timestamp.is_none())
        })
        .await;
    let before = identities(&settled);
    let mut v3 = env.manifest_v(NAME, 4, "v3");
    v3["spec"]["strategy"] = json!({
        "batches": [1, "100%"], "pause": {"manual": true},
        "targets": [{"batch": 1, "instances": ["svc-9"]}]
    });
    env.apply(&v3).await;
    let r = env
        .wait_rollout(NAME, "InvalidSpec=True", LONG, |r| {
            current_generation(r) && cond(r, "InvalidSpec").0 == "True"
        })
        .await;
    let message = condition(&r, "InvalidSpec")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("\"svc-9\"") && message.contains("svc-0 .. svc-3"),
        "{message}"
    );
    env.wait_event(NAME, "InvalidSpec Warning naming svc-9", |e| {
        e.reason.as_deref() == Some("InvalidSpec") && e.note.as_deref().unwrap_or("").contains("svc-9")
    })
    .await;
    assert_eq!(identities(&env.pods(NAME).await), before, "nothing moved");
}
