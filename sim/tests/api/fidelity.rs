//! What clients hit first on a real cluster: DELETE answers, dry-run, metadata-only
//! answers and content negotiation, one Event store behind two APIs.
use crate::common;

use common::{delete_in_background, get_accepting, raw, send_json, sim};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use serde_json::json;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("configmap")
}

/// [`cm`] `name`, labelled `app=<app>`.
fn cm_labelled(name: &str, app: &str) -> ConfigMap {
    let mut c = cm(name);
    c.metadata.labels = Some([("app".to_string(), app.to_string())].into());
    c
}

#[tokio::test]
async fn delete_answers_status_when_gone_and_the_object_while_pending() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = cms.create(&PostParams::default(), &cm("gone")).await.expect("create");
    let uid = created.metadata.uid.clone().expect("uid");
    // Gone at once: kube-rs sees Either::Right(Status{Success}).
    let status = cms
        .delete("gone", &DeleteParams::default())
        .await
        .expect("delete")
        .right()
        .expect("an immediate delete answers a Status, not the object");
    assert_eq!(status.status, Some(kube::core::response::StatusSummary::Success));
    let details = status.details.expect("details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str(), details.group.as_str()),
        ("gone", "configmaps", "")
    );
    assert_eq!(details.uid, uid);
    // The exact body, as kube-apiserver writes it.
    cms.create(&PostParams::default(), &cm("raw")).await.expect("create");
    let r = raw(&sim, "DELETE", "/api/v1/namespaces/default/configmaps/raw", None, b"").await;
    assert_eq!(r.code, 200);
    let mut body = r.json();
    body["details"]["uid"] = json!("-");
    // `details.group` is omitted when empty (omitempty), as kube-apiserver writes it.
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": "raw", "kind": "configmaps", "uid": "-"}})
    );

    // Pending (a finalizer): the object, with its deletionTimestamp, and 200.
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.expect("create");
    let r = raw(&sim, "DELETE", "/api/v1/namespaces/default/configmaps/held", None, b"").await;
    assert_eq!(r.code, 200);
    let v = r.json();
    assert_eq!(v["kind"], "ConfigMap");
    assert!(v["metadata"]["deletionTimestamp"].is_string(), "{v}");
    let again = cms
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete again");
    assert!(again.is_left(), "a pending delete answers the object");

    // A missing object is 404 NotFound.
    let r = raw(&sim, "DELETE", "/api/v1/namespaces/default/configmaps/nope", None, b"").await;
    assert_eq!(r.code, 404);
    assert_eq!(r.json()["message"], "configmaps \"nope\" not found");
}

#[tokio::test]
async fn pods_answer_their_object_even_when_removed_at_once() {
    // kube-apiserver's pod storage sets ReturnDeletedObject: a pod removed at once (never
    // scheduled here, so no grace period) is still answered with the pod.
    let sim = sim().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"nodeName": "", "schedulerName": "none", "containers": [{"name": "c", "image": "app:1"}]}});
    sim.kubelet.set_config(baton_sim::KubeletConfig {
        schedule_delay: Duration::from_secs(3600),
        ..baton_sim::KubeletConfig::default()
    });
    let r = send_json(&sim, "POST", "/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = raw(&sim, "DELETE", "/api/v1/namespaces/default/pods/p", None, b"").await;
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["kind"], "Pod");
    assert_eq!(
        raw(&sim, "GET", "/api/v1/namespaces/default/pods/p", None, b"")
            .await
            .code,
        404
    );
}

