//! The ReplicaSet controller's decisions: how many pods to create, which to delete, what to
//! report.
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::*;

const NOW: &str = "2026-01-01T00:10:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("time")
}

fn ago(secs: i64) -> Option<Timestamp> {
    Some(now() - SignedDuration::from_secs(secs))
}

fn rs(replicas: i64, min_ready: i64) -> Value {
    json!({"metadata": {"name": "web-abc", "generation": 3}, "spec": {"replicas": replicas, "minReadySeconds": min_ready,
        "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}}}})
}

/// A Running, Ready pod on the node, Ready for a minute, created two minutes ago.
fn pod(name: &str) -> RankedPod {
    RankedPod {
        name: name.into(),
        uid: format!("{name}-uid"),
        node: "sim-node-1".into(),
        phase: "Running".into(),
        deleting: false,
        labels: [("app", "web"), ("pod-template-hash", "abc")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ready: true,
        ready_since: ago(60),
        restarts: (0, 0),
        created: ago(120),
        deletion_cost: 0,
    }
}

#[test]
fn creates_the_missing_pods_and_counts_the_others() {
    let p = plan(&rs(3, 0), &[pod("a")], &[], now());
    assert_eq!((p.create, p.delete.len()), (2, 0));
    assert_eq!(
        p.status,
        json!({"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 3})
    );
    let p = plan(&rs(3, 0), &[], &[], now());
    assert_eq!(
        p.status,
        json!({"replicas": 0, "observedGeneration": 3}),
        "zero counts are left out, but replicas"
    );
}

#[test]
fn pods_being_deleted_or_finished_do_not_count() {
    let mut going = pod("b");
    going.deleting = true;
    let mut done = pod("c");
    done.phase = "Succeeded".into();
    let p = plan(&rs(2, 0), &[pod("a"), going, done], &[], now());
    assert_eq!(p.create, 1);
    assert_eq!(p.status["replicas"], 1);
}

#[test]
fn a_replica_set_being_deleted_creates_nothing() {
    let mut v = rs(3, 0);
    v["metadata"]["deletionTimestamp"] = json!(NOW);
    let p = plan(&v, &[pod("a")], &[], now());
    assert_eq!(p.create, 0);
    assert_eq!(p.status["replicas"], 1);
}

#[test]
fn pods_without_the_template_labels_are_not_fully_labelled() {
    let mut other = pod("b");
    other.labels.remove("pod-template-hash");
    let p = plan(&rs(2, 0), &[pod("a"), other], &[], now());
    assert_eq!(
        (p.status["replicas"].clone(), p.status["fullyLabeledReplicas"].clone()),
        (json!(2), json!(1))
    );
}

#[test]
fn surplus_pods_go_unscheduled_then_pending_then_unready_first() {
    let mut unscheduled = pod("unscheduled");
    unscheduled.node.clear();
    unscheduled.phase = "Pending".into();
    let mut pending = pod("pending");
    pending.phase = "Pending".into();
    pending.ready = false;
    let mut unready = pod("unready");
    unready.ready = false;
    let pods = [pod("ready"), unready, pending, unscheduled];
    let p = plan(&rs(1, 0), &pods, &pods, now());
    assert_eq!(p.delete, ["unscheduled", "pending", "unready"]);
    assert_eq!(p.status["replicas"], 1, "the deleted ones no longer count");
}

#[test]
fn among_ready_pods_the_most_recently_ready_then_most_restarted_then_newest_go_first() {
    let mut fresh = pod("fresh");
    fresh.ready_since = ago(2);
    let old = pod("old");
    assert_eq!(to_delete(&[old.clone(), fresh], &[], 1, now()), ["fresh"]);
    let mut crashy = pod("crashy");
    crashy.restarts = (4, 0);
    assert_eq!(to_delete(&[old.clone(), crashy], &[], 1, now()), ["crashy"]);
    let mut newer = pod("newer");
    newer.created = ago(3);
    assert_eq!(to_delete(&[old.clone(), newer], &[], 1, now()), ["newer"]);
    let mut cheap = pod("cheap");
    cheap.deletion_cost = -5;
    let mut fresh = pod("fresh");
    fresh.ready_since = ago(1);
    assert_eq!(
        to_delete(&[fresh, cheap], &[], 1, now()),
        ["cheap"],
        "the deletion cost comes before readiness time"
    );
}

#[test]
fn times_within_the_same_power_of_two_rank_alike_and_fall_back_to_uid() {
    // 60 s and 61 s ago: the same logarithmic bucket, so the uid decides ("a" < "b").
    let mut a = pod("a");
    a.ready_since = ago(61);
    let mut b = pod("b");
    b.ready_since = ago(60);
    assert!(deleted_before(&a, 0, &b, 0, now()));
    assert!(!deleted_before(&b, 0, &a, 0, now()));
}

#[test]
fn a_pod_sharing_its_node_with_more_of_its_kin_goes_first() {
    let crowded = pod("crowded");
    let mut alone = pod("alone");
    alone.node = "other-node".into();
    let related = [crowded.clone(), pod("kin1"), pod("kin2"), alone.clone()];
    assert_eq!(to_delete(&[alone, crowded], &related, 1, now()), ["crowded"]);
}

#[test]
fn ready_pods_are_available_after_min_ready_seconds_and_the_wait_is_requeued() {
    let mut just = pod("just");
    just.ready_since = ago(3);
    let p = plan(&rs(2, 10), &[pod("long"), just], &[], now());
    assert_eq!(
        (p.status["readyReplicas"].clone(), p.status["availableReplicas"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(p.requeue, Some(std::time::Duration::from_millis(7010)));
    let p = plan(&rs(2, 0), &[pod("a"), pod("b")], &[], now());
    assert_eq!(p.requeue, None);
}

#[test]
fn pod_views_read_readiness_restarts_and_deletion_cost() {
    let v = json!({"metadata": {"name": "p", "uid": "u", "creationTimestamp": "2026-01-01T00:08:00Z",
            "annotations": {"controller.kubernetes.io/pod-deletion-cost": "-3"}, "labels": {"app": "web"}},
        "spec": {"nodeName": "n", "initContainers": [{"name": "side", "restartPolicy": "Always"}, {"name": "init"}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:09:00Z"}],
            "containerStatuses": [{"name": "a", "restartCount": 2}, {"name": "b", "restartCount": 5}],
            "initContainerStatuses": [{"name": "side", "restartCount": 1}, {"name": "init", "restartCount": 9}]}});
    let p = RankedPod::of(&v);
    assert!(p.ready && p.active());
    assert_eq!(p.ready_since, ago(60));
    assert_eq!(p.restarts, (5, 1));
    assert_eq!(p.deletion_cost, -3);
    assert_eq!((p.node.as_str(), p.created), ("n", ago(120)));
}
