//! Create, get, update and delete of a core kind, with their failures: conflicts, stale and
//! missing resourceVersions, preconditions, malformed bodies.

use serde_json::{json, Value};

use crate::harness::{Both, Pair, Req, Side};

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "x"}}, "data": {"k": "v"}})
}

/// Whether the resourceVersion changed between two answers, per server.
fn rv_changed(before: &Both<crate::harness::Resp>, after: &Both<crate::harness::Resp>) -> Both<Value> {
    before.map(|side, b| {
        let a = after.get(side);
        json!(b.str("/metadata/resourceVersion") != a.str("/metadata/resourceVersion"))
    })
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn create_get_update_delete() {
    let p = Pair::start("create_get_update_delete").await;
    let one = format!("{CMS}/one");
    p.same("create", Req::post(CMS, &cm("one"))).await;
    p.same("create.already-exists", Req::post(CMS, &cm("one"))).await;
    p.same(
        "create.generate-name",
        Req::post(CMS, &json!({"metadata": {"generateName": "gen-"}, "data": {"a": "b"}})),
    )
    .await;
    p.same(
        "create.namespace-mismatch",
        Req::post(CMS, &json!({"metadata": {"name": "x", "namespace": "elsewhere"}})),
    )
    .await;
    p.same(
        "create.kind-mismatch",
        Req::post(
            CMS,
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        ),
    )
    .await;
    p.same(
        "create.malformed-json",
        Req::new(http::Method::POST, CMS)
            .header("Content-Type", "application/json")
            .bytes(b"{\"metadata\": ".to_vec()),
    )
    .await;
    p.same("create.no-name", Req::post(CMS, &json!({"metadata": {}}))).await;
    p.same("get", Req::get(&one)).await;
    p.same("get.not-found", Req::get(format!("{CMS}/absent"))).await;
    p.same(
        "get.namespace-not-found",
        Req::get("/api/v1/namespaces/diff-absent-namespace/configmaps/x"),
    )
    .await;
    p.same("get.unknown-resource", Req::get("/api/v1/namespaces/{ns}/widgetz/x"))
        .await;
    p.same("get.unknown-group", Req::get("/apis/nothing.example.com/v1/things"))
        .await;
    updates(&p, &one).await;
    deletes(&p, &one).await;
    p.finish().await;
}

async fn updates(p: &Pair, one: &str) {
    let current = p.same("get", Req::get(one)).await;
    let updated = p
        .compare("update.with-resource-version", |side| {
            let mut o = current.get(side).body.clone();
            o["data"]["k"] = json!("v2");
            Req::put(one, &o)
        })
        .await;
    p.compare_values("update.bumps-resource-version", rv_changed(&current, &updated));
    p.compare("update.stale-resource-version", |side| {
        let mut o = current.get(side).body.clone();
        o["data"]["k"] = json!("v3");
        Req::put(one, &o)
    })
    .await;
    let unconditional = p
        .same(
            "update.without-resource-version",
            Req::put(one, &json!({"metadata": {"name": "one"}, "data": {"k": "v4"}})),
        )
        .await;
    let noop = p
        .compare("update.no-op", |side| Req::put(one, &unconditional.get(side).body))
        .await;
    p.compare_values("update.no-op-keeps-resource-version", rv_changed(&unconditional, &noop));
    p.same(
        "update.name-mismatch",
        Req::put(one, &json!({"metadata": {"name": "two"}, "data": {}})),
    )
    .await;
    p.same(
        "update.not-found",
        Req::put(format!("{CMS}/absent"), &json!({"metadata": {"name": "absent"}})),
    )
    .await;
    p.compare("update.invalid-resource-version", |side| {
        let mut o = noop.get(side).body.clone();
        o["metadata"]["resourceVersion"] = json!("not-a-number");
        Req::put(one, &o)
    })
    .await;
}

async fn deletes(p: &Pair, one: &str) {
    let zero_uid = "00000000-0000-0000-0000-000000000000";
    p.same(
        "delete.precondition-uid-mismatch",
        Req::delete(one).json(&json!({"preconditions": {"uid": zero_uid}})),
    )
    .await;
    p.compare("delete.precondition-resource-version-mismatch", |side| {
        let _ = side;
        Req::delete(one).json(&json!({"preconditions": {"resourceVersion": "1"}}))
    })
    .await;
    let live = p.same("get", Req::get(one)).await;
    p.compare("delete.preconditions-met", |side| {
        let l = live.get(side);
        Req::delete(one).json(&json!({
            "apiVersion": "v1", "kind": "DeleteOptions",
            "preconditions": {"uid": l.str("/metadata/uid"), "resourceVersion": l.str("/metadata/resourceVersion")},
        }))
    })
    .await;
    p.same("delete.not-found", Req::delete(one)).await;
    p.same(
        "delete.bad-propagation-policy",
        Req::delete(format!("{CMS}/gen")).json(&json!({"propagationPolicy": "Sideways"})),
    )
    .await;
    for side in [Side::Sim, Side::Real] {
        let r = p.send(side, Req::post(CMS, &cm("dry"))).await;
        assert_eq!(r.code, 201, "{side}: {}", r.body);
    }
    p.same("delete.dry-run", Req::delete(format!("{CMS}/dry?dryRun=All")))
        .await;
    p.same("get.after-dry-run-delete", Req::get(format!("{CMS}/dry"))).await;
}
