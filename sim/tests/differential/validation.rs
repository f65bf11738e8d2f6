//! Refusals a user's manifest meets: OpenAPI and CEL (`x-kubernetes-validations`) failures of
//! baton's own CRDs, metadata limits, dry runs.

use serde_json::{json, Value};

use crate::harness::{Pair, Req, SIDES};
use crate::setup::install_baton_crds;
use crate::subresources::{rollout, ROLLOUTS};

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";
const LISTENERSETS: &str = "/apis/baton.dev/v1alpha1/namespaces/{ns}/listenersets";

/// `rollout("bad")` with `change` applied to its spec.
fn bad_rollout(change: impl FnOnce(&mut Value)) -> Value {
    let mut r = rollout("bad", 2);
    change(&mut r["spec"]);
    r
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn crd_validation_failures() {
    let p = Pair::start("crd_validation_failures").await;
    install_baton_crds(&p).await;
    let cases: Vec<(&str, Value)> = vec![
        (
            "crd.invalid.required",
            bad_rollout(|s| drop(s.as_object_mut().map(|o| o.remove("version")))),
        ),
        ("crd.invalid.type", bad_rollout(|s| s["replicas"] = json!("two"))),
        ("crd.invalid.minimum", bad_rollout(|s| s["replicas"] = json!(-1))),
        ("crd.invalid.maximum", bad_rollout(|s| s["bakeSeconds"] = json!(604801))),
        (
            "crd.invalid.enum",
            bad_rollout(|s| {
                s["workloadRef"] =
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "scaleDown": "sometimes"});
                drop(s.as_object_mut().map(|o| o.remove("template")));
            }),
        ),
        (
            "crd.invalid.cel-both-set",
            bad_rollout(|s| s["workloadRef"] = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"})),
        ),
        (
            "crd.invalid.cel-neither-set",
            bad_rollout(|s| drop(s.as_object_mut().map(|o| o.remove("template")))),
        ),
        (
            "crd.invalid.cel-field-path",
            bad_rollout(|s| s["template"]["metadata"]["labels"] = json!({"app": "other"})),
        ),
        (
            "crd.invalid.cel-batches",
            bad_rollout(|s| s["strategy"] = json!({"batches": [2, 1]})),
        ),
        (
            "crd.invalid.several",
            bad_rollout(|s| {
                s["replicas"] = json!(-5);
                s["workloadRef"] = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"});
            }),
        ),
        (
            "crd.invalid.unknown-field-dropped",
            bad_rollout(|s| s["colour"] = json!("blue")),
        ),
    ];
    for (kind, body) in cases {
        p.same(kind, Req::post(ROLLOUTS, &body)).await;
        for side in SIDES {
            p.send(side, Req::delete(format!("{ROLLOUTS}/bad"))).await;
        }
    }
    p.same(
        "crd.invalid.unknown-field-strict",
        Req::post(
            format!("{ROLLOUTS}?fieldValidation=Strict"),
            &bad_rollout(|s| s["colour"] = json!("blue")),
        ),
    )
    .await;
    let listeners = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": "ls"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "listeners": [{"id": "one"}, {"id": "one"}], "leaseDurationSeconds": 0}});
    p.same("crd.invalid.listenerset", Req::post(LISTENERSETS, &listeners))
        .await;
    // A key repeated more than once, and two keys repeated: each reported at its second
    // occurrence only.
    let ids = ["a", "b", "a", "a", "b", "c"].map(|id| json!({"id": id}));
    let repeats = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": "ls"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "listeners": ids}});
    p.same("crd.invalid.listenerset-repeats", Req::post(LISTENERSETS, &repeats))
        .await;
    list_map_owners(&p).await;
    p.finish().await;
}

