//! A protobuf body reads as kube-apiserver reads it: into the Go struct, then out through
//! `encoding/json`. client-go writes every non-pointer field, zero or not; Go's `omitempty`
//! then leaves a zero non-pointer field out of the stored JSON while a pointer field set to
//! zero (`replicas: 0`, `terminationGracePeriodSeconds: 0`) stays, and a zero `metav1.Time`
//! is `null`.
use crate::common;

use common::kubectl::Kubectl;
use common::{protobuf_body, raw, sim};
use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{json, Value};

/// The keys of `v` (an object) among `keys`.
fn present<'a>(v: &Value, keys: &[&'a str]) -> Vec<&'a str> {
    keys.iter().copied().filter(|k| v.get(*k).is_some()).collect()
}

/// Go's non-pointer scalars of a PodSpec and a Container that client-go always sends and no
/// defaulting or scheduling sets.
const POD_SPEC_ZEROS: &[&str] = &["hostNetwork", "hostPID", "hostIPC", "hostname", "subdomain"];
const CONTAINER_ZEROS: &[&str] = &["stdin", "stdinOnce", "tty", "workingDir"];

#[tokio::test]
async fn kubectl_create_deployment_stores_no_go_zero_values() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    k.ok(&["create", "deployment", "pb", "--image=nginx:1.25"]).await;
    let d: Value = serde_json::from_str(&k.ok(&["get", "deploy", "pb", "-o", "json"]).await).expect("json");
    let template = &d["spec"]["template"];
    let container = &template["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.25", "{d}");
    assert_eq!(present(container, CONTAINER_ZEROS), Vec::<&str>::new(), "{container}");
    assert_eq!(
        present(&template["spec"], POD_SPEC_ZEROS),
        Vec::<&str>::new(),
        "{template}"
    );
    // The template's metadata: no `generation: 0`, and Go's zero creation time is null.
    let tmeta = template["metadata"].as_object().expect("template metadata");
    assert!(!tmeta.contains_key("generation"), "{template}");
    assert_eq!(tmeta.get("creationTimestamp"), Some(&Value::Null), "{template}");
    assert_eq!(tmeta["labels"], json!({"app": "pb"}));
    // A non-pointer struct is always in Go's JSON, however empty.
    assert_eq!(container["resources"], json!({}), "{container}");
    assert_eq!(d["spec"]["replicas"], 1);

    // `replicas` is a pointer: an explicit zero is kept.
    k.ok(&["create", "deployment", "none", "--image=nginx:1.25", "--replicas=0"])
        .await;
    let d: Value = serde_json::from_str(&k.ok(&["get", "deploy", "none", "-o", "json"]).await).expect("json");
    assert_eq!(d["spec"]["replicas"], json!(0), "{d}");
}

/// A Pod as client-go lays it out: every non-pointer field written, zero or not.
fn pod() -> pb::Pod {
    let container = pb::Container {
        name: Some("app".into()),
        image: Some("nginx:1.25".into()),
        working_dir: Some(String::new()),
        ports: vec![pb::ContainerPort {
            name: Some(String::new()),
            host_port: Some(0),
            container_port: Some(80),
            protocol: Some("TCP".into()),
            host_ip: Some(String::new()),
        }],
        resources: Some(pb::ResourceRequirements::default()),
        termination_message_path: Some(String::new()),
        termination_message_policy: Some(String::new()),
        image_pull_policy: Some(String::new()),
        security_context: Some(pb::SecurityContext {
            privileged: Some(false),
            run_as_user: Some(0),
            ..Default::default()
        }),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    };
    let spec = pb::PodSpec {
        containers: vec![container],
        restart_policy: Some(String::new()),
        termination_grace_period_seconds: Some(0),
        dns_policy: Some(String::new()),
        service_account_name: Some(String::new()),
        automount_service_account_token: Some(false),
        node_name: Some(String::new()),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: Some(String::new()),
        subdomain: Some(String::new()),
        scheduler_name: Some(String::new()),
        ..Default::default()
    };
    pb::Pod {
        metadata: Some(meta::ObjectMeta {
            name: Some("pb-pod".into()),
            namespace: Some("default".into()),
            generation: Some(0),
            // A zero `metav1.Time` goes out as an empty message.
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        spec: Some(spec),
        status: Some(pb::PodStatus::default()),
    }
}

#[tokio::test]
async fn a_protobuf_pod_keeps_pointer_zeros_and_drops_value_zeros() {
    let sim = sim().await;
    let r = raw(
        &sim,
        "POST",
        "/api/v1/namespaces/default/pods",
        Some("application/vnd.kubernetes.protobuf"),
        &protobuf_body("v1", "Pod", &pod()),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text());
    let k = Kubectl::new(&sim);
    let p: Value = serde_json::from_str(&k.ok(&["get", "pod", "pb-pod", "-o", "json"]).await).expect("json");
    let spec = &p["spec"];
    let c = &spec["containers"][0];
    assert_eq!(present(c, CONTAINER_ZEROS), Vec::<&str>::new(), "{c}");
    assert_eq!(present(spec, POD_SPEC_ZEROS), Vec::<&str>::new(), "{spec}");
    // `hostPort` and `hostIP` are non-pointer `omitempty`; `containerPort` has no `omitempty`.
    assert_eq!(c["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]), "{c}");
    // Pointers set to zero are kept, as kube-apiserver keeps them.
    assert_eq!(spec["terminationGracePeriodSeconds"], json!(0), "{spec}");
    assert_eq!(spec["automountServiceAccountToken"], json!(false), "{spec}");
    assert_eq!(
        c["securityContext"],
        json!({"privileged": false, "runAsUser": 0}),
        "{c}"
    );
}
