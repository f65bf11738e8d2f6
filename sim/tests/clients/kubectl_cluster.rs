//! Real kubectl against what every cluster has and does: `kubectl create` of
//! built-in kinds (protobuf bodies), `describe` and `events --for` finding Events written through
//! events.k8s.io/v1, and client-side → server-side → client-side apply.
use crate::common;

use common::kubectl::{Kubectl, Run};
use common::{sim, widget_crd};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use serde_json::json;

#[tokio::test]
async fn describe_and_events_for_show_events_recorded_through_events_k8s_io() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    let crd = k.file("crd.json", &widget_crd());
    k.ok(&["apply", "-f", &crd]).await;
    let w = k.file("w.json", &json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"color": "red"}}));
    k.ok(&["apply", "-f", &w]).await;
    let client = sim.client().await.expect("client");
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("test.baton.dev", "v1", "Widget"), "widgets");
    let widget = Api::<DynamicObject>::namespaced_with(client.clone(), "default", &ar)
        .get("w1")
        .await
        .expect("widget");
    // What baton's controller does: kube-runtime's Recorder, i.e. events.k8s.io/v1.
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "baton-rollout".into(),
            instance: None,
        },
    );
    recorder
        .publish(
            &Event {
                type_: EventType::Warning,
                reason: "InvalidSpec".into(),
                note: Some("spec.color: fix me".into()),
                action: "Validate".into(),
                secondary: None,
            },
            &widget.object_ref(&ar),
        )
        .await
        .expect("publish");

    let out = k.ok(&["describe", "widget", "w1"]).await;
    let events = out
        .split("Events:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Events section:\n{out}"));
    assert!(!events.contains("<none>"), "{out}");
    assert!(
        events.contains("Warning")
            && events.contains("InvalidSpec")
            && events.contains("baton-rollout")
            && events.contains("spec.color: fix me"),
        "{out}"
    );

    let out = k.ok(&["events", "--for", "widget/w1"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one event:\n{out}");
    assert!(
        lines[0].contains("TYPE") && lines[0].contains("REASON") && lines[0].contains("MESSAGE"),
        "{out}"
    );
    assert!(
        lines[1].contains("Warning")
            && lines[1].contains("InvalidSpec")
            && lines[1].contains("Widget/w1")
            && lines[1].contains("spec.color: fix me"),
        "{out}"
    );
}

fn cm(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": data})
}

#[tokio::test]
async fn client_side_then_server_side_then_client_side_apply() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    let f = k.file("cm1.json", &cm(json!({"a": "1", "b": "1"})));
    assert_eq!(k.ok(&["apply", "-f", &f]).await.trim(), "configmap/settings created");
    // Moving to server-side apply: no conflict with kubectl-client-side-apply for its fields.
    let f = k.file("cm2.json", &cm(json!({"a": "2", "b": "1"})));
    let Run {
        code,
        stdout: out,
        stderr: err,
    } = k.run(&["apply", "--server-side", "-f", &f]).await;
    assert_eq!(
        code, 0,
        "server-side apply after client-side apply conflicted:\n{out}\n{err}"
    );
    assert_eq!(out.trim(), "configmap/settings serverside-applied");
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().await.expect("client"));
    let live = cms.get("settings").await.expect("get");
    assert_eq!(
        live.data.as_ref().and_then(|d| d.get("a")).map(String::as_str),
        Some("2")
    );
    // The last-applied annotation follows the server-side apply ...
    let ann = live
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/last-applied-configuration"))
        .expect("last-applied annotation");
    let last: serde_json::Value = serde_json::from_str(ann).expect("json");
    assert_eq!(last["data"], json!({"a": "2", "b": "1"}));
    // ... so a later client-side apply that drops a key removes it.
    let f = k.file("cm3.json", &cm(json!({"b": "3"})));
    assert_eq!(k.ok(&["apply", "-f", &f]).await.trim(), "configmap/settings configured");
    let live = cms.get("settings").await.expect("get");
    assert_eq!(live.data, Some([("b".to_string(), "3".to_string())].into()));

    // A field someone else changed since the client-side apply still conflicts.
    let f = k.file(
        "other1.json",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}, "data": {"x": "1"}}),
    );
    k.ok(&["apply", "-f", &f]).await;
    k.merge_patch("configmap", "other", r#"{"data":{"x":"edited"}}"#).await;
    let f = k.file(
        "other2.json",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}, "data": {"x": "2"}}),
    );
    let Run { code, stderr: err, .. } = k.run(&["apply", "--server-side", "-f", &f]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.x"),
        "{err}"
    );
}

