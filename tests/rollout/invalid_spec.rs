//! (8) Invalid specs: InvalidSpec=True saying what to fix, a Warning Event, nothing moves.

use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::helpers::*;
use crate::support::*;

/// Waits for InvalidSpec=True on the current generation, with every `needles` in its message
/// and in a Warning Event, the Rollout Degraded, and no pod created, deleted or changed since
/// `before`. Returns the Rollout as it was then.
async fn refused_and_nothing_moved(
    env: &Env,
    rec: &PodRecorder,
    before: &[k8s_openapi::api::core::v1::Pod],
    needles: &[&str],
) -> baton::api::rollout::Rollout {
    let r = wait_invalid_spec(env, needles).await;
    // The reconcile that wrote this status has applied its actions: nothing moved.
    let after = env.pods(NAME).await;
    assert_eq!(
        identities(&after),
        identities(before),
        "pods changed: {}",
        describe_pods(&after)
    );
    let h = rec.take();
    assert!(h.creations.is_empty() && h.deletions.is_empty(), "{h:?}");
    r
}

/// Deploys v1, then merges `invalid` (which also asks for v2) into the spec; expects
/// InvalidSpec=True with every `needles` in its message, a Warning Event, and no pod touched.
/// Then fixes the spec and expects v2 to roll out.
async fn invalid_spec_case(invalid: serde_json::Value, needles: &[&str]) {
    let (env, op, before) = operator_with_v1().await;
    let rec = PodRecorder::start(&env, NAME).await;

    let mut patch = invalid;
    patch["spec"]["version"] = json!("v2");
    patch["spec"]["template"] =
        json!({"metadata": {"labels": {"app": NAME}}, "spec": {"containers": [{"name": "app", "image": "svc:v2"}]}});
    env.merge(NAME, patch).await;
    let r = refused_and_nothing_moved(&env, &rec, &before, needles).await;
    let c = condition(&r, "InvalidSpec").unwrap();
    assert_eq!(c.reason, "InvalidSpec");
    assert!(status(&r).message.unwrap_or_default().contains("nothing is changed"));
    assert_eq!(
        cond(&r, "Available").0,
        "True",
        "the running instances are still available"
    );
    let revisions: kube::Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        kube::Api::namespaced(env.client.clone(), &env.ns);
    let revs = revisions.list(&Default::default()).await.unwrap().items;
    assert_eq!(revs.len(), 1, "no revision is created for an invalid spec");

    // Fix it: the whole valid manifest for v2.
    env.merge(NAME, json!({"spec": {"pins": null}})).await;
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert_eq!(cond(&r, "InvalidSpec"), ("False".into(), "SpecValid".into()));
    op.stop().await;
}

