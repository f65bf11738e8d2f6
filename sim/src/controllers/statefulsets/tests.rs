//! The StatefulSet controller's decisions, stepped through by hand.
use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::plan::{new_pod, plan, Plan, Revision};
use super::revisions::{self, RevisionView, UpdateRevision};
use super::view::{SetPod, SetView, Strategy};

mod revision_data;

fn now() -> Timestamp {
    "2026-01-01T00:00:10Z".parse().expect("time")
}

fn set(replicas: i64, extra: Value) -> SetView {
    let mut v = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u1", "generation": 1},
        "spec": {"replicas": replicas, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}});
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, x) in extra {
            spec.insert(k.clone(), x.clone());
        }
    }
    SetView::of(&v)
}

const OLD: &str = "web-old";
const NEW: &str = "web-new";

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}})
}

fn pod(ordinal: i64, phase: &str, ready: bool, revision: &str) -> SetPod {
    SetPod {
        name: format!("web-{ordinal}"),
        ordinal,
        phase: phase.into(),
        deleting: false,
        ready,
        ready_since: ready.then(|| "2026-01-01T00:00:00Z".parse().expect("time")),
        revision: revision.into(),
    }
}

fn ready(ordinal: i64, revision: &str) -> SetPod {
    pod(ordinal, "Running", true, revision)
}

fn terminating(mut p: SetPod) -> SetPod {
    p.deleting = true;
    p
}

/// A pass with the template at `NEW` and `OLD` as the current revision.
fn pass(set: &SetView, pods: &[SetPod]) -> Plan {
    let (old, new) = (template("nginx:1"), template("nginx:2"));
    plan(
        set,
        Revision {
            name: OLD,
            template: &old,
        },
        Revision {
            name: NEW,
            template: &new,
        },
        0,
        pods,
        now(),
    )
}

/// A pass where current and update revision are the same (`NEW`): no update in progress.
fn steady(set: &SetView, pods: &[SetPod]) -> Plan {
    let t = template("nginx:2");
    let r = Revision {
        name: NEW,
        template: &t,
    };
    plan(set, r, r, 0, pods, now())
}