/// Two managers applying items of one list map (a ListenerSet's listeners, keyed by `id`):
/// whose fields each item is, as the answers' managed fields show.
async fn list_map_owners(p: &Pair) {
    let set = |listeners: Value| {
        json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": "owned"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "listeners": listeners}})
    };
    let path = format!("{LISTENERSETS}/owned");
    let apply = |manager: &str, force: &str, body: Value| {
        Req::patch(format!("{path}?fieldManager={manager}{force}"), "apply", &body)
    };
    let three = json!([{"id": "a"}, {"id": "b"}, {"id": "c"}]);
    p.same("apply.listmap.create", apply("one", "", set(three))).await;
    let suspend_b = json!([{"id": "b", "suspend": true}, {"id": "d"}]);
    p.same("apply.listmap.second-manager", apply("two", "", set(suspend_b)))
        .await;
    let b_resumed = json!([{"id": "a"}, {"id": "b", "suspend": false}, {"id": "c"}]);
    p.same("apply.listmap.conflict", apply("one", "", set(b_resumed.clone())))
        .await;
    p.same("apply.listmap.forced", apply("one", "&force=true", set(b_resumed)))
        .await;
    p.same("apply.listmap.drop-item", apply("two", "", set(json!([{"id": "d"}]))))
        .await;
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn metadata_limits_and_dry_run() {
    let p = Pair::start("metadata_limits_and_dry_run").await;
    let long = "n".repeat(254);
    let cases = [
        ("create.invalid.name-too-long", json!({"metadata": {"name": long}})),
        (
            "create.invalid.name-characters",
            json!({"metadata": {"name": "Bad_Name"}}),
        ),
        (
            "create.invalid.generate-name",
            json!({"metadata": {"generateName": "Bad_"}}),
        ),
        (
            "create.invalid.annotations-too-large",
            json!({"metadata": {"name": "big", "annotations": {"big": "x".repeat(256 * 1024)}}}),
        ),
        (
            "create.invalid.label-key",
            json!({"metadata": {"name": "lk", "labels": {"bad key": "v"}}}),
        ),
        (
            "create.invalid.label-value",
            json!({"metadata": {"name": "lv", "labels": {"k": "v".repeat(64)}}}),
        ),
        (
            "create.invalid.annotation-key",
            json!({"metadata": {"name": "ak", "annotations": {"/nope": "v"}}}),
        ),
        (
            "create.invalid.finalizer-name",
            json!({"metadata": {"name": "fz", "finalizers": ["not a finalizer"]}}),
        ),
        (
            "create.invalid.data-key",
            json!({"metadata": {"name": "dk"}, "data": {"bad key!": "v"}}),
        ),
    ];
    for (kind, body) in cases {
        p.same(kind, Req::post(CMS, &body)).await;
    }
    p.same(
        "create.too-large-body",
        Req::post(
            CMS,
            &json!({"metadata": {"name": "huge"}, "data": {"x": "y".repeat(3 * 1024 * 1024 + 10)}}),
        ),
    )
    .await;
    let dry = json!({"metadata": {"name": "dry"}, "data": {"k": "v"}});
    p.same("create.dry-run", Req::post(format!("{CMS}?dryRun=All"), &dry))
        .await;
    p.same("get.after-dry-run-create", Req::get(format!("{CMS}/dry"))).await;
    p.same(
        "create.dry-run-unknown-value",
        Req::post(format!("{CMS}?dryRun=Some"), &dry),
    )
    .await;
    p.same(
        "create.dry-run-generate-name",
        Req::post(
            format!("{CMS}?dryRun=All"),
            &json!({"metadata": {"generateName": "dry-"}}),
        ),
    )
    .await;
    p.same(
        "create.dry-run-invalid",
        Req::post(format!("{CMS}?dryRun=All"), &json!({"metadata": {"name": "Bad_"}})),
    )
    .await;
    p.same("create", Req::post(CMS, &dry)).await;
    p.same(
        "update.dry-run",
        Req::put(
            format!("{CMS}/dry?dryRun=All"),
            &json!({"metadata": {"name": "dry"}, "data": {"k": "changed"}}),
        ),
    )
    .await;
    p.same(
        "patch.dry-run",
        Req::patch(
            format!("{CMS}/dry?dryRun=All"),
            "merge",
            &json!({"data": {"k": "patched"}}),
        ),
    )
    .await;
    p.same("get.after-dry-runs", Req::get(format!("{CMS}/dry"))).await;
    p.finish().await;
}
