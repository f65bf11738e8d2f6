//! RBAC helpers for the simulator's tests: objects written as the admin, ServiceAccount tokens,
//! bindings, and requests with a bearer token.
use baton_sim::Sim;
use serde_json::{json, Value};

use super::raw_with;

/// An admin write of `body` to `path` (POST); panics unless 201.
pub async fn admin_create(sim: &Sim, path: &str, body: Value) {
    let r = raw_with(
        sim,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.code, 201, "POST {path}: {}", String::from_utf8_lossy(&r.body));
}

pub async fn sa(sim: &Sim, ns: &str, name: &str) -> String {
    if ns != "default" {
        let _ = raw_with(
            sim,
            "POST",
            "/api/v1/namespaces",
            &[("Content-Type", "application/json")],
            json!({"metadata": {"name": ns}}).to_string().as_bytes(),
        )
        .await;
    }
    admin_create(
        sim,
        &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
        json!({"metadata": {"name": name}}),
    )
    .await;
    sim.service_account_token(ns, name, None).expect("token")
}

pub async fn role(sim: &Sim, ns: &str, name: &str, rules: Value) {
    admin_create(
        sim,
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
        json!({"metadata": {"name": name}, "rules": rules}),
    )
    .await;
}

pub async fn cluster_role(sim: &Sim, name: &str, labels: Value, rules: Value) {
    admin_create(
        sim,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"metadata": {"name": name, "labels": labels}, "rules": rules}),
    )
    .await;
}

/// A new ClusterRole `role` of `rules` (no labels), bound to `subject` by binding `name` in `ns`
/// ("" = a ClusterRoleBinding).
pub async fn grant_cluster_role(sim: &Sim, ns: &str, name: &str, role: &str, rules: Value, subject: Value) {
    cluster_role(sim, role, json!({}), rules).await;
    bind(sim, ns, name, "ClusterRole", role, subject).await;
}

/// Bind `role_kind/role` to ServiceAccount `sa_ns/sa` in `ns` ("" = a ClusterRoleBinding).
pub async fn bind(sim: &Sim, ns: &str, name: &str, role_kind: &str, role: &str, subject: Value) {
    let (path, meta) = if ns.is_empty() {
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".to_string(),
            json!({"name": name}),
        )
    } else {
        (
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            json!({"name": name}),
        )
    };
    admin_create(
        sim,
        &path,
        json!({"metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": [subject]}),
    )
    .await;
}

pub fn sa_subject(ns: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
}

/// (code, message) of a request with bearer `token`.
/// Sends a bodiless request as `token`, expecting the answer `code`.
pub async fn answers(sim: &Sim, token: &str, method: &str, path: &str, code: u16) {
    let (got, message) = call(sim, token, method, path, None).await;
    assert_eq!(got, code, "{method} {path}: {message}");
}

pub async fn call(sim: &Sim, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let ct = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let r = raw_with(
        sim,
        method,
        path,
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", ct)],
        body.as_bytes(),
    )
    .await;
    let msg = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    (r.code, msg)
}