fn created_names(p: &Plan) -> Vec<String> {
    p.create
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn missing_fields_read_as_the_apps_v1_defaults() {
    let s = SetView::of(&json!({"metadata": {"name": "web"}, "spec": {"template": {}}}));
    assert_eq!(s.replicas, 1);
    assert!(!s.parallel, "OrderedReady");
    assert_eq!(s.strategy, Strategy::RollingUpdate { partition: 0 });
    assert_eq!((s.revision_history_limit, s.min_ready_seconds, s.start), (10, 0, 0));
    let s = set(
        3,
        json!({"updateStrategy": {"type": "OnDelete"}, "podManagementPolicy": "Parallel", "ordinals": {"start": 5}}),
    );
    assert_eq!(s.strategy, Strategy::OnDelete);
    assert!(s.parallel);
    assert_eq!((s.start, s.end()), (5, 7));
}

#[test]
fn ordered_ready_creates_one_ordinal_at_a_time_once_the_ones_below_are_ready() {
    let s = set(3, json!({}));
    assert_eq!(created_names(&steady(&s, &[])), vec!["web-0"]);
    let p = steady(&s, &[pod(0, "Pending", false, NEW)]);
    assert!(p.create.is_empty(), "web-0 is not Running yet");
    let p = steady(&s, &[pod(0, "Running", false, NEW)]);
    assert!(p.create.is_empty(), "web-0 is not Ready yet");
    assert_eq!(created_names(&steady(&s, &[ready(0, NEW)])), vec!["web-1"]);
    let p = steady(&s, &[ready(0, NEW), terminating(ready(1, NEW))]);
    assert!(p.create.is_empty(), "web-1 is terminating");
    assert_eq!(
        created_names(&steady(&s, &[ready(0, NEW), ready(1, NEW)])),
        vec!["web-2"]
    );
    let p = steady(&s, &[ready(0, NEW), ready(1, NEW), ready(2, NEW)]);
    assert!(p.create.is_empty() && p.delete.is_empty());
}

#[test]
fn parallel_creates_every_missing_ordinal_at_once() {
    let s = set(3, json!({"podManagementPolicy": "Parallel"}));
    assert_eq!(created_names(&steady(&s, &[])), vec!["web-0", "web-1", "web-2"]);
    let p = steady(&s, &[pod(1, "Pending", false, NEW)]);
    assert_eq!(created_names(&p), vec!["web-0", "web-2"]);
}

#[test]
fn ordered_scale_down_deletes_the_highest_ordinal_and_waits_for_it_to_go() {
    let s = set(2, json!({}));
    let all: Vec<SetPod> = (0..4).map(|i| ready(i, NEW)).collect();
    assert_eq!(steady(&s, &all).delete, vec!["web-3"]);
    let mut going = all.clone();
    going[3] = terminating(going[3].clone());
    assert!(
        steady(&s, &going).delete.is_empty(),
        "web-3 must be gone before web-2 goes"
    );
    assert_eq!(steady(&s, &all[..3]).delete, vec!["web-2"]);
    // An unready pod among those kept blocks the scale down.
    let mut unready = all.clone();
    unready[1] = pod(1, "Running", false, NEW);
    let p = steady(&s, &unready);
    assert!(p.delete.is_empty() && p.create.is_empty());
    let p = steady(&set(0, json!({"podManagementPolicy": "Parallel"})), &all);
    assert_eq!(
        p.delete,
        vec!["web-3", "web-2", "web-1", "web-0"],
        "Parallel deletes all at once"
    );
}

#[test]
fn a_failed_pod_is_deleted_then_made_again_once_gone() {
    let s = set(2, json!({}));
    let p = steady(&s, &[pod(0, "Failed", false, NEW), ready(1, NEW)]);
    assert_eq!((p.delete.clone(), p.create.len()), (vec!["web-0".to_string()], 0));
    let p = steady(&s, &[terminating(pod(0, "Failed", false, NEW)), ready(1, NEW)]);
    assert!(
        p.delete.is_empty() && p.create.is_empty(),
        "waits for the pod to be gone"
    );
    assert_eq!(created_names(&steady(&s, &[ready(1, NEW)])), vec!["web-0"]);
}

#[test]
fn a_rolling_update_replaces_the_highest_old_pod_one_at_a_time() {
    let s = set(3, json!({}));
    let old: Vec<SetPod> = (0..3).map(|i| ready(i, OLD)).collect();
    let p = pass(&s, &old);
    assert_eq!(p.delete, vec!["web-2"]);
    assert!(p.create.is_empty());
    assert_eq!(p.status["currentReplicas"], 2, "the deleted pod no longer counts");
    let p = pass(&s, &[ready(0, OLD), ready(1, OLD), terminating(ready(2, OLD))]);
    assert!(p.delete.is_empty() && p.create.is_empty(), "waits for web-2 to go");
    let p = pass(&s, &[ready(0, OLD), ready(1, OLD)]);
    assert_eq!(created_names(&p), vec!["web-2"]);
    assert_eq!(p.create[0]["metadata"]["labels"]["controller-revision-hash"], NEW);
    assert_eq!(p.create[0]["spec"]["containers"][0]["image"], "nginx:2");
    let p = pass(&s, &[ready(0, OLD), ready(1, OLD), pod(2, "Running", false, NEW)]);
    assert!(p.delete.is_empty(), "web-2 is not Ready yet");
    let p = pass(&s, &[ready(0, OLD), ready(1, OLD), ready(2, NEW)]);
    assert_eq!(p.delete, vec!["web-1"]);
}

#[test]
fn a_partition_keeps_the_ordinals_below_it_at_the_current_revision() {
    let s = set(
        3,
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
    );
    let p = pass(&s, &(0..3).map(|i| ready(i, OLD)).collect::<Vec<_>>());
    assert_eq!(p.delete, vec!["web-2"]);
    let p = pass(&s, &[ready(0, OLD), ready(1, OLD), ready(2, NEW)]);
    assert!(p.delete.is_empty(), "web-0 and web-1 are below the partition");
    assert_eq!(p.status["currentRevision"], OLD, "the rollout is not complete");
    assert_eq!(p.status["updateRevision"], NEW);
    assert_eq!(
        (p.status["currentReplicas"].clone(), p.status["updatedReplicas"].clone()),
        (json!(2), json!(1))
    );
    // A pod below the partition that is made again is made at the current revision.
    let p = pass(&s, &[ready(1, OLD), ready(2, NEW)]);
    assert_eq!(p.create[0]["metadata"]["labels"]["controller-revision-hash"], OLD);
    assert_eq!(p.create[0]["spec"]["containers"][0]["image"], "nginx:1");
}

#[test]
fn on_delete_never_deletes_for_an_update_and_remakes_at_the_update_revision() {
    let s = set(2, json!({"updateStrategy": {"type": "OnDelete"}}));
    let p = pass(&s, &[ready(0, OLD), ready(1, OLD)]);
    assert!(p.delete.is_empty());
    let p = pass(&s, &[ready(0, OLD)]);
    assert_eq!(p.create[0]["metadata"]["labels"]["controller-revision-hash"], NEW);
}

#[test]
fn min_ready_seconds_holds_the_next_ordinal_and_asks_to_look_again() {
    let s = set(2, json!({"minReadySeconds": 30}));
    // Ready since 00:00:00, now 00:00:10: not available until after 00:00:30.
    let p = steady(&s, &[ready(0, NEW)]);
    assert!(p.create.is_empty());
    assert_eq!(p.status["readyReplicas"], 1);
    assert_eq!(p.status["availableReplicas"], 0);
    let at = p.requeue_at.expect("a requeue");
    assert!(at > "2026-01-01T00:00:30Z".parse::<Timestamp>().expect("t"));
    assert!(at < "2026-01-01T00:00:31Z".parse::<Timestamp>().expect("t"));
    let s = set(2, json!({"minReadySeconds": 5}));
    let p = steady(&s, &[ready(0, NEW)]);
    assert_eq!(created_names(&p), vec!["web-1"]);
    assert_eq!(p.status["availableReplicas"], 1);
}

#[test]
fn the_status_counts_pods_and_completes_the_rollout() {
    let s = set(3, json!({}));
    let p = pass(&s, &[ready(0, NEW), ready(1, NEW), ready(2, NEW)]);
    assert_eq!(
        p.status,
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
            "currentReplicas": 3, "updatedReplicas": 3, "currentRevision": NEW, "updateRevision": NEW,
            "collisionCount": 0})
    );
    assert!(p.write_status, "nothing was written before");
    let mut again = s.clone();
    again.status = p.status.clone();
    assert!(!pass(&again, &[ready(0, NEW), ready(1, NEW), ready(2, NEW)]).write_status);
    let p = pass(&s, &[ready(0, OLD), pod(1, "Pending", false, NEW)]);
    assert_eq!(
        p.status,
        json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "availableReplicas": 1,
            "currentReplicas": 1, "updatedReplicas": 1, "currentRevision": OLD, "updateRevision": NEW,
            "collisionCount": 0})
    );
    let p = steady(&set(0, json!({})), &[]);
    assert_eq!(p.status["replicas"], 0);
    assert!(p.status.get("readyReplicas").is_none(), "zero counts are omitted");
}

