//! Deletion: propagation policies with the garbage collector (kube-controller-manager's on the
//! real control plane), finalizers and `deletionTimestamp`, namespaces Terminating then gone.

use serde_json::{json, Value};

use crate::harness::{Both, Pair, Req, Resp, Side, SIDES};

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";

fn cm(name: &str) -> Value {
    json!({"metadata": {"name": name}, "data": {"k": "v"}})
}

/// Create owner `owner` and a dependent `dependent` on both servers (the dependent's
/// ownerReference names each server's owner uid).
async fn owner_and_dependent(p: &Pair, owner: &str, dependent: &str) {
    let created = p.same("create", Req::post(CMS, &cm(owner))).await;
    p.compare("create.with-owner-reference", |side| {
        let o = created.get(side);
        let mut d = cm(dependent);
        d["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": owner,
            "uid": o.str("/metadata/uid"), "blockOwnerDeletion": true}]);
        Req::post(CMS, &d)
    })
    .await;
}

/// Wait until `path` answers 404 on both.
async fn gone(p: &Pair, what: &str, path: &str) -> Both<Resp> {
    p.wait_both(what, |r| r.code == 404, Req::get(path)).await
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn propagation_policies() {
    let p = Pair::start("propagation_policies").await;
    owner_and_dependent(&p, "bg", "bg-dep").await;
    p.same(
        "delete.background",
        Req::delete(format!("{CMS}/bg")).json(&json!({"propagationPolicy": "Background"})),
    )
    .await;
    gone(&p, "the background dependent collected", &format!("{CMS}/bg-dep")).await;

    owner_and_dependent(&p, "fg", "fg-dep").await;
    p.same(
        "delete.foreground",
        Req::delete(format!("{CMS}/fg")).json(&json!({"propagationPolicy": "Foreground"})),
    )
    .await;
    gone(&p, "the foreground dependent collected", &format!("{CMS}/fg-dep")).await;
    gone(&p, "the foreground owner gone", &format!("{CMS}/fg")).await;

    owner_and_dependent(&p, "or", "or-dep").await;
    p.same(
        "delete.orphan",
        Req::delete(format!("{CMS}/or")).json(&json!({"propagationPolicy": "Orphan"})),
    )
    .await;
    gone(&p, "the orphaning owner gone", &format!("{CMS}/or")).await;
    let orphan = p
        .wait_both(
            "the orphan's ownerReferences removed",
            |r| r.body["metadata"]["ownerReferences"].is_null(),
            Req::get(format!("{CMS}/or-dep")),
        )
        .await;
    p.compare_responses("get.orphaned-dependent", &orphan);

    owner_and_dependent(&p, "dflt", "dflt-dep").await;
    p.same("delete.default-policy", Req::delete(format!("{CMS}/dflt")))
        .await;
    gone(&p, "the default-policy dependent collected", &format!("{CMS}/dflt-dep")).await;
    p.same(
        "delete.orphan-dependents-flag",
        Req::delete(format!("{CMS}/absent")).json(&json!({"orphanDependents": true, "propagationPolicy": "Orphan"})),
    )
    .await;
    p.finish().await;
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn finalizers_and_namespace_deletion() {
    let p = Pair::start("finalizers_and_namespace_deletion").await;
    let held = format!("{CMS}/held");
    let mut body = cm("held");
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    p.same("create.with-finalizer", Req::post(CMS, &body)).await;
    p.same("delete.pending-finalizer", Req::delete(&held)).await;
    let pending = p.same("get.deleting", Req::get(&held)).await;
    p.same("delete.again-while-pending", Req::delete(&held)).await;
    p.compare("update.add-finalizer-while-deleting", |side| {
        let mut o = pending.get(side).body.clone();
        o["metadata"]["finalizers"] = json!(["example.com/hold", "example.com/another"]);
        Req::put(&held, &o)
    })
    .await;
    p.same(
        "patch.change-deletion-timestamp",
        Req::patch(
            &held,
            "merge",
            &json!({"metadata": {"deletionTimestamp": "2000-01-01T00:00:00Z"}}),
        ),
    )
    .await;
    p.same(
        "patch.data-while-deleting",
        Req::patch(&held, "merge", &json!({"data": {"k": "still"}})),
    )
    .await;
    p.same(
        "patch.remove-finalizer",
        Req::patch(&held, "merge", &json!({"metadata": {"finalizers": null}})),
    )
    .await;
    gone(&p, "the finalized object gone", &held).await;
    namespace_deletion(&p).await;
    p.finish().await;
}

async fn namespace_deletion(p: &Pair) {
    let ns = format!("{}-x", p.ns);
    let path = format!("/api/v1/namespaces/{ns}");
    p.same(
        "namespace.create",
        Req::post("/api/v1/namespaces", &json!({"metadata": {"name": ns}})),
    )
    .await;
    p.same("namespace.get", Req::get(&path)).await;
    let mut held = cm("keeps-it");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    p.same("create.in-namespace", Req::post(format!("{path}/configmaps"), &held))
        .await;
    p.same("namespace.delete", Req::delete(&path)).await;
    // The namespace controller deletes the content; the finalizer keeps the namespace.
    p.wait_both(
        "the held object marked for deletion",
        |r| r.body["metadata"]["deletionTimestamp"].is_string(),
        Req::get(format!("{path}/configmaps/keeps-it")),
    )
    .await;
    // The real namespace controller reports what holds the namespace in its conditions.
    p.wait(
        Side::Real,
        "the namespace's finalizers-remaining condition",
        |r| {
            r.body["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "NamespaceFinalizersRemaining" && c["status"] == "True")
            })
        },
        Req::get(&path),
    )
    .await;
    p.same("namespace.get-terminating", Req::get(&path)).await;
    p.same(
        "create.in-terminating-namespace",
        Req::post(format!("{path}/configmaps"), &cm("late")),
    )
    .await;
    p.same("namespace.delete-again", Req::delete(&path)).await;
    p.same(
        "patch.release-last-object",
        Req::patch(
            format!("{path}/configmaps/keeps-it"),
            "merge",
            &json!({"metadata": {"finalizers": null}}),
        ),
    )
    .await;
    gone(p, "the namespace gone", &path).await;
    p.same("namespace.get-gone", Req::get(&path)).await;
    for side in SIDES {
        let r = p.send(side, Req::get(format!("/api/v1/namespaces/{}", p.ns))).await;
        assert_eq!(r.code, 200, "{side}: the test's own namespace stays");
    }
}
