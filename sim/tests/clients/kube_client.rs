//! The simulator as kube-rs sees it: watches, reflectors, concurrency, subresources, GC.
use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{protobuf_body, raw, sim, wait_for, widget_crd};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use rand::{Rng, SeedableRng};
use serde_json::json;

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": value}})).expect("configmap")
}

#[tokio::test]
async fn reflector_over_random_writes_with_dropped_watches_equals_final_list() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (reader, writer) = reflector::store();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let driver = tokio::spawn(async move {
        let mut s = std::pin::pin!(stream);
        while s.next().await.is_some() {}
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..1000u32 {
        let name = format!("cm-{}", rng.random_range(0..60));
        match rng.random_range(0..3) {
            0 => {
                let _ = api.create(&PostParams::default(), &cm(&name, &i.to_string())).await;
            }
            1 => {
                let patch = json!({"data": {"v": i.to_string()}});
                let _ = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
            }
            _ => {
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
        }
        if rng.random_range(0..100) == 0 {
            sim.faults.drop_watches(None);
        }
    }
    let listed: BTreeMap<String, String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.unwrap_or_default(),
                c.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect();
    assert!(!listed.is_empty(), "the random writes should leave some objects");
    wait_for("the reflector to match the final list", Duration::from_secs(20), || {
        let cached: BTreeMap<String, String> = reader
            .state()
            .iter()
            .map(|c| {
                (
                    c.metadata.name.clone().unwrap_or_default(),
                    c.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect();
        let same = cached == listed;
        async move { same.then_some(()) }
    })
    .await;
    driver.abort();
}

#[tokio::test]
async fn stale_update_gets_409_conflict() {
    let sim = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client().await.expect("client"), "default");
    let created = api
        .create(&PostParams::default(), &cm("one", "a"))
        .await
        .expect("create");
    let mut fresh = created.clone();
    fresh.data = Some(BTreeMap::from([("v".to_string(), "b".to_string())]));
    api.replace("one", &PostParams::default(), &fresh)
        .await
        .expect("first update");
    let mut stale = created;
    stale.data = Some(BTreeMap::from([("v".to_string(), "c".to_string())]));
    match api.replace("one", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
        }
        other => panic!("expected 409, got {other:?}"),
    }
}

async fn widget_api(client: kube::Client) -> Api<DynamicObject> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).expect("crd");
    crds.create(&PostParams::default(), &crd).await.expect("create crd");
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("test.baton.dev", "v1", "Widget"), "widgets");
    Api::namespaced_with(client, "default", &ar)
}

#[tokio::test]
async fn status_writes_keep_generation_and_status_endpoint_ignores_spec() {
    let sim = sim().await;
    let api = widget_api(sim.client().await.expect("client")).await;
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"color": "red"}})).expect("widget");
    let created = api.create(&PostParams::default(), &w).await.expect("create widget");
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.data["spec"]["replicas"], json!(1), "schema default applied");

    let st = api
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready", "replicas": 1}, "spec": {"color": "blue"}})),
        )
        .await
        .expect("status patch");
    assert_eq!(st.metadata.generation, Some(1), "status write must not bump generation");
    assert_eq!(st.data["status"]["phase"], json!("Ready"));
    assert_eq!(
        st.data["spec"]["color"],
        json!("red"),
        "spec written through /status is ignored"
    );

    let sp = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "green"}, "status": {"phase": "Bogus"}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(sp.metadata.generation, Some(2));
    assert_eq!(
        sp.data["status"]["phase"],
        json!("Ready"),
        "status written through the main endpoint is ignored"
    );

    let same = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("label patch");
    assert_eq!(
        same.metadata.generation,
        Some(2),
        "metadata changes do not bump generation"
    );
}

#[tokio::test]
async fn server_side_apply_creates_merges_and_reports_conflicts() {
    let sim = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client().await.expect("client"), "default");
    let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"x": "1"}});
    let got = api
        .patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&a))
        .await
        .expect("apply creates");
    assert_eq!(
        got.data.as_ref().and_then(|d| d.get("x")).map(String::as_str),
        Some("1")
    );
    let mf = got.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        mf.iter()
            .any(|m| m.manager.as_deref() == Some("alice") && m.operation.as_deref() == Some("Apply")),
        "managedFields records alice's apply: {mf:?}"
    );

    let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"x": "2"}});
    match api.patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(&b)).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409, "{s:?}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = api
        .patch("ssa", &PatchParams::apply("bob").force(), &Patch::Apply(&b))
        .await
        .expect("forced apply");
    assert_eq!(
        forced.data.as_ref().and_then(|d| d.get("x")).map(String::as_str),
        Some("2")
    );

    // Alice drops her field set: the field she no longer owns stays (bob owns it now).
    let a2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"y": "3"}});
    let merged = api
        .patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&a2))
        .await
        .expect("alice re-applies");
    let data = merged.data.unwrap_or_default();
    assert_eq!(data.get("x").map(String::as_str), Some("2"));
    assert_eq!(data.get("y").map(String::as_str), Some("3"));
}