#[test]
fn a_deleted_set_gets_only_its_status() {
    let mut s = set(3, json!({}));
    s.deleting = true;
    let p = steady(&s, &[ready(0, NEW)]);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.status["replicas"], 1);
}

#[test]
fn a_pod_carries_its_identity_labels_owner_and_claim_volumes() {
    let mut s = set(3, json!({}));
    s.claim_templates = vec!["data".into()];
    let t = json!({"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "x"}], "volumes": [{"name": "cfg", "emptyDir": {}}]}});
    let p = new_pod(&s, &t, "web-abc", 2);
    assert_eq!(p["metadata"]["name"], "web-2");
    assert_eq!(p["metadata"]["generateName"], "web-");
    assert_eq!(
        p["metadata"]["labels"],
        json!({"app": "web", "controller-revision-hash": "web-abc",
            "statefulset.kubernetes.io/pod-name": "web-2", "apps.kubernetes.io/pod-index": "2"})
    );
    assert_eq!(p["metadata"]["annotations"], json!({"a": "b"}));
    assert_eq!(
        p["metadata"]["ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u1", "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(
        (p["spec"]["hostname"].clone(), p["spec"]["subdomain"].clone()),
        (json!("web-2"), json!("nginx"))
    );
    assert_eq!(
        p["spec"]["volumes"],
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}}, {"name": "cfg", "emptyDir": {}}])
    );
}

#[test]
fn pods_beyond_a_start_ordinal_are_numbered_from_it() {
    let s = set(2, json!({"ordinals": {"start": 3}, "podManagementPolicy": "Parallel"}));
    assert_eq!(created_names(&steady(&s, &[])), vec!["web-3", "web-4"]);
    assert_eq!(
        steady(&s, &[ready(0, NEW), ready(3, NEW), ready(4, NEW)]).delete,
        vec!["web-0"]
    );
}

#[test]
fn revisions_no_pod_uses_are_pruned_oldest_first_to_the_limit() {
    let revs: Vec<RevisionView> = (1..=5)
        .map(|i| RevisionView {
            name: format!("r{i}"),
            revision: i,
            data: json!(i),
            created: String::new(),
        })
        .collect();
    let live: BTreeSet<&str> = ["r5", "r1"].into();
    assert_eq!(revisions::prune(1, &revs, &live), vec!["r2", "r3"]);
    assert!(revisions::prune(3, &revs, &live).is_empty());
    assert!(revisions::prune(-1, &revs, &live).is_empty());
    assert_eq!(revisions::prune(0, &revs, &live), vec!["r2", "r3", "r4"]);
}

#[test]
fn the_update_revision_is_the_latest_an_older_equal_one_or_a_new_one() {
    let s = set(1, json!({}));
    let data = revisions::patch_data(&s);
    let rev = |name: &str, n: i64, data: Value| RevisionView {
        name: name.into(),
        revision: n,
        data,
        created: String::new(),
    };
    assert_eq!(revisions::choose(&s, &[]), UpdateRevision::Create { revision: 1 });
    let latest = [rev("a", 1, json!({})), rev("b", 2, data.clone())];
    assert_eq!(revisions::choose(&s, &latest), UpdateRevision::Latest("b".into()));
    let older = [rev("b", 1, data.clone()), rev("a", 2, json!({}))];
    assert_eq!(
        revisions::choose(&s, &older),
        UpdateRevision::Renumber {
            name: "b".into(),
            revision: 3
        }
    );
    assert_eq!(
        revisions::choose(&s, &[rev("a", 4, json!({}))]),
        UpdateRevision::Create { revision: 5 }
    );
}
