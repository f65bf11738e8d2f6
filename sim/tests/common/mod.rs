//! Shared test helpers: start a simulator, raw HTTP requests, waiting on conditions. The
//! generic parts are the root crate's test harness (`tests/support`), included here.
#![allow(dead_code)]
#[path = "../../../tests/support/http.rs"]
pub mod http;
#[path = "../../../tests/support/kubectl.rs"]
pub mod kubectl;
pub mod rbac;
#[path = "../../../tests/support/wait.rs"]
pub mod wait;

use baton_sim::{Sim, SimConfig};
use serde_json::{json, Value};

pub async fn sim() -> Sim {
    Sim::start(SimConfig::default()).await.expect("simulator starts")
}

#[allow(unused_imports)]
pub use http::RawResponse;
#[allow(unused_imports)]
pub use wait::wait_for;

/// Send one HTTP/1.1 request with `Connection: close` and read the whole answer.
pub async fn raw(sim: &Sim, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> RawResponse {
    raw_with(sim, method, path, &[("Content-Type", content_type.unwrap_or(""))], body).await
}

/// The request carries the simulator's admin token unless `headers` has an `Authorization`
/// (an empty value sends none: anonymous).
pub async fn raw_with(sim: &Sim, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    let admin = format!("Bearer {}", baton_sim::ADMIN);
    let mut headers = headers.to_vec();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
        headers.push(("Authorization", &admin));
    }
    http::request(sim.addr(), method, path, &headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// `body` as JSON, as the admin.
#[allow(dead_code)]
pub async fn send_json(sim: &Sim, method: &str, path: &str, body: &Value) -> RawResponse {
    raw(sim, method, path, Some("application/json"), body.to_string().as_bytes()).await
}

/// A DELETE as the admin with `propagationPolicy: Background` (dependents go after the owner).
#[allow(dead_code)]
pub async fn delete_in_background(sim: &Sim, path: &str) -> RawResponse {
    raw(
        sim,
        "DELETE",
        path,
        Some("application/json"),
        br#"{"propagationPolicy":"Background"}"#,
    )
    .await
}

/// A GET as the admin, asking for `accept`.
#[allow(dead_code)]
pub async fn get_accepting(sim: &Sim, path: &str, accept: &str) -> RawResponse {
    raw_with(sim, "GET", path, &[("Accept", accept)], b"").await
}

/// A body as client-go sends it with `Content-Type: application/vnd.kubernetes.protobuf`:
/// the `k8s\0` magic, then `runtime.Unknown{typeMeta, raw: object}`.
pub fn protobuf_body(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    baton_sim::protobuf::envelope(api_version, kind, object.encode_to_vec())
}

/// A namespaced test CRD `widgets.test.baton.dev` with status and scale subresources,
/// printer columns and a schema exercising validation.
/// A namespaced CRD of `kind` in `group` (plural: the kind in lower case plus "s") serving one
/// version, `v1`, its storage version, with the other fields of `version` (schema,
/// subresources, printer columns).
pub fn crd(group: &str, kind: &str, version: Value) -> Value {
    let singular = kind.to_lowercase();
    let plural = format!("{singular}s");
    let mut served = json!({"name": "v1", "served": true, "storage": true});
    if let (Some(v), Value::Object(extra)) = (served.as_object_mut(), version) {
        v.extend(extra);
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": singular, "kind": kind, "listKind": format!("{kind}List")},
            "versions": [served],
        },
    })
}

pub fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.baton.dev"},
        "spec": {
            "group": "test.baton.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wdg"], "categories": ["all"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                        "spec": {"type": "object", "required": ["color"], "properties": {
                            "replicas": {"type": "integer", "minimum": 0, "default": 1},
                            "color": {"type": "string", "enum": ["red", "green", "blue"]},
                            "note": {"type": "string", "maxLength": 10},
                            "tags": {"type": "array", "maxItems": 3, "items": {"type": "string"}}
                        }},
                        "status": {"type": "object", "properties": {
                            "replicas": {"type": "integer"},
                            "phase": {"type": "string"},
                            "conditions": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                        }}
                    }
                }}
            }]
        }
    })
}
