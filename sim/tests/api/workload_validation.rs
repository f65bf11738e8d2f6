//! What the API server does to `apps/v1` Deployments, ReplicaSets and StatefulSets before any
//! controller sees them: kube's defaults, and its refusals with kube's field paths and words.
use crate::common;

use common::{send_json, sim};
use serde_json::{json, Value};

fn deployment(name: &str, selector: Value, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"selector": selector,
                    "template": {"metadata": {"labels": labels},
                                 "spec": {"containers": [{"name": "app", "image": "app:v1"}]}}}})
}

fn statefulset(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
           "spec": {"serviceName": name, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "app:v1"}]}}}})
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/default/statefulsets";

/// The refusal's causes as (field, message).
fn causes(body: &[u8]) -> Vec<(String, String)> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v.pointer("/details/causes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("field"), s("message"))
        })
        .collect()
}

#[tokio::test]
async fn a_deployment_gets_kubes_defaults() {
    let sim = sim().await;
    let d = deployment("web", json!({"matchLabels": {"app": "web"}}), json!({"app": "web"}));
    let r = send_json(&sim, "POST", DEPLOYMENTS, &d).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    let spec = &v["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    // What admission adds to pods is not added to templates.
    assert!(pod.get("serviceAccountName").is_none(), "{pod}");
}

#[tokio::test]
async fn a_statefulset_gets_kubes_defaults() {
    let sim = sim().await;
    let r = send_json(&sim, "POST", STATEFULSETS, &statefulset("db")).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    let spec = &v["spec"];
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
}

#[tokio::test]
async fn a_selector_that_does_not_select_the_template_is_refused() {
    let sim = sim().await;
    let d = deployment("web", json!({"matchLabels": {"app": "web"}}), json!({"app": "other"}));
    let r = send_json(&sim, "POST", DEPLOYMENTS, &d).await;
    assert_eq!(r.code, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        causes(&r.body),
        vec![(
            "spec.template.metadata.labels".to_string(),
            "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
                .to_string()
        )]
    );
    let none = deployment("none", Value::Null, json!({"app": "web"}));
    let r = send_json(&sim, "POST", DEPLOYMENTS, &none).await;
    assert_eq!(r.code, 422);
    assert_eq!(causes(&r.body)[0].0, "spec.selector");
}

#[tokio::test]
async fn a_rolling_update_that_cannot_progress_is_refused() {
    let sim = sim().await;
    let mut d = deployment("web", json!({"matchLabels": {"app": "web"}}), json!({"app": "web"}));
    d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
    let r = send_json(&sim, "POST", DEPLOYMENTS, &d).await;
    assert_eq!(r.code, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        causes(&r.body),
        vec![(
            "spec.strategy.rollingUpdate.maxUnavailable".to_string(),
            "Invalid value: 0: may not be 0 when `maxSurge` is 0".to_string()
        )]
    );
    d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
    let r = send_json(&sim, "POST", DEPLOYMENTS, &d).await;
    assert_eq!(r.code, 422);
    assert_eq!(causes(&r.body)[0].0, "spec.strategy.rollingUpdate");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    d["spec"]["minReadySeconds"] = json!(10);
    d["spec"]["progressDeadlineSeconds"] = json!(10);
    let r = send_json(&sim, "POST", DEPLOYMENTS, &d).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        causes(&r.body),
        vec![(
            "spec.progressDeadlineSeconds".to_string(),
            "Invalid value: 10: must be greater than minReadySeconds".to_string()
        )]
    );
}

#[tokio::test]
async fn a_selector_cannot_change_and_a_statefulset_only_in_its_mutable_fields() {
    let sim = sim().await;
    let d = deployment(
        "web",
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "tier": "x"}),
    );
    assert_eq!(send_json(&sim, "POST", DEPLOYMENTS, &d).await.code, 201);
    let patch = json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "x"}}}});
    let r = common::raw(
        &sim,
        "PATCH",
        &format!("{DEPLOYMENTS}/web"),
        Some("application/merge-patch+json"),
        patch.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.code, 422, "{}", String::from_utf8_lossy(&r.body));
    let c = causes(&r.body);
    assert_eq!(c[0].0, "spec.selector");
    assert!(c[0].1.ends_with("field is immutable"), "{c:?}");

    assert_eq!(
        send_json(&sim, "POST", STATEFULSETS, &statefulset("db")).await.code,
        201
    );
    let sts = format!("{STATEFULSETS}/db");
    let ok = json!({"spec": {"replicas": 3, "updateStrategy": {"rollingUpdate": {"partition": 2}}}});
    let r = common::raw(
        &sim,
        "PATCH",
        &sts,
        Some("application/merge-patch+json"),
        ok.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let forbidden = json!({"spec": {"podManagementPolicy": "Parallel"}});
    let r = common::raw(
        &sim,
        "PATCH",
        &sts,
        Some("application/merge-patch+json"),
        forbidden.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.code, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(causes(&r.body)[0].0, "spec");
}

#[tokio::test]
async fn the_scale_subresource_carries_the_selector_as_a_string() {
    let sim = sim().await;
    let d = deployment("web", json!({"matchLabels": {"app": "web"}}), json!({"app": "web"}));
    assert_eq!(send_json(&sim, "POST", DEPLOYMENTS, &d).await.code, 201);
    let r = common::raw(&sim, "GET", &format!("{DEPLOYMENTS}/web/scale"), None, b"").await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["kind"], "Scale");
    assert_eq!(v["spec"]["replicas"], 1);
    assert_eq!(v["status"]["selector"], "app=web");
}