fn owned(name: &str, owner: &ConfigMap, block: bool) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid, "blockOwnerDeletion": block
        }]},
        "data": {}
    }))
    .expect("dependent")
}

async fn gone(api: &Api<ConfigMap>, name: &str) -> bool {
    matches!(api.get_opt(name).await, Ok(None))
}

#[tokio::test]
async fn garbage_collection_background_foreground_orphan() {
    let sim = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client().await.expect("client"), "default");

    // Background: the owner goes at once, dependents follow.
    let owner = api
        .create(&PostParams::default(), &cm("bg-owner", ""))
        .await
        .expect("owner");
    for i in 0..3 {
        api.create(&PostParams::default(), &owned(&format!("bg-dep-{i}"), &owner, false))
            .await
            .expect("dependent");
    }
    api.delete("bg-owner", &DeleteParams::background())
        .await
        .expect("delete");
    assert!(gone(&api, "bg-owner").await);
    for i in 0..3 {
        let n = format!("bg-dep-{i}");
        wait_for("background dependents to be collected", Duration::from_secs(5), || {
            let api = api.clone();
            let n = n.clone();
            async move { gone(&api, &n).await.then_some(()) }
        })
        .await;
    }

    // Foreground: the owner waits for a blocking dependent (held by a finalizer here).
    let owner = api
        .create(&PostParams::default(), &cm("fg-owner", ""))
        .await
        .expect("owner");
    let mut held = owned("fg-dep", &owner, true);
    held.metadata.finalizers = Some(vec!["test.baton.dev/hold".into()]);
    api.create(&PostParams::default(), &held).await.expect("dependent");
    api.delete("fg-owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    let o = api
        .get("fg-owner")
        .await
        .expect("owner still there while a blocking dependent exists");
    assert!(o.metadata.deletion_timestamp.is_some());
    assert!(o
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"foregroundDeletion".to_string()));
    wait_for(
        "the dependent to be marked for deletion",
        Duration::from_secs(5),
        || {
            let api = api.clone();
            async move {
                api.get("fg-dep")
                    .await
                    .ok()
                    .and_then(|d| d.metadata.deletion_timestamp)
                    .map(|_| ())
            }
        },
    )
    .await;
    api.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release finalizer");
    wait_for(
        "the foreground owner to go once its dependent is gone",
        Duration::from_secs(5),
        || {
            let api = api.clone();
            async move { gone(&api, "fg-owner").await.then_some(()) }
        },
    )
    .await;

    // Orphan: dependents stay, without the ownerReference.
    let owner = api
        .create(&PostParams::default(), &cm("or-owner", ""))
        .await
        .expect("owner");
    api.create(&PostParams::default(), &owned("or-dep", &owner, false))
        .await
        .expect("dependent");
    api.delete("or-owner", &DeleteParams::orphan()).await.expect("delete");
    wait_for("the orphaning owner to go", Duration::from_secs(5), || {
        let api = api.clone();
        async move { gone(&api, "or-owner").await.then_some(()) }
    })
    .await;
    let dep = api.get("or-dep").await.expect("orphaned dependent survives");
    assert!(
        dep.metadata.owner_references.unwrap_or_default().is_empty(),
        "ownerReference removed from orphan"
    );
}

