//! Bad input never crashes the server: each gets the Status code and reason kube-apiserver gives.
use crate::common;

use common::{raw, raw_with, send_json, sim, widget_crd};
use serde_json::json;

const JSON: Option<&str> = Some("application/json");
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const WIDGETS: &str = "/apis/test.baton.dev/v1/namespaces/default/widgets";

fn assert_status(r: &common::RawResponse, code: u16, reason: &str) {
    assert_eq!(r.code, code, "body: {}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["reason"], reason, "body: {v}");
    assert_eq!(v["code"], code);
}

/// Sends a request the API server must refuse with a `Status` of `code` and `reason`.
async fn refused(
    sim: &baton_sim::Sim,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    code: u16,
    reason: &str,
) -> common::RawResponse {
    let r = raw(sim, method, path, content_type, body).await;
    assert_status(&r, code, reason);
    r
}

/// The `message` of a Status answer.
fn message(r: &common::RawResponse) -> String {
    r.json()["message"].as_str().unwrap_or_default().to_string()
}

/// A PATCH of `path` with a body of `content_type` refused with 415.
async fn patch_refused_as_unsupported(sim: &baton_sim::Sim, path: &str, content_type: &str, body: &[u8]) {
    refused(
        sim,
        "PATCH",
        path,
        Some(content_type),
        body,
        415,
        "UnsupportedMediaType",
    )
    .await;
}

/// A GET of `path` refused with `code` and `reason`.
async fn get_refused(sim: &baton_sim::Sim, path: &str, code: u16, reason: &str) -> common::RawResponse {
    refused(sim, "GET", path, None, b"", code, reason).await
}

/// POSTs `body` (of `content_type`) to the ConfigMaps of `default`: refused with `code` and
/// `reason`.
async fn configmap_refused(
    sim: &baton_sim::Sim,
    content_type: &str,
    body: &[u8],
    code: u16,
    reason: &str,
) -> common::RawResponse {
    refused(sim, "POST", CONFIGMAPS, Some(content_type), body, code, reason).await
}

/// Serve the test's Widget CRD.
async fn install_widgets(sim: &baton_sim::Sim) {
    let r = send_json(
        sim,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &widget_crd(),
    )
    .await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn malformed_json_is_400() {
    let sim = sim().await;
    configmap_refused(&sim, "application/json", b"{\"metadata\": ", 400, "BadRequest").await;
}

#[tokio::test]
async fn malformed_yaml_is_400() {
    let sim = sim().await;
    configmap_refused(&sim, "application/yaml", b"metadata: [unclosed", 400, "BadRequest").await;
}

#[tokio::test]
async fn apply_bodies_are_json_or_yaml_and_malformed_ones_are_400() {
    let sim = sim().await;
    let path = "/api/v1/namespaces/default/configmaps/applied?fieldManager=test";
    let ct = Some("application/apply-patch+yaml");
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k: from-yaml\n";
    let r = raw(&sim, "PATCH", path, ct, yaml).await;
    assert_eq!(r.code, 201, "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["data"]["k"], "from-yaml");
    let json =
        br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "from-json"}}"#;
    let r = raw(&sim, "PATCH", path, ct, json).await;
    assert_eq!(r.code, 200, "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["data"]["k"], "from-json");
    let r = raw(&sim, "PATCH", path, ct, b"metadata: [unclosed").await;
    assert_status(&r, 400, "BadRequest");
}

#[tokio::test]
async fn unknown_resource_is_404() {
    let sim = sim().await;
    get_refused(&sim, "/api/v1/namespaces/default/gizmos", 404, "NotFound").await;
    // A group nobody serves is the mux's plain-text 404, as kube-apiserver's.
    let r = raw(&sim, "GET", "/apis/nope.example.com/v1/things", None, b"").await;
    assert_eq!(r.code, 404);
    assert_eq!(String::from_utf8_lossy(&r.body), "404 page not found\n");
}

#[tokio::test]
async fn missing_object_is_404_with_details() {
    let sim = sim().await;
    let r = get_refused(&sim, "/api/v1/namespaces/default/pods/ghost", 404, "NotFound").await;
    let v = r.json();
    assert_eq!(v["message"], "pods \"ghost\" not found");
    assert_eq!(v["details"]["name"], "ghost");
}

#[tokio::test]
async fn unsupported_verb_is_405() {
    let sim = sim().await;
    refused(&sim, "PUT", CONFIGMAPS, JSON, b"{}", 405, "MethodNotAllowed").await;
    refused(&sim, "POST", "/version", JSON, b"{}", 405, "MethodNotAllowed").await;
}

#[tokio::test]
async fn body_over_3_mib_is_413() {
    let sim = sim().await;
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    configmap_refused(&sim, "application/json", &big, 413, "RequestEntityTooLarge").await;
}

#[tokio::test]
async fn wrong_content_types_are_415() {
    let sim = sim().await;
    configmap_refused(&sim, "text/plain", b"hello", 415, "UnsupportedMediaType").await;
    let body = json!({"metadata": {"name": "x"}}).to_string();
    raw(&sim, "POST", CONFIGMAPS, JSON, body.as_bytes()).await;
    patch_refused_as_unsupported(&sim, &format!("{CONFIGMAPS}/x"), "application/xml", b"<x/>").await;
}

#[tokio::test]
async fn strategic_merge_on_custom_resource_is_415() {
    let sim = sim().await;
    install_widgets(&sim).await;
    let w = json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"color": "red"}}).to_string();
    let r = raw(&sim, "POST", WIDGETS, JSON, w.as_bytes()).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    patch_refused_as_unsupported(
        &sim,
        &format!("{WIDGETS}/w"),
        "application/strategic-merge-patch+json",
        b"{\"spec\":{\"color\":\"blue\"}}",
    )
    .await;
}