#[tokio::test]
async fn dry_run_create_has_no_resource_version_and_stores_nothing() {
    let sim = sim().await;
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"a": "b"}});
    let r = send_json(&sim, "POST", "/api/v1/namespaces/default/configmaps?dryRun=All", &body).await;
    assert_eq!(r.code, 201);
    let v = r.json();
    assert!(v["metadata"].get("resourceVersion").is_none(), "{v}");
    assert!(
        v["metadata"]["uid"].is_string() && v["metadata"]["creationTimestamp"].is_string(),
        "{v}"
    );
    assert_eq!(v["data"], json!({"a": "b"}));
    assert_eq!(
        raw(&sim, "GET", "/api/v1/namespaces/default/configmaps/dry", None, b"")
            .await
            .code,
        404
    );
    // kube-rs: the same through PostParams { dry_run }.
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().await.expect("client"));
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &cm("dry2"),
        )
        .await
        .expect("dry-run create");
    assert_eq!(dry.metadata.resource_version, None);

    // Dry-run update and delete: the stored version, unchanged.
    let real = cms.create(&PostParams::default(), &cm("real")).await.expect("create");
    let rv = real.metadata.resource_version.clone().expect("rv");
    let upd = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "real", "resourceVersion": rv}, "data": {"k": "changed"}});
    let r = send_json(
        &sim,
        "PUT",
        "/api/v1/namespaces/default/configmaps/real?dryRun=All",
        &upd,
    )
    .await;
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["data"]["k"], "changed");
    assert_eq!(r.json()["metadata"]["resourceVersion"], json!(rv));
    let r = raw(
        &sim,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/real?dryRun=All",
        None,
        b"",
    )
    .await;
    assert_eq!(r.code, 200);
    let now = cms.get("real").await.expect("still there");
    assert_eq!(now.metadata.resource_version, Some(rv));
    assert_eq!(now.data.and_then(|d| d.get("k").cloned()), Some("v".into()));
    // A bad dryRun value is refused as kube-apiserver refuses it: the options are invalid (422).
    let r = send_json(&sim, "POST", "/api/v1/namespaces/default/configmaps?dryRun=Some", &body).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Some\"}: supported values: \"All\""
    );
}

const META: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const META_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

#[tokio::test]
async fn partial_object_metadata_answers_metadata_only() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = cms
        .create(&PostParams::default(), &cm_labelled("meta", "x"))
        .await
        .expect("create");

    let r = get_accepting(&sim, "/api/v1/namespaces/default/configmaps/meta", META).await;
    assert_eq!(r.code, 200);
    // kube-apiserver names the serializer's media type, without the `as=` parameters.
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["kind"], "PartialObjectMetadata");
    assert_eq!(v["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(v["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(
        v.as_object().map(|o| o.len()),
        Some(3),
        "only kind, apiVersion, metadata: {v}"
    );

    let r = get_accepting(&sim, "/api/v1/namespaces/default/configmaps", META_LIST).await;
    assert_eq!(r.code, 200);
    let v = r.json();
    assert_eq!(v["kind"], "PartialObjectMetadataList");
    assert_eq!(
        v["items"].as_array().map(Vec::len),
        Some(2),
        "meta + kube-root-ca.crt: {v}"
    );
    assert!(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|i| i.get("data").is_none() && i["kind"] == "PartialObjectMetadata"));

    // kube-rs' metadata API.
    let m = cms.get_metadata("meta").await.expect("get_metadata");
    assert_eq!(m.metadata.uid, created.metadata.uid);
    let list = cms
        .list_metadata(&ListParams::default().labels("app=x"))
        .await
        .expect("list_metadata");
    assert_eq!(list.items.len(), 1);
    let mut w = cms
        .watch_metadata(&WatchParams::default().fields("metadata.name=meta"), "0")
        .await
        .expect("watch_metadata")
        .boxed();
    match w.try_next().await.expect("event") {
        Some(WatchEvent::Added(o)) => assert_eq!(o.metadata.name.as_deref(), Some("meta")),
        other => panic!("expected ADDED, got {other:?}"),
    }

    // Unsupported transforms: 406 in kube-apiserver's words.
    let r = get_accepting(
        &sim,
        "/api/v1/namespaces/default/configmaps/meta",
        "application/json;as=Foo;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(r.code, 406);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotAcceptable", "code": 406,
               "message": "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"})
    );
    let r = get_accepting(&sim, "/api/v1/namespaces/default/configmaps", META).await;
    assert_eq!(r.code, 406);
    assert_eq!(
        r.json()["message"],
        "you requested PartialObjectMetadata, but the requested object is a list (*unstructured.UnstructuredList)"
    );
    // With a fallback, the fallback is used.
    let r = get_accepting(
        &sim,
        "/api/v1/namespaces/default/configmaps/meta",
        "application/json;as=Foo;g=meta.k8s.io;v=v1, application/json",
    )
    .await;
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["kind"], "ConfigMap");
}