/// Strategy mistakes the CRD's rules can express never reach the controller: the API server
/// answers 422 with the rule's message (CEL rules and patterns, enforced by the simulator as by
/// kube-apiserver), and the stored spec, its generation and the pods are unchanged. The
/// planner's own checks (for objects stored before the rules existed) are unit-tested in
/// `crates/baton-controller/src/rollout/planner`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategy_mistakes_are_refused_by_the_api_with_the_rule_message() {
    let (env, op, before) = operator_with_v1().await;
    let generation = env.get(NAME).await.metadata.generation;
    let cases = [
        (
            json!({"batches": [2, 1, "100%"]}),
            "strategy.batches are cumulative targets and must not decrease",
        ),
        (
            json!({"batches": [1, "150%"]}),
            "spec.strategy.batches[1]: Invalid value: \"150%\"",
        ),
        (
            json!({"maxSurge": 0, "maxUnavailable": "0%"}),
            "maxSurge and maxUnavailable must not both be zero",
        ),
    ];
    for (strategy, needle) in cases {
        let patch = json!({"spec": {"version": "v2", "strategy": strategy}});
        let err = env
            .rollouts()
            .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect_err("an invalid strategy must be refused");
        match &err {
            kube::Error::Api(s) => {
                assert_eq!(s.code, 422, "{patch}: {s:?}");
                assert!(s.message.contains(needle), "{patch}: {}", s.message);
            }
            other => panic!("{patch}: expected a 422 Status, got {other:?}"),
        }
    }
    let r = env.get(NAME).await;
    assert_eq!(r.metadata.generation, generation);
    assert_eq!(r.spec.version, "v1");
    assert_eq!(identities(&env.pods(NAME).await), identities(&before));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_pin_of_unknown_version() {
    invalid_spec_case(
        json!({"spec": {"pins": [{"instances": ["svc-1"], "version": "v0.9"}]}}),
        &[
            "spec.pins[0].version \"v0.9\" is not in the revision history",
            "known: v1",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_pin_of_unknown_instance() {
    invalid_spec_case(
        json!({"spec": {"pins": [{"instances": ["svc-7"], "version": "v1"}]}}),
        &["\"svc-7\"", "svc-0 .. svc-2"],
    )
    .await;
}

/// Negative replicas never reach the controller: the CRD's OpenAPI schema (`minimum: 0`) makes
/// the API server answer 422, as kube-apiserver does. Nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_replicas_are_rejected_by_the_api_with_422() {
    let (env, op, before) = operator_with_v1().await;
    let generation = env.get(NAME).await.metadata.generation;
    let err = env
        .rollouts()
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1, "version": "v2"}})),
        )
        .await
        .expect_err("replicas -1 must be rejected");
    match &err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(s.message.contains("replicas"), "{}", s.message);
        }
        other => panic!("expected a 422 Status, got {other:?}"),
    }
    let mut m = env.manifest_v("neg", -2, "v1");
    m["metadata"]["name"] = json!("neg");
    let err = env
        .rollouts()
        .patch("neg", &PatchParams::apply("test").force(), &Patch::Apply(&m))
        .await
        .expect_err("a new Rollout with replicas -2 must be rejected");
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 422), "{err:?}");
    let r = env.get(NAME).await;
    assert_eq!(r.metadata.generation, generation);
    assert_eq!((r.spec.replicas, r.spec.version.as_str()), (3, "v1"));
    assert_eq!(identities(&env.pods(NAME).await), identities(&before));
    op.stop().await;
}

/// Deploys v1, then merges `invalid` (a v2 the API server refuses to make pods or revisions
/// of); expects InvalidSpec=True carrying the API server's 422 message (`needles`), one
/// Warning Event with it, no pod touched, and no retry storm; then the fix rolls v2 out.
async fn refused_by_the_api_server_case(invalid: serde_json::Value, needles: &[&str]) {
    let (env, op, before) = operator_with_v1().await;
    let rec = PodRecorder::start(&env, NAME).await;
    env.merge(NAME, invalid).await;
    let r = refused_and_nothing_moved(&env, &rec, &before, needles).await;
    let c = condition(&r, "InvalidSpec").unwrap();
    assert!(c.message.contains("the API server refuses"), "{}", c.message);
    // Nothing of the refused plan is reported as done: no batch of it started, and Progressing
    // does not say it is rolling out.
    let started: Vec<_> = env
        .events(NAME)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("BatchStarted"))
        .filter_map(|e| e.note)
        .filter(|n| !n.contains("v1 "))
        .collect();
    assert!(started.is_empty(), "{started:?}");
    let progressing = condition(&r, "Progressing")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(!progressing.contains("rolling out"), "{progressing}");

    // Fix it: the invalid label key removed (a merge patch owns it), the valid v2 manifest.
    env.merge(
        NAME,
        json!({"spec": {"template": {"metadata": {"labels": {"bad key": null}}}}}),
    )
    .await;
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert_eq!(cond(&r, "InvalidSpec"), ("False".into(), "SpecValid".into()));
    let invalid_events = env
        .events(NAME)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("InvalidSpec"))
        .count();
    assert_eq!(invalid_events, 1, "one InvalidSpec event for one invalid generation");
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_version_that_is_not_a_label_value() {
    refused_by_the_api_server_case(
        json!({"spec": {"version": "v1.2.3+build"}}),
        &["metadata.labels", "Invalid value: \"v1.2.3+build\""],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_template_without_containers() {
    refused_by_the_api_server_case(
        json!({"spec": {"version": "v2", "template": {"spec": {"containers": []}}}}),
        &["spec.containers: Required value"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_template_label_key() {
    refused_by_the_api_server_case(
        json!({"spec": {"version": "v2", "template": {"metadata": {"labels": {"bad key": "x"}}}}}),
        &["metadata.labels", "Invalid value: \"bad key\""],
    )
    .await;
}
