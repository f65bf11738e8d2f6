//! coordination.k8s.io/v1 Leases (baton's ownership protocol lives on them: MicroTime renewals,
//! optimistic updates, server-side apply) and Events under both APIs, one store.

use serde_json::json;

use crate::harness::{Pair, Req};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases";
const CORE_EVENTS: &str = "/api/v1/namespaces/{ns}/events";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/{ns}/events";

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn leases() {
    let p = Pair::start("leases").await;
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "holder", "labels": {"baton.dev/listenerset": "s"}},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                 "acquireTime": "2025-01-02T03:04:05.000000Z", "renewTime": "2025-01-02T03:04:05.123456Z",
                 "leaseTransitions": 0}});
    let created = p.same("lease.create", Req::post(LEASES, &lease)).await;
    let path = format!("{LEASES}/holder");
    let renewed = p
        .compare("lease.renew", |side| {
            let mut l = created.get(side).body.clone();
            l["spec"]["renewTime"] = json!("2025-01-02T03:04:15.654321Z");
            Req::put(&path, &l)
        })
        .await;
    p.compare("lease.take-over-stale", |side| {
        let mut l = created.get(side).body.clone();
        l["spec"]["holderIdentity"] = json!("pod-b");
        l["spec"]["leaseTransitions"] = json!(1);
        Req::put(&path, &l)
    })
    .await;
    p.compare("lease.take-over", |side| {
        let mut l = renewed.get(side).body.clone();
        l["spec"]["holderIdentity"] = json!("pod-b");
        l["spec"]["leaseTransitions"] = json!(1);
        Req::put(&path, &l)
    })
    .await;
    p.same(
        "lease.second-precision-time",
        Req::patch(&path, "merge", &json!({"spec": {"renewTime": "2025-01-02T03:04:20Z"}})),
    )
    .await;
    p.same(
        "lease.invalid-duration",
        Req::patch(&path, "merge", &json!({"spec": {"leaseDurationSeconds": 0}})),
    )
    .await;
    p.same(
        "lease.invalid-transitions",
        Req::patch(&path, "merge", &json!({"spec": {"leaseTransitions": -1}})),
    )
    .await;
    p.same(
        "lease.invalid-time",
        Req::patch(&path, "merge", &json!({"spec": {"renewTime": "yesterday"}})),
    )
    .await;
    p.same(
        "lease.apply",
        Req::patch(
            format!("{LEASES}/applied?fieldManager=baton-agent"),
            "apply",
            &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "applied"},
                    "spec": {"holderIdentity": "pod-c", "leaseDurationSeconds": 10}}),
        ),
    )
    .await;
    p.same(
        "lease.strategy-fields",
        Req::post(
            LEASES,
            &json!({"metadata": {"name": "strategic"}, "spec": {"holderIdentity": "x", "strategy": "OldestEmulationVersion",
                    "preferredHolder": "y"}}),
        ),
    )
    .await;
    p.same(
        "lease.list-by-label",
        Req::get(format!("{LEASES}?labelSelector=baton.dev%2Flistenerset%3Ds")),
    )
    .await;
    p.finish().await;
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn events_in_one_store() {
    let p = Pair::start("events_in_one_store").await;
    let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "core-one"},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "namespace": p.ns},
        "reason": "Tested", "message": "written as core/v1", "type": "Normal",
        "source": {"component": "differential"}, "count": 2,
        "firstTimestamp": "2025-01-02T03:04:05Z", "lastTimestamp": "2025-01-02T03:04:06Z",
        "reportingComponent": "differential", "reportingInstance": "here"});
    p.same("event.core.create", Req::post(CORE_EVENTS, &core)).await;
    p.same("event.core.read-as-events-v1", Req::get(format!("{EVENTS}/core-one")))
        .await;
    let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "v1-one"},
        "eventTime": "2025-01-02T03:04:05.000001Z", "reportingController": "example.com/differential",
        "reportingInstance": "here", "action": "Test", "reason": "Tested", "type": "Warning",
        "note": "written as events.k8s.io/v1",
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "namespace": p.ns}});
    p.same("event.v1.create", Req::post(EVENTS, &v1)).await;
    p.same("event.v1.read-as-core", Req::get(format!("{CORE_EVENTS}/v1-one")))
        .await;
    p.same(
        "event.v1.invalid",
        Req::post(
            EVENTS,
            &json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "bad"},
            "reason": "R", "type": "Sideways"}),
        ),
    )
    .await;
    p.same("event.core.list", Req::get(CORE_EVENTS)).await;
    p.same("event.v1.list", Req::get(EVENTS)).await;
    p.same(
        "event.core.field-selector",
        Req::get(format!(
            "{CORE_EVENTS}?fieldSelector=involvedObject.name%3Dcm,reason%3DTested"
        )),
    )
    .await;
    p.same(
        "event.v1.field-selector",
        Req::get(format!("{EVENTS}?fieldSelector=regarding.name%3Dcm")),
    )
    .await;
    p.same(
        "event.v1.patch-series",
        Req::patch(
            format!("{EVENTS}/v1-one"),
            "merge",
            &json!({"series": {"count": 3, "lastObservedTime": "2025-01-02T03:05:00.000000Z"}}),
        ),
    )
    .await;
    p.same("event.core.after-v1-patch", Req::get(format!("{CORE_EVENTS}/v1-one")))
        .await;
    p.same("event.v1.delete", Req::delete(format!("{EVENTS}/core-one")))
        .await;
    p.same(
        "event.core.after-v1-delete",
        Req::get(format!("{CORE_EVENTS}/core-one")),
    )
    .await;
    p.finish().await;
}