#[tokio::test]
async fn events_are_one_store_behind_two_apis() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let target = cms.create(&PostParams::default(), &cm("target")).await.expect("create");
    // kube-runtime's recorder writes events.k8s.io/v1 ...
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "test-ctl".into(),
            instance: Some("i-1".into()),
        },
    );
    recorder
        .publish(
            &Event {
                type_: EventType::Warning,
                reason: "Broken".into(),
                note: Some("it broke".into()),
                action: "Check".into(),
                secondary: None,
            },
            &target.object_ref(&()),
        )
        .await
        .expect("publish");
    // ... and core/v1 readers (kubectl describe) find it by involvedObject.
    let core: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let found = core
        .list(&ListParams::default().fields("involvedObject.kind=ConfigMap,involvedObject.name=target"))
        .await
        .expect("list core events");
    assert_eq!(found.items.len(), 1);
    let e = &found.items[0];
    assert_eq!(e.message.as_deref(), Some("it broke"));
    assert_eq!(e.reason.as_deref(), Some("Broken"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reporting_component.as_deref(), Some("test-ctl"));
    assert_eq!(e.reporting_instance.as_deref(), Some("i-1"));
    assert_eq!(e.involved_object.uid, target.metadata.uid);

    // A core/v1 Event is visible through events.k8s.io/v1, renamed as the conversion does.
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "old-style"},
        "involvedObject": {"kind": "ConfigMap", "name": "target", "namespace": "default"},
        "reason": "Legacy", "message": "from core", "type": "Normal", "count": 3,
        "source": {"component": "legacy"}, "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z"});
    let r = send_json(&sim, "POST", "/api/v1/namespaces/default/events", &ev).await;
    assert_eq!(r.code, 201);
    let v1: Api<EventV1> = Api::default_namespaced(client.clone());
    let got = v1.get("old-style").await.expect("get through events.k8s.io");
    assert_eq!(got.note.as_deref(), Some("from core"));
    assert_eq!(got.deprecated_count, Some(3));
    assert_eq!(got.regarding.as_ref().and_then(|r| r.name.as_deref()), Some("target"));
    assert_eq!(
        got.deprecated_source.as_ref().and_then(|s| s.component.as_deref()),
        Some("legacy")
    );
    let r = raw(
        &sim,
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events/old-style",
        None,
        b"",
    )
    .await;
    let v = r.json();
    assert_eq!(v["apiVersion"], "events.k8s.io/v1");
    assert!(v.get("message").is_none() && v.get("involvedObject").is_none(), "{v}");
    let all = v1
        .list(&ListParams::default().fields("regarding.name=target"))
        .await
        .expect("list v1");
    assert_eq!(all.items.len(), 2);
    // Deleting through one API removes it from both.
    v1.delete("old-style", &DeleteParams::default()).await.expect("delete");
    assert_eq!(
        raw(&sim, "GET", "/api/v1/namespaces/default/events/old-style", None, b"")
            .await
            .code,
        404
    );
    // A watch on one API sees writes through the other.
    let mut w = v1.watch(&WatchParams::default(), "0").await.expect("watch").boxed();
    let mut names = Vec::new();
    let ev2 = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "later"},
        "involvedObject": {"kind": "ConfigMap", "name": "target", "namespace": "default"}, "message": "m"});
    let r = send_json(&sim, "POST", "/api/v1/namespaces/default/events", &ev2).await;
    assert_eq!(r.code, 201);
    let seen = tokio::time::timeout(LONG, async {
        while let Ok(Some(e)) = w.try_next().await {
            if let WatchEvent::Added(e) = e {
                names.push(e.metadata.name.clone().unwrap_or_default());
                if e.metadata.name.as_deref() == Some("later") {
                    return Some(e);
                }
            }
        }
        None
    })
    .await
    .expect("the watch saw the core/v1 write in time")
    .expect("the watch stayed open");
    assert_eq!(seen.note.as_deref(), Some("m"));
    assert_eq!(names.len(), 2, "the recorder's event, then the new one: {names:?}");
}