#[tokio::test]
async fn kubelet_takes_pods_to_ready_and_honours_grace() {
    use k8s_openapi::api::core::v1::Pod;
    let sim = sim().await;
    let api: Api<Pod> = Api::namespaced(sim.client().await.expect("client"), "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "app:v1"}]}}),
    )
    .expect("pod");
    api.create(&PostParams::default(), &pod).await.expect("create pod");
    let ready = wait_for("pod to become Ready", Duration::from_secs(5), || {
        let api = api.clone();
        async move {
            let p = api.get("p").await.ok()?;
            let st = p.status.clone()?;
            st.conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(p)
        }
    })
    .await;
    let st = ready.status.expect("status");
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert!(st.pod_ip.is_some());
    assert_eq!(
        ready.spec.and_then(|s| s.node_name).as_deref(),
        Some(baton_sim::kubelet::NODE_NAME)
    );

    let never: Pod = serde_json::from_value(
        json!({"metadata": {"name": "nr"}, "spec": {"containers": [{"name": "c", "image": "app:never-ready"}]}}),
    )
    .expect("pod");
    api.create(&PostParams::default(), &never).await.expect("create");
    wait_for("never-ready pod to run", Duration::from_secs(5), || {
        let api = api.clone();
        async move { (api.get("nr").await.ok()?.status?.phase.as_deref() == Some("Running")).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await; // longer than the ready delay, to show it stays unready
    let nr = api.get("nr").await.expect("get");
    assert!(!nr
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True"));

    api.delete("p", &DeleteParams::default()).await.expect("delete");
    wait_for("pod removed after graceful termination", Duration::from_secs(5), || {
        let api = api.clone();
        async move { matches!(api.get_opt("p").await, Ok(None)).then_some(()) }
    })
    .await;
}

/// What Helm's Secret storage driver does through client-go: create and update a Secret, and
/// delete it, with protobuf bodies; kube-rs then reads the same objects back as JSON.
#[tokio::test]
async fn protobuf_secret_and_configmap_writes_read_back_as_json() {
    use k8s_pb::api::core::v1 as pb;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    const PB: &str = "application/vnd.kubernetes.protobuf";
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let release = |payload: &[u8], rv: Option<String>| pb::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some("sh.helm.release.v1.demo.v1".into()),
            namespace: Some("default".into()),
            resource_version: rv,
            labels: BTreeMap::from([("owner".into(), "helm".into()), ("status".into(), "deployed".into())]),
            ..Default::default()
        }),
        data: BTreeMap::from([("release".into(), payload.to_vec())]),
        r#type: Some("helm.sh/release.v1".into()),
        ..Default::default()
    };
    let path = "/api/v1/namespaces/default/secrets";
    let r = raw(
        &sim,
        "POST",
        path,
        Some(PB),
        &protobuf_body("v1", "Secret", &release(b"\x00\xffv1", None)),
    )
    .await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let created = r.json();
    let created_rv = created["metadata"]["resourceVersion"].as_str().expect("rv").to_string();

    let listed = secrets
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let got = &listed.items[0];
    assert_eq!(got.type_.as_deref(), Some("helm.sh/release.v1"));
    assert_eq!(got.metadata.uid.as_deref(), created["metadata"]["uid"].as_str());
    let data = got.data.clone().unwrap_or_default();
    assert_eq!(
        data.get("release").map(|b| b.0.as_slice()),
        Some(b"\x00\xffv1".as_slice())
    );

    // Update with the current resourceVersion, then a stale one: the ordinary write path.
    let item = format!("{path}/sh.helm.release.v1.demo.v1");
    let body = protobuf_body("v1", "Secret", &release(b"v2", Some(created_rv.clone())));
    let r = raw(&sim, "PUT", &item, Some(PB), &body).await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let got = secrets.get("sh.helm.release.v1.demo.v1").await.expect("get");
    assert_eq!(got.data.unwrap_or_default()["release"].0, b"v2");
    let r = raw(&sim, "PUT", &item, Some(PB), &body).await;
    assert_eq!((r.code, r.json()["reason"].clone()), (409, json!("Conflict")));

    // A ConfigMap with text and binary data.
    let cm = pb::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: Some("pb-cm".into()),
            ..Default::default()
        }),
        data: BTreeMap::from([("k".into(), "v".into())]),
        binary_data: BTreeMap::from([("bin".into(), vec![0, 1, 255])]),
        immutable: Some(true),
    };
    let r = raw(
        &sim,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(PB),
        &protobuf_body("v1", "ConfigMap", &cm),
    )
    .await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let got = Api::<ConfigMap>::namespaced(client, "default")
        .get("pb-cm")
        .await
        .expect("get configmap");
    assert_eq!(got.data.unwrap_or_default()["k"], "v");
    assert_eq!(got.binary_data.unwrap_or_default()["bin"].0, vec![0, 1, 255]);
    assert_eq!(got.immutable, Some(true));

    // Delete with protobuf DeleteOptions (as client-go sends them): a wrong uid precondition
    // is refused, then the delete goes through.
    let delete = |uid: &str| meta::DeleteOptions {
        preconditions: Some(meta::Preconditions {
            uid: Some(uid.into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let r = raw(
        &sim,
        "DELETE",
        &item,
        Some(PB),
        &protobuf_body("v1", "DeleteOptions", &delete("not-the-uid")),
    )
    .await;
    assert_eq!(r.code, 409, "{}", String::from_utf8_lossy(&r.body));
    let uid = created["metadata"]["uid"].as_str().expect("uid");
    let r = raw(
        &sim,
        "DELETE",
        &item,
        Some(PB),
        &protobuf_body("v1", "DeleteOptions", &delete(uid)),
    )
    .await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let left = secrets
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .expect("list");
    assert!(left.items.is_empty(), "{:?}", left.items);
}

/// A watch held back by `Faults::delay_watches` shows each event its delay after the write, in
/// order, while another client's watch shows it at once and the lagging client reads the object
/// at once (a watch cache behind the store, as a loaded kube-apiserver's can be).
#[tokio::test]
async fn a_delayed_watch_shows_each_event_its_delay_after_the_write_in_order() {
    let sim = sim().await;
    let delay = Duration::from_secs(1);
    let lagging = sim.client_as("lagging").await.expect("client");
    let prompt = sim.client_as("prompt").await.expect("client");
    let rule = sim.faults.delay_watches(Some("lagging"), delay);
    // A delay limited to another resource's watches holds back none of the prompt client's.
    sim.faults.add_rule(baton_sim::FaultRule {
        client: Some("prompt".into()),
        watch_delay: delay,
        path: Some("/secrets".into()),
        ..Default::default()
    });
    let opened = |client: kube::Client| {
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let cfg = watcher::Config::default().fields("metadata.name=lag");
            let mut s = std::pin::pin!(watcher(api, cfg).applied_objects());
            while let Some(Ok(c)) = s.next().await {
                let v = c.data.and_then(|d| d.get("v").cloned()).unwrap_or_default();
                let _ = tx.send((v, tokio::time::Instant::now()));
            }
        });
        (rx, task)
    };
    let (mut slow, slow_task) = opened(lagging.clone());
    let (mut fast, fast_task) = opened(prompt.clone());
    let api: Api<ConfigMap> = Api::namespaced(prompt, "default");
    // Both watches are open once each shows a first object.
    api.create(&PostParams::default(), &cm("lag", "0"))
        .await
        .expect("create");
    for (rx, which) in [(&mut slow, "lagging"), (&mut fast, "prompt")] {
        let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(
            matches!(first, Ok(Some((ref v, _))) if v == "0"),
            "the {which} watch opened"
        );
    }
    let mut written = Vec::new();
    for i in 1..=5u32 {
        let patch = json!({"data": {"v": i.to_string()}});
        api.patch("lag", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch");
        written.push((i.to_string(), tokio::time::Instant::now()));
    }
    // The lagging client reads the newest version at once.
    let read = Api::<ConfigMap>::namespaced(lagging, "default")
        .get("lag")
        .await
        .expect("get");
    assert_eq!(read.data.and_then(|d| d.get("v").cloned()).as_deref(), Some("5"));
    for (v, at) in &written {
        let (got, when) = tokio::time::timeout(Duration::from_secs(10), fast.recv())
            .await
            .expect("the prompt watch shows every write")
            .expect("open");
        assert_eq!(&got, v);
        assert!(when.duration_since(*at) < delay, "the prompt watch is not held back");
    }
    for (v, at) in &written {
        let (got, when) = tokio::time::timeout(Duration::from_secs(10), slow.recv())
            .await
            .expect("the lagging watch shows every write")
            .expect("open");
        assert_eq!(&got, v, "in order");
        assert!(
            when.duration_since(*at) >= delay - Duration::from_millis(5),
            "held back: {:?}",
            when - *at
        );
    }
    // Removed, the lag ends.
    sim.faults.remove_rule(&rule);
    let patch = json!({"data": {"v": "6"}});
    api.patch("lag", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    let at = tokio::time::Instant::now();
    let (got, when) = tokio::time::timeout(Duration::from_secs(10), slow.recv())
        .await
        .expect("the watch shows it")
        .expect("open");
    assert_eq!((got.as_str(), when.duration_since(at) < delay), ("6", true));
    slow_task.abort();
    fast_task.abort();
}
