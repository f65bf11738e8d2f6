//! Who a write is recorded as: the default field manager is the User-Agent's program name, as
//! kube-apiserver's `prefixFromUserAgent` derives it, and never anything of the credentials;
//! server-side apply names its manager, and an apply that creates needs `create` too.
use crate::common;

use common::rbac::{bind, role, sa, sa_subject};
use common::{raw_with, sim};
use serde_json::{json, Value};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

/// A request as `token`, with `user_agent` unless it is empty (then no User-Agent header).
async fn send(
    sim: &baton_sim::Sim,
    token: &str,
    user_agent: &str,
    (method, path, content_type): (&str, &str, &str),
    body: Value,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str()), ("Content-Type", content_type)];
    if !user_agent.is_empty() {
        headers.push(("User-Agent", user_agent));
    }
    let r = raw_with(sim, method, path, &headers, body.to_string().as_bytes()).await;
    (r.code, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

fn managers(lease: &Value) -> Vec<String> {
    lease["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["manager"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn lease_writer(sim: &baton_sim::Sim, name: &str, verbs: Value) -> String {
    let token = sa(sim, "default", name).await;
    role(
        sim,
        "default",
        name,
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": verbs}]),
    )
    .await;
    bind(sim, "default", name, "Role", name, sa_subject("default", name)).await;
    token
}

#[tokio::test]
async fn the_default_field_manager_is_the_user_agents_program_never_the_token() {
    let sim = sim().await;
    let token = lease_writer(&sim, "writer", json!(["create", "get", "list", "patch", "update"])).await;
    let json_ct = "application/json";
    let (code, created) = send(
        &sim,
        &token,
        "",
        ("POST", LEASES, json_ct),
        json!({"metadata": {"name": "plain"}, "spec": {"holderIdentity": "a"}}),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        managers(&created),
        vec!["unknown".to_string()],
        "no User-Agent: kube-apiserver records the write under \"unknown\""
    );
    let merge = "application/merge-patch+json";
    // A merge patch without a User-Agent or fieldManager: "unknown" too, never "".
    let (code, patched) = send(
        &sim,
        &token,
        "",
        ("PATCH", &format!("{LEASES}/plain"), merge),
        json!({"spec": {"leaseDurationSeconds": 7}}),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(managers(&patched), vec!["unknown".to_string()], "{patched}");
    let (code, patched) = send(
        &sim,
        &token,
        "kubectl/v1.31.0 (linux/amd64) kubernetes/abcdef0",
        ("PATCH", &format!("{LEASES}/plain"), merge),
        json!({"spec": {"holderIdentity": "b"}}),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert!(managers(&patched).contains(&"kubectl".to_string()), "{patched}");
    let (code, patched) = send(
        &sim,
        &token,
        "my agent without a slash",
        ("PATCH", &format!("{LEASES}/plain"), merge),
        json!({"spec": {"holderIdentity": "c"}}),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert!(
        managers(&patched).contains(&"my agent without a slash".to_string()),
        "{patched}"
    );
    // No stored object carries a credential: not the ServiceAccount's, not the admin's.
    let all = raw_with(&sim, "GET", "/apis/coordination.k8s.io/v1/leases", &[], b"").await;
    let text = String::from_utf8_lossy(&all.body);
    assert_eq!(all.code, 200);
    assert!(!text.contains(&token), "a token in a stored Lease: {text}");
    assert!(
        !text.contains(baton_sim::ADMIN),
        "the admin token in a stored Lease: {text}"
    );
    assert!(!text.contains("token="), "{text}");
}

#[tokio::test]
async fn server_side_apply_names_its_manager_and_needs_create_to_create() {
    let sim = sim().await;
    let patcher = lease_writer(&sim, "patcher", json!(["get", "patch"])).await;
    let apply = "application/apply-patch+yaml";
    let lease = |name: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
               "spec": {"holderIdentity": "p"}})
    };
    // No fieldManager: refused, whoever asks.
    let (code, body) = send(
        &sim,
        &patcher,
        "kubectl/v1.31.0",
        ("PATCH", &format!("{LEASES}/new"), apply),
        lease("new"),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    // `patch` alone does not create: refused as kube-apiserver v1.33 refuses it (checked with
    // `kubectl apply --server-side --as=…` on the real control plane).
    let path = format!("{LEASES}/new?fieldManager=tester");
    let (code, body) = send(&sim, &patcher, "", ("PATCH", &path, apply), lease("new")).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "leases.coordination.k8s.io \"new\" is forbidden: User \"system:serviceaccount:default:patcher\" \
         cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\""
    );
    let missing = raw_with(&sim, "GET", &format!("{LEASES}/new"), &[], b"").await;
    assert_eq!(missing.code, 404, "nothing was created");
    // An object that exists is applied to with `patch`.
    let admin_made = raw_with(
        &sim,
        "POST",
        LEASES,
        &[("Content-Type", "application/json")],
        lease("old").to_string().as_bytes(),
    )
    .await;
    assert_eq!(admin_made.code, 201);
    let path = format!("{LEASES}/old?fieldManager=tester");
    let (code, body) = send(&sim, &patcher, "", ("PATCH", &path, apply), lease("old")).await;
    assert_eq!(code, 200, "{body}");
    assert!(managers(&body).contains(&"tester".to_string()), "{body}");
    // With `create` granted, the apply creates.
    let creator = lease_writer(&sim, "creator", json!(["create", "patch"])).await;
    let path = format!("{LEASES}/new?fieldManager=tester");
    let (code, body) = send(&sim, &creator, "", ("PATCH", &path, apply), lease("new")).await;
    assert_eq!(code, 201, "{body}");
}