#[tokio::test]
async fn bad_selectors_are_400() {
    let sim = sim().await;
    get_refused(
        &sim,
        "/api/v1/namespaces/default/pods?labelSelector=a%20in%20(b",
        400,
        "BadRequest",
    )
    .await;
    let r = get_refused(
        &sim,
        "/api/v1/namespaces/default/pods?fieldSelector=spec.bogus%3Dx",
        400,
        "BadRequest",
    )
    .await;
    assert!(message(&r).contains("field label not supported"), "{}", message(&r));
}

#[tokio::test]
async fn schema_violations_are_422_with_a_cause_per_field() {
    let sim = sim().await;
    install_widgets(&sim).await;
    let w = json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget", "metadata": {"name": "w"},
                   "spec": {"color": "purple", "replicas": -1, "note": "much too long a note", "tags": ["a", "b", "c", "d"]}}).to_string();
    let r = refused(&sim, "POST", WIDGETS, JSON, w.as_bytes(), 422, "Invalid").await;
    let v = r.json();
    let fields: Vec<String> = v["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .map(|c| c["field"].as_str().unwrap_or("").to_string())
        .collect();
    for f in ["spec.color", "spec.replicas", "spec.note", "spec.tags"] {
        assert!(fields.iter().any(|x| x == f), "no cause for {f}: {fields:?}");
    }
    let missing = json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {}})
        .to_string();
    let r = refused(&sim, "POST", WIDGETS, JSON, missing.as_bytes(), 422, "Invalid").await;
    assert_eq!(r.json()["details"]["causes"][0]["reason"], "FieldValueRequired");
}

#[tokio::test]
async fn strict_field_validation_rejects_unknown_fields() {
    let sim = sim().await;
    install_widgets(&sim).await;
    let w = json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"color": "red", "bogus": 1}}).to_string();
    let r = refused(
        &sim,
        "POST",
        "/apis/test.baton.dev/v1/namespaces/default/widgets?fieldValidation=Strict",
        JSON,
        w.as_bytes(),
        400,
        "BadRequest",
    )
    .await;
    assert!(message(&r).contains("unknown field \"spec.bogus\""), "{}", message(&r));
    // Warn (the default) prunes and says so in a Warning header.
    let r = raw(&sim, "POST", WIDGETS, JSON, w.as_bytes()).await;
    assert_eq!(r.code, 201);
    assert!(r.header("Warning").unwrap_or("").contains("spec.bogus"));
    assert!(r.json()["spec"].get("bogus").is_none(), "unknown field pruned");
}

#[tokio::test]
async fn invalid_names_and_oversized_annotations_are_422() {
    let sim = sim().await;
    let bad = json!({"metadata": {"name": "Not_Valid"}}).to_string();
    configmap_refused(&sim, "application/json", bad.as_bytes(), 422, "Invalid").await;
    let long = "a".repeat(254);
    let bad = json!({"metadata": {"name": long}}).to_string();
    configmap_refused(&sim, "application/json", bad.as_bytes(), 422, "Invalid").await;
    let huge = "x".repeat(262_145);
    let bad = json!({"metadata": {"name": "big", "annotations": {"a": huge}}}).to_string();
    let r = configmap_refused(&sim, "application/json", bad.as_bytes(), 422, "Invalid").await;
    assert_eq!(r.json()["details"]["causes"][0]["field"], "metadata.annotations");
}