#[tokio::test]
async fn every_namespace_has_its_default_objects_and_the_cluster_its_kubernetes_service() {
    use k8s_openapi::api::core::v1::{Namespace, Node, Service, ServiceAccount};
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    // default/kubernetes decodes into the typed Service with the fields kube-apiserver fills.
    let svc = Api::<Service>::default_namespaced(client.clone())
        .get("kubernetes")
        .await
        .expect("kubernetes service");
    let spec = svc.spec.expect("spec");
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.1"));
    assert_eq!(spec.cluster_ips, Some(vec!["10.96.0.1".to_string()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(
        spec.ports.as_ref().map(|p| (p[0].port, p[0].name.clone())),
        Some((443, Some("https".into())))
    );
    assert!(svc.status.and_then(|s| s.load_balancer).is_some());

    // A new namespace gets a default ServiceAccount and kube-root-ca.crt.
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
    let created = nss.create(&PostParams::default(), &ns).await.expect("create ns");
    assert_eq!(
        created.spec.and_then(|s| s.finalizers),
        Some(vec!["kubernetes".to_string()])
    );
    Api::<ServiceAccount>::namespaced(client.clone(), "team")
        .get("default")
        .await
        .expect("default SA");
    let ca = Api::<ConfigMap>::namespaced(client.clone(), "team")
        .get("kube-root-ca.crt")
        .await
        .expect("root CA");
    assert!(ca
        .data
        .and_then(|d| d.get("ca.crt").cloned())
        .is_some_and(|p| p.starts_with("-----BEGIN CERTIFICATE-----")));
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .get("default")
            .await
            .expect("default SA in built-in namespaces");
    }

    // Deleting the namespace: Terminating while a finalizer holds a ConfigMap, then gone.
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let team_cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    team_cms
        .create(&PostParams::default(), &held)
        .await
        .expect("create held");
    team_cms
        .create(&PostParams::default(), &cm("plain"))
        .await
        .expect("create plain");
    let r = delete_in_background(&sim, "/api/v1/namespaces/team").await;
    assert_eq!(r.code, 200);
    let v = r.json();
    assert_eq!(v["kind"], "Namespace");
    assert_eq!(v["status"]["phase"], "Terminating");
    assert!(v["metadata"]["deletionTimestamp"].is_string());
    common::wait_for("the namespace's plain contents to go", LONG, || {
        let team_cms = team_cms.clone();
        async move { team_cms.get_opt("plain").await.ok().flatten().is_none().then_some(()) }
    })
    .await;
    let r = raw(
        &sim,
        "POST",
        "/api/v1/namespaces/team/configmaps",
        Some("application/json"),
        br#"{"metadata":{"name":"late"}}"#,
    )
    .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.json()["message"],
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );
    assert_eq!(
        nss.get("team")
            .await
            .expect("still there")
            .status
            .and_then(|s| s.phase)
            .as_deref(),
        Some("Terminating")
    );
    let patch = json!({"metadata": {"finalizers": null}});
    team_cms
        .patch(
            "held",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("release the finalizer");
    common::wait_for("the namespace to go", LONG, || {
        let nss = nss.clone();
        async move { nss.get_opt("team").await.ok().flatten().is_none().then_some(()) }
    })
    .await;

    // The node decodes with a complete nodeInfo.
    let node = Api::<Node>::all(client.clone()).get("sim-node-1").await.expect("node");
    let info = node.status.and_then(|s| s.node_info).expect("nodeInfo");
    assert_eq!(info.kubelet_version, "v1.32.0-baton-sim");
    assert!(!info.machine_id.is_empty() && !info.system_uuid.is_empty() && !info.boot_id.is_empty());
    assert!(!info.container_runtime_version.is_empty() && !info.os_image.is_empty() && !info.kernel_version.is_empty());
}

#[tokio::test]
async fn ephemeral_containers_are_added_through_their_subresource_only() {
    let sim = sim().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dbg"},
        "spec": {"containers": [{"name": "c", "image": "app:1"}]}});
    let r = send_json(&sim, "POST", "/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(r.code, 201);
    let path = "/api/v1/namespaces/default/pods/dbg/ephemeralcontainers";
    let r = raw(&sim, "GET", path, None, b"").await;
    assert_eq!(r.code, 200);
    assert!(r.json()["spec"].get("ephemeralContainers").is_none());
    let add = json!({"spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox:1"}]}});
    let r = raw(
        &sim,
        "PATCH",
        path,
        Some("application/strategic-merge-patch+json"),
        add.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["spec"]["ephemeralContainers"][0]["name"], "debug");
    // Removing one is refused; so is changing them through the pod itself.
    let mut p = r.json();
    p["spec"]["ephemeralContainers"] = json!([]);
    // Unconditional updates (pods allow them): the kubelet may have written the pod's status
    // since, and a stale resourceVersion would get 409 before validation.
    if let Some(m) = p["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let r = send_json(&sim, "PUT", path, &p).await;
    assert_eq!(r.code, 422);
    assert_eq!(r.json()["message"], "Pod \"dbg\" is invalid: spec.ephemeralContainers[0]: Forbidden: existing ephemeral containers may not be removed");
    let r = send_json(&sim, "PUT", "/api/v1/namespaces/default/pods/dbg", &p).await;
    assert_eq!(r.code, 422);
    assert_eq!(r.json()["details"]["causes"][0]["reason"], "FieldValueForbidden");
}