#[tokio::test]
async fn kubectl_create_sends_protobuf_for_built_in_kinds() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    assert_eq!(
        k.ok(&["create", "namespace", "team"]).await.trim(),
        "namespace/team created"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=2",
            "-n",
            "team"
        ])
        .await
        .trim(),
        "deployment.apps/web created"
    );
    assert_eq!(
        k.ok(&["create", "serviceaccount", "robot", "-n", "team"]).await.trim(),
        "serviceaccount/robot created"
    );
    assert_eq!(
        k.ok(&["create", "configmap", "conf", "--from-literal=a=1", "-n", "team"])
            .await
            .trim(),
        "configmap/conf created"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "secret",
            "generic",
            "pw",
            "--from-literal=p=s3cret",
            "-n",
            "team"
        ])
        .await
        .trim(),
        "secret/pw created"
    );
    assert_eq!(
        k.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080", "-n", "team"])
            .await
            .trim(),
        "service/web created"
    );
    assert_eq!(
        k.ok(&["create", "job", "once", "--image=busybox:1", "-n", "team"])
            .await
            .trim(),
        "job.batch/once created"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "role",
            "reader",
            "--verb=get",
            "--resource=pods",
            "-n",
            "team"
        ])
        .await
        .trim(),
        "role.rbac.authorization.k8s.io/reader created"
    );
    // What was stored is the object kubectl meant.
    let client = sim.client().await.expect("client");
    let d = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "team",
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", "Deployment"), "deployments"),
    )
    .get("web")
    .await
    .expect("deployment");
    assert_eq!(d.data["spec"]["replicas"], 2);
    assert_eq!(
        d.data["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(d.data["spec"]["selector"]["matchLabels"], json!({"app": "web"}));
    let s = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "team")
        .get("pw")
        .await
        .expect("secret");
    assert_eq!(
        s.data.and_then(|d| d.get("p").map(|b| b.0.clone())),
        Some(b"s3cret".to_vec())
    );
    let svc = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client, "team")
        .get("web")
        .await
        .expect("service");
    let port = &svc.spec.and_then(|s| s.ports).expect("ports")[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (
            80,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
        )
    );
    // kubectl reads them back (Tables, JSON) and a protobuf-only client gets protobuf.
    let out = k
        .ok(&["get", "deploy,sa,cm,secret,svc,job", "-n", "team", "-o", "name"])
        .await;
    for n in [
        "deployment.apps/web",
        "serviceaccount/robot",
        "serviceaccount/default",
        "configmap/conf",
        "configmap/kube-root-ca.crt",
        "secret/pw",
        "service/web",
        "job.batch/once",
    ] {
        assert!(out.lines().any(|l| l == n), "{n} missing from:\n{out}");
    }
    let r = common::raw_with(
        &sim,
        "GET",
        "/api/v1/namespaces/team/configmaps/conf",
        &[("Accept", "application/vnd.kubernetes.protobuf")],
        b"",
    )
    .await;
    assert_eq!(r.code, 200);
    assert_eq!(r.header("content-type"), Some("application/vnd.kubernetes.protobuf"));
    let decoded = baton_sim::protobuf::decode(&r.body).expect("protobuf answer");
    assert_eq!(decoded["data"], json!({"a": "1"}));
    // A custom resource asked for in protobuf only: 406, as kube-apiserver answers.
    let crd = k.file("crd.json", &widget_crd());
    k.ok(&["apply", "-f", &crd]).await;
    let r = common::raw_with(
        &sim,
        "GET",
        "/apis/test.baton.dev/v1/namespaces/default/widgets",
        &[("Accept", "application/vnd.kubernetes.protobuf")],
        b"",
    )
    .await;
    assert_eq!(r.code, 406);
    let _ = ConfigMap::default();
}