#[tokio::test]
async fn watch_from_an_expired_version_gets_410_expired() {
    let sim = baton_sim::Sim::start(baton_sim::SimConfig {
        history: 16,
        ..Default::default()
    })
    .await
    .expect("sim");
    for i in 0..40 {
        let b = json!({"metadata": {"name": format!("c{i}")}}).to_string();
        raw(&sim, "POST", CONFIGMAPS, JSON, b.as_bytes()).await;
    }
    let r = raw(
        &sim,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2&timeoutSeconds=1",
        None,
        b"",
    )
    .await;
    assert_eq!(r.code, 200);
    let line: serde_json::Value =
        serde_json::from_slice(r.body.split(|b| *b == b'\n').next().unwrap_or(b"")).expect("event");
    assert_eq!(line["type"], "ERROR");
    assert_eq!(line["object"]["code"], 410);
    assert_eq!(line["object"]["reason"], "Expired");
}

/// The lines of a watch's body, as JSON.
fn watch_events(r: &common::RawResponse) -> Vec<serde_json::Value> {
    r.body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("event"))
        .collect()
}

/// As kube-apiserver, whose watch cache is per resource: another resource's writes do not
/// expire a watch's resourceVersion (the simulator's history was one for all resources, so an
/// idle Lease watch got 410 after a burst of pod writes and its client listed everything again).
#[tokio::test]
async fn another_resources_writes_do_not_expire_a_watch() {
    let sim = baton_sim::Sim::start(baton_sim::SimConfig {
        history: 16,
        ..Default::default()
    })
    .await
    .expect("sim");
    let b = json!({"metadata": {"name": "c0"}}).to_string();
    let created = raw(&sim, "POST", CONFIGMAPS, JSON, b.as_bytes()).await;
    let rv = created.json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    for i in 0..40 {
        let b = json!({"metadata": {"name": format!("s{i}")}}).to_string();
        let r = raw(&sim, "POST", "/api/v1/namespaces/default/secrets", JSON, b.as_bytes()).await;
        assert_eq!(r.code, 201);
    }
    // One more ConfigMap after the secrets: the resumed watch sees it, and nothing else.
    let b = json!({"metadata": {"name": "c1"}}).to_string();
    raw(&sim, "POST", CONFIGMAPS, JSON, b.as_bytes()).await;
    let path = format!("{CONFIGMAPS}?watch=true&resourceVersion={rv}&timeoutSeconds=1");
    let r = raw(&sim, "GET", &path, None, b"").await;
    assert_eq!(r.code, 200);
    let events = watch_events(&r);
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or(""),
                e["object"]["metadata"]["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(seen, [("ADDED", "c1")], "{events:?}");
}

/// An idle watch's bookmarks carry the store's version (as the watch cache's follow etcd's
/// progress), so its client resumes from a recent version.
#[tokio::test]
async fn an_idle_watchs_bookmark_carries_the_stores_version() {
    let sim = baton_sim::Sim::start(baton_sim::SimConfig {
        bookmark_interval: std::time::Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .expect("sim");
    // The configmaps' version before the writes to another resource.
    let list = raw(&sim, "GET", CONFIGMAPS, None, b"").await;
    let from = list.json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("a list's resourceVersion")
        .to_string();
    let mut last = 0u64;
    for i in 0..5 {
        let b = json!({"metadata": {"name": format!("s{i}")}}).to_string();
        let r = raw(&sim, "POST", "/api/v1/namespaces/default/secrets", JSON, b.as_bytes()).await;
        last = r.json()["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("rv");
    }
    let path = format!("{CONFIGMAPS}?watch=true&resourceVersion={from}&allowWatchBookmarks=true&timeoutSeconds=2");
    let r = raw(&sim, "GET", &path, None, b"").await;
    let bookmarks: Vec<u64> = watch_events(&r)
        .iter()
        .filter(|e| e["type"] == "BOOKMARK")
        .filter_map(|e| e["object"]["metadata"]["resourceVersion"].as_str()?.parse().ok())
        .collect();
    assert!(!bookmarks.is_empty(), "no bookmark in 2 s at a 200 ms interval");
    assert!(bookmarks.iter().all(|rv| *rv >= last), "{bookmarks:?} < {last}");
}

#[tokio::test]
async fn namespace_that_does_not_exist_is_404_and_bad_dry_run_is_400() {
    let sim = sim().await;
    let b = json!({"metadata": {"name": "x"}}).to_string();
    refused(
        &sim,
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        JSON,
        b.as_bytes(),
        404,
        "NotFound",
    )
    .await;
    refused(
        &sim,
        "POST",
        "/api/v1/namespaces/default/configmaps?dryRun=Some",
        JSON,
        b.as_bytes(),
        422,
        "Invalid",
    )
    .await;
    // dryRun=All answers as if created but stores nothing.
    let r = raw(
        &sim,
        "POST",
        "/api/v1/namespaces/default/configmaps?dryRun=All",
        JSON,
        b.as_bytes(),
    )
    .await;
    assert_eq!(r.code, 201);
    let r = raw_with(&sim, "GET", "/api/v1/namespaces/default/configmaps/x", &[], b"").await;
    assert_eq!(r.code, 404);
}

#[tokio::test]
async fn malformed_protobuf_is_400_and_kinds_not_served_are_415() {
    use baton_sim::protobuf::MAGIC;
    use k8s_pb::api::core::v1::ConfigMap;
    use k8s_pb::apimachinery::pkg::apis::meta::v1::{FieldsV1, ObjectMeta};
    const PB: &str = "application/vnd.kubernetes.protobuf";
    let sim = sim().await;
    let path = "/api/v1/namespaces/default/secrets";
    // No magic; magic then a truncated field; a Secret whose metadata.name is not UTF-8
    // (FieldsV1's field 1 has the wire shape of Secret's metadata).
    let bad_name = FieldsV1 {
        raw: Some(vec![0x0a, 0x02, 0xc3, 0x28]),
    };
    let bad_secret = common::protobuf_body("v1", "Secret", &bad_name);
    for body in [
        b"{}".to_vec(),
        [MAGIC.as_slice(), &[0x0a, 0x40, 0x01]].concat(),
        bad_secret,
    ] {
        let r = raw(&sim, "POST", path, Some(PB), &body).await;
        assert_status(&r, 400, "BadRequest");
        let r = raw(&sim, "PUT", &format!("{path}/x"), Some(PB), &body).await;
        assert_status(&r, 400, "BadRequest");
    }
    // A well-formed protobuf body of a kind not served (a StatefulSet): 415 naming the kind.
    let sts = ConfigMap {
        metadata: Some(ObjectMeta {
            name: Some("p".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = raw(
        &sim,
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(PB),
        &common::protobuf_body("apps/v1", "StatefulSet", &sts),
    )
    .await;
    assert_status(&r, 415, "UnsupportedMediaType");
    assert!(
        r.json()["message"].as_str().unwrap_or("").contains("\"StatefulSet\""),
        "{}",
        r.json()
    );
    assert_eq!(r.json()["details"]["kind"], "StatefulSet");
    // Nothing was stored by any of these.
    let r = raw(&sim, "GET", path, None, b"").await;
    assert_eq!(r.json()["items"], json!([]));
    let r = raw(&sim, "GET", "/api/v1/namespaces/default/pods", None, b"").await;
    assert_eq!(r.json()["items"], json!([]));
}

/// Pods the way kube-apiserver's pod validation refuses them: no containers, a container port
/// out of range or zero, a label key or value that is not a label — 422 Invalid with the field
/// and kube-apiserver's words in the message.
#[tokio::test]
async fn invalid_pods_are_422_with_kube_apiservers_messages() {
    let sim = sim().await;
    let pod = |spec: serde_json::Value, labels: serde_json::Value| {
        serde_json::to_vec(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": labels},
            "spec": spec,
        }))
        .unwrap()
    };
    let container = |ports: serde_json::Value| json!({"containers": [{"name": "c", "image": "i", "ports": ports}]});
    let cases = [
        (
            pod(json!({"containers": []}), json!({})),
            "spec.containers: Required value",
        ),
        (
            pod(container(json!([{"containerPort": -1}])), json!({})),
            "spec.containers[0].ports[0].containerPort: Invalid value: -1: must be between 1 and 65535, inclusive",
        ),
        (
            pod(container(json!([{"containerPort": 70000}])), json!({})),
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            pod(container(json!([{"containerPort": 0}])), json!({})),
            "spec.containers[0].ports[0].containerPort: Required value",
        ),
        (
            pod(
                container(json!([])),
                json!({"app.kubernetes.io/version": "v1.2.3+build"}),
            ),
            "metadata.labels: Invalid value: \"v1.2.3+build\"",
        ),
        (
            pod(container(json!([])), json!({"bad key": "x"})),
            "metadata.labels: Invalid value: \"bad key\"",
        ),
    ];
    for (body, needle) in cases {
        let r = refused(
            &sim,
            "POST",
            "/api/v1/namespaces/default/pods",
            JSON,
            &body,
            422,
            "Invalid",
        )
        .await;
        let message = r.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(message.starts_with("Pod \"p\" is invalid: "), "{message}");
        assert!(message.contains(needle), "{message:?} should contain {needle:?}");
    }
    let ok = pod(container(json!([{"containerPort": 8080}])), json!({"app": "a"}));
    let r = raw(&sim, "POST", "/api/v1/namespaces/default/pods", JSON, &ok).await;
    assert_eq!(r.code, 201, "body: {}", String::from_utf8_lossy(&r.body));
}
