//! Deleting a CustomResourceDefinition as kube-apiserver serves it: the CRD stays, `Terminating`
//! with the `customresourcecleanup.apiextensions.k8s.io` finalizer, while its custom resources
//! are deleted (each waiting for its own finalizers) and new ones are refused; it goes once
//! none is left. With kube-rs and with real kubectl.
use crate::common;

use std::time::Duration;

use common::kubectl::Kubectl;
use common::{sim, wait_for, widget_crd};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(30);
const CRD: &str = "widgets.test.baton.dev";
const CLEANUP: &str = "customresourcecleanup.apiextensions.k8s.io";

fn widget(name: &str, finalizers: &[&str]) -> Value {
    json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget",
           "metadata": {"name": name, "namespace": "default", "finalizers": finalizers},
           "spec": {"color": "red"}})
}

fn widgets(client: &kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("test.baton.dev", "v1", "Widget"), "widgets");
    Api::namespaced_with(client.clone(), "default", &ar)
}

/// The `Terminating` condition of a CRD: (status, reason).
fn terminating(crd: &CustomResourceDefinition) -> Option<(String, String)> {
    let c = crd
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Terminating")?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

#[tokio::test]
async fn a_crd_stays_terminating_until_its_resources_let_go() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).expect("crd");
    crds.create(&PostParams::default(), &crd).await.expect("create crd");
    let api = widgets(&client);
    let create = |v: Value| {
        let api = api.clone();
        async move {
            let o: DynamicObject = serde_json::from_value(v).expect("widget");
            api.create(&PostParams::default(), &o).await
        }
    };
    create(widget("held", &["example.com/hold"]))
        .await
        .expect("create held");
    create(widget("free", &[])).await.expect("create free");
    let mut watch = api.watch(&WatchParams::default(), "0").await.expect("watch").boxed();

    // The DELETE answers the CRD, marked for deletion, with the cleanup finalizer.
    let answer = crds.delete(CRD, &DeleteParams::default()).await.expect("delete crd");
    let marked = answer.left().expect("a CRD with resources to delete answers the CRD");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(
        marked.metadata.finalizers.iter().flatten().any(|f| f == CLEANUP),
        "{:?}",
        marked.metadata
    );
    assert_eq!(terminating(&marked).map(|t| t.0), Some("True".into()));

    // The free widget goes; the held one waits for its finalizer; the CRD says why it stays.
    wait_for("widget free deleted", LONG, || async {
        api.get_opt("free").await.ok()?.is_none().then_some(())
    })
    .await;
    let held = api.get("held").await.expect("held is still served");
    assert!(held.metadata.deletion_timestamp.is_some(), "held is being deleted");
    let crd = wait_for("Terminating InstanceDeletionInProgress", LONG, || async {
        let c = crds.get(CRD).await.ok()?;
        (terminating(&c) == Some(("True".into(), "InstanceDeletionInProgress".into()))).then_some(c)
    })
    .await;
    assert!(crd.metadata.finalizers.iter().flatten().any(|f| f == CLEANUP));
    let listed = api.list(&ListParams::default()).await.expect("list while terminating");
    assert_eq!(listed.items.len(), 1);

    // No new widget while the CRD is terminating: 405 in kube-apiserver's words.
    let refused = create(widget("late", &[])).await.expect_err("create refused");
    match refused {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (405, "MethodNotAllowed"));
            assert_eq!(
                s.message,
                "create not allowed while custom resource definition is terminating"
            );
        }
        other => panic!("not an API error: {other}"),
    }

    // Updates are served (finalizers must be able to act); removing the finalizer lets it go.
    let patch = json!({"metadata": {"finalizers": null}});
    api.patch("held", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch held");
    wait_for("the CRD gone", LONG, || async {
        crds.get_opt(CRD).await.ok()?.is_none().then_some(())
    })
    .await;
    let gone = api
        .list(&ListParams::default())
        .await
        .expect_err("widgets are not served");
    assert!(matches!(gone, kube::Error::Api(ref s) if s.code == 404), "{gone}");
    // A watch of the resource ends with it.
    let ended = tokio::time::timeout(LONG, async { while watch.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the widgets watch still runs after the CRD went");
}

#[tokio::test]
async fn a_crd_without_resources_goes_at_once() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).expect("crd");
    crds.create(&PostParams::default(), &crd).await.expect("create crd");
    crds.delete(CRD, &DeleteParams::default()).await.expect("delete crd");
    wait_for("the CRD gone", LONG, || async {
        crds.get_opt(CRD).await.ok()?.is_none().then_some(())
    })
    .await;
    // Created again, it is served afresh.
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create the CRD again");
    let o: DynamicObject = serde_json::from_value(widget("again", &[])).expect("widget");
    widgets(&client)
        .create(&PostParams::default(), &o)
        .await
        .expect("a widget of the new CRD");
}

#[tokio::test]
async fn kubectl_sees_a_terminating_crd() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    let f = k.file("crd.json", &widget_crd());
    k.ok(&["apply", "-f", &f]).await;
    let held = k.file("held.json", &widget("held", &["example.com/hold"]));
    k.ok(&["apply", "-f", &held]).await;
    let out = k.ok(&["delete", "crd", CRD, "--wait=false"]).await;
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io \"widgets.test.baton.dev\" deleted"),
        "{out}"
    );
    let jsonpath = r#"jsonpath={.status.conditions[?(@.type=="Terminating")].reason}"#;
    wait_for("kubectl shows InstanceDeletionInProgress", LONG, || async {
        let r = k.run(&["get", "crd", CRD, "-o", jsonpath]).await;
        (r.code == 0 && r.stdout == "InstanceDeletionInProgress").then_some(())
    })
    .await;
    let finalizers = k
        .ok(&["get", "crd", CRD, "-o", "jsonpath={.metadata.finalizers}"])
        .await;
    assert!(finalizers.contains(CLEANUP), "{finalizers}");
    let listed = k.ok(&["get", "widgets", "-o", "name"]).await;
    assert_eq!(listed.trim(), "widget.test.baton.dev/held");

    let late = k.file("late.json", &widget("late", &[]));
    let r = k.run(&["create", "-f", &late]).await;
    assert_ne!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains("Error from server (MethodNotAllowed)")
            && r.stderr
                .contains("create not allowed while custom resource definition is terminating"),
        "{r}"
    );

    k.merge_patch("widget", "held", r#"{"metadata":{"finalizers":null}}"#)
        .await;
    k.ok(&["wait", "--for=delete", &format!("crd/{CRD}"), "--timeout=30s"])
        .await;
    // kubectl's discovery cache still knows the resource; the server no longer serves it.
    let r = k.run(&["get", "widgets"]).await;
    assert_ne!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains("Error from server (NotFound)")
            && r.stderr.contains("the server could not find the requested resource"),
        "{r}"
    );
}