/// kube-apiserver's Lease strategy allows create on update: a PUT of a Lease that is gone creates
/// it again (whatever resourceVersion the body carries). A PATCH never creates: 404, and with a
/// stale resourceVersion in the body, 409.
#[tokio::test]
async fn a_put_creates_a_missing_lease_and_a_patch_never_does() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Patch, PatchParams};
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "held"},
        "spec": {"holderIdentity": "pod-a", "leaseTransitions": 3}
    }))
    .expect("lease");
    let created = leases.create(&PostParams::default(), &lease).await.expect("create");
    leases.delete("held", &DeleteParams::default()).await.expect("delete");
    // A merge patch conditional on the old resourceVersion: the Lease is gone.
    let rv = created.metadata.resource_version.clone().expect("rv");
    let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"renewTime": "2025-01-10T10:00:00.000000Z"}});
    let err = leases
        .patch("held", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("a patch of a missing Lease");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err}");
    assert!(
        leases.get_opt("held").await.expect("get").is_none(),
        "the patch created nothing"
    );
    // A PUT with that stale resourceVersion creates it again.
    let back = leases
        .replace("held", &PostParams::default(), &created)
        .await
        .expect("a PUT creates a missing Lease");
    assert_ne!(back.metadata.uid, created.metadata.uid);
    // A patch conditional on a stale resourceVersion of a Lease that exists: 409.
    let err = leases
        .patch("held", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("a stale patch");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409), "{err}");
}

/// A list whose field selector names the object reads that one object, as kube-apiserver does,
/// and still answers every other selector and the store's resourceVersion.
#[tokio::test]
async fn a_list_by_name_answers_as_a_whole_list_filtered_would() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&PostParams::default(), &cm_labelled("named", "x"))
        .await
        .expect("create");
    cms.create(&PostParams::default(), &cm("other")).await.expect("create");
    let newest = cms.create(&PostParams::default(), &cm("newest")).await.expect("create");
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items.into_iter().filter_map(|c| c.metadata.name).collect()
    };
    let by_name = ListParams::default().fields("metadata.name=named");
    let list = cms.list(&by_name).await.expect("list by name");
    assert_eq!(
        list.metadata.resource_version, newest.metadata.resource_version,
        "the store's, not the object's"
    );
    assert_eq!(names(list), vec!["named".to_string()]);
    let also_labelled = by_name.clone().labels("app=x");
    assert_eq!(
        names(cms.list(&also_labelled).await.expect("list")),
        vec!["named".to_string()]
    );
    let wrong_label = by_name.labels("app=y");
    assert!(names(cms.list(&wrong_label).await.expect("list")).is_empty());
    let twice = ListParams::default().fields("metadata.name=named,metadata.name!=named");
    assert!(names(cms.list(&twice).await.expect("list")).is_empty());
    let missing = ListParams::default().fields("metadata.name=missing");
    assert!(names(cms.list(&missing).await.expect("list")).is_empty());
    // Across namespaces the name alone does not name one object.
    let all: Api<ConfigMap> = Api::all(client);
    let everywhere = ListParams::default().fields("metadata.name=named");
    assert_eq!(
        names(all.list(&everywhere).await.expect("list")),
        vec!["named".to_string()]
    );
}
