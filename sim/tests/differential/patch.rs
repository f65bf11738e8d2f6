//! The four patch types — JSON merge, JSON patch, strategic merge (a Service's ports merge
//! by `port`), server-side apply with its field managers, conflicts and `force` — and who a
//! write is recorded as.

use serde_json::{json, Value};

use crate::harness::{Pair, Req};

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";
const SVCS: &str = "/api/v1/namespaces/{ns}/services";

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1", "b": "2"}})
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn patches_and_server_side_apply() {
    let p = Pair::start("patches_and_server_side_apply").await;
    p.same("create", Req::post(CMS, &cm("m"))).await;
    merge_and_json_patches(&p).await;
    strategic_merge(&p).await;
    server_side_apply(&p).await;
    field_managers(&p).await;
    p.finish().await;
}

async fn merge_and_json_patches(p: &Pair) {
    let m = format!("{CMS}/m");
    p.same(
        "patch.merge",
        Req::patch(
            &m,
            "merge",
            &json!({"data": {"a": null, "c": "3"}, "metadata": {"labels": {"x": "y"}}}),
        ),
    )
    .await;
    p.same(
        "patch.merge.stale-resource-version",
        Req::patch(
            &m,
            "merge",
            &json!({"metadata": {"resourceVersion": "1"}, "data": {"d": "4"}}),
        ),
    )
    .await;
    p.same(
        "patch.merge.not-found",
        Req::patch(format!("{CMS}/absent"), "merge", &json!({"data": {}})),
    )
    .await;
    p.same(
        "patch.merge.malformed",
        Req::patch(&m, "merge", &json!(null)).bytes(b"{\"data\": ".to_vec()),
    )
    .await;
    p.same(
        "patch.json",
        Req::patch(
            &m,
            "json",
            &json!([
                {"op": "test", "path": "/data/b", "value": "2"},
                {"op": "replace", "path": "/data/b", "value": "two"},
                {"op": "add", "path": "/metadata/annotations", "value": {"note": "added"}},
                {"op": "remove", "path": "/data/c"},
            ]),
        ),
    )
    .await;
    p.same(
        "patch.json.test-fails",
        Req::patch(&m, "json", &json!([{"op": "test", "path": "/data/b", "value": "nope"}])),
    )
    .await;
    p.same(
        "patch.json.remove-missing",
        Req::patch(&m, "json", &json!([{"op": "remove", "path": "/data/missing"}])),
    )
    .await;
    p.same(
        "patch.json.not-a-list",
        Req::patch(&m, "json", &json!({"op": "add", "path": "/data/z", "value": "1"})),
    )
    .await;
    p.same(
        "patch.unsupported-media-type",
        Req::patch(&m, "text/plain", &json!({"data": {"z": "1"}})),
    )
    .await;
    p.same(
        "patch.strategic.configmap",
        Req::patch(&m, "strategic", &json!({"data": {"s": "1"}})),
    )
    .await;
}

fn service(ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": ports}})
}

async fn strategic_merge(p: &Pair) {
    let web = format!("{SVCS}/web");
    p.same(
        "create.service",
        Req::post(
            SVCS,
            &service(json!([{"name": "http", "port": 80, "targetPort": 8080}])),
        ),
    )
    .await;
    p.same(
        "patch.strategic.merge-by-key",
        Req::patch(
            &web,
            "strategic",
            &json!({"spec": {"ports": [{"name": "https", "port": 443}]}}),
        ),
    )
    .await;
    p.same(
        "patch.strategic.delete-directive",
        Req::patch(
            &web,
            "strategic",
            &json!({"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}),
        ),
    )
    .await;
    p.same(
        "patch.strategic.replace-directive",
        Req::patch(
            &web,
            "strategic",
            &json!({"spec": {"ports": [{"name": "metrics", "port": 9090}], "$setElementOrder/ports": [{"port": 9090}]}}),
        ),
    )
    .await;
    p.same(
        "patch.merge.service-ports-replaced",
        Req::patch(
            &web,
            "merge",
            &json!({"spec": {"ports": [{"name": "only", "port": 81}]}}),
        ),
    )
    .await;
    p.same(
        "patch.strategic.invalid-value",
        Req::patch(&web, "strategic", &json!({"spec": {"ports": [{"port": 70000}]}})),
    )
    .await;
}

async fn server_side_apply(p: &Pair) {
    let path = format!("{CMS}/applied");
    let apply = |manager: &str, extra: &str, body: Value| {
        Req::patch(format!("{path}?fieldManager={manager}{extra}"), "apply", &body)
    };
    let cfg =
        |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": data});
    p.same("apply.create", apply("alice", "", cfg(json!({"a": "1", "b": "2"}))))
        .await;
    p.same(
        "apply.same-manager-update",
        apply("alice", "", cfg(json!({"a": "1", "b": "3"}))),
    )
    .await;
    p.same("apply.conflict", apply("bob", "", cfg(json!({"a": "other"}))))
        .await;
    p.same(
        "apply.shared-value-no-conflict",
        apply("bob", "", cfg(json!({"a": "1"}))),
    )
    .await;
    p.same(
        "apply.force",
        apply("carol", "&force=true", cfg(json!({"b": "forced"}))),
    )
    .await;
    p.same("apply.drop-owned-field", apply("alice", "", cfg(json!({"a": "1"}))))
        .await;
    p.same(
        "apply.without-field-manager",
        Req::patch(path.clone(), "apply", &cfg(json!({"a": "1"}))),
    )
    .await;
    p.same(
        "apply.force-on-merge-patch",
        Req::patch(format!("{path}?force=true"), "merge", &json!({"data": {"z": "1"}})),
    )
    .await;
    p.same(
        "apply.name-mismatch",
        apply(
            "alice",
            "",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}),
        ),
    )
    .await;
    p.same(
        "apply.kind-missing",
        apply(
            "alice",
            "",
            json!({"metadata": {"name": "applied"}, "data": {"a": "1"}}),
        ),
    )
    .await;
    p.same(
        "apply.yaml-body",
        Req::patch(format!("{path}?fieldManager=dave"), "apply", &json!(null)).bytes(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  y: \"from yaml\"\n".to_vec(),
        ),
    )
    .await;
    p.same("apply.dry-run", apply("erin", "&dryRun=All", cfg(json!({"e": "dry"}))))
        .await;
    p.same("get.after-applies", Req::get(&path)).await;
}

/// The default field manager comes from the User-Agent (kube-apiserver's
/// `prefixFromUserAgent`); with none, the write is recorded under `unknown`.
async fn field_managers(p: &Pair) {
    let m = format!("{CMS}/m");
    p.same(
        "patch.merge.user-agent-manager",
        Req::patch(&m, "merge", &json!({"data": {"ua": "1"}})).header("User-Agent", "some-tool/2.1 (linux)"),
    )
    .await;
    p.same(
        "patch.merge.no-user-agent",
        Req::patch(&m, "merge", &json!({"data": {"nua": "1"}})).header("User-Agent", ""),
    )
    .await;
    p.same(
        "patch.merge.explicit-manager",
        Req::patch(
            format!("{m}?fieldManager=explicit"),
            "merge",
            &json!({"data": {"ex": "1"}}),
        ),
    )
    .await;
    p.same(
        "patch.merge.manager-too-long",
        Req::patch(
            format!("{m}?fieldManager={}", "m".repeat(129)),
            "merge",
            &json!({"data": {"l": "1"}}),
        ),
    )
    .await;
    p.same(
        "create.no-user-agent",
        Req::post(CMS, &cm("anonymous-agent")).header("User-Agent", ""),
    )
    .await;
}
