//! The Deployment controller's arithmetic and decisions, one sync at a time.
use serde_json::json;

use super::model::{DESIRED_REPLICAS, MAX_REPLICAS, REVISION, REVISION_HISTORY};
use super::util::{fnv32a, new_rs_new_replicas, scaled};
use super::*;

mod plans;

fn pct(s: &str) -> IntOrPercent {
    IntOrPercent::Str(s.into())
}

#[test]
fn percentages_scale_surge_up_and_unavailability_down() {
    assert_eq!(scaled(&pct("25%"), 3, true), Ok(1));
    assert_eq!(scaled(&pct("25%"), 3, false), Ok(0));
    assert_eq!(scaled(&pct("10%"), 10, false), Ok(1));
    assert_eq!(scaled(&pct("35%"), 10, true), Ok(4));
    assert_eq!(scaled(&IntOrPercent::Int(2), 10, true), Ok(2));
    assert!(scaled(&pct("2"), 10, true).is_err(), "a string must be a percentage");
    assert!(scaled(&pct("x%"), 10, true).is_err());
}

#[test]
fn both_bounds_zero_means_one_unavailable() {
    assert_eq!(resolve_fenceposts(&pct("25%"), &pct("25%"), 3), (1, 0));
    assert_eq!(resolve_fenceposts(&pct("25%"), &pct("25%"), 1), (1, 0));
    assert_eq!(resolve_fenceposts(&pct("0%"), &pct("0%"), 10), (0, 1));
    assert_eq!(resolve_fenceposts(&pct("10%"), &pct("10%"), 4), (1, 0));
    assert_eq!(resolve_fenceposts(&pct("1%"), &pct("1%"), 4), (1, 0));
    assert_eq!(resolve_fenceposts(&IntOrPercent::Int(0), &pct("20%"), 4), (0, 1));
}

fn with_strategy(replicas: i64, strategy: serde_json::Value) -> Deployment {
    Deployment::of(&json!({"metadata": {"name": "d"}, "spec": {"replicas": replicas, "strategy": strategy}}))
}

#[test]
fn unavailability_is_capped_by_the_replicas_and_zero_for_recreate() {
    let d = with_strategy(
        3,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 5}}),
    );
    assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 3));
    let d = with_strategy(
        0,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 5}}),
    );
    assert_eq!(max_unavailable(&d), 0);
    let d = with_strategy(3, json!({"type": "Recreate"}));
    assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
}

#[test]
fn missing_fields_take_the_apps_v1_defaults() {
    let d = Deployment::of(&json!({"metadata": {"name": "d"}, "spec": {}}));
    assert_eq!(d.replicas, 1);
    assert_eq!(
        d.strategy,
        Strategy::RollingUpdate {
            max_surge: pct("25%"),
            max_unavailable: pct("25%")
        }
    );
    assert_eq!(d.revision_history_limit, Some(10));
    assert_eq!(d.progress_deadline_seconds, Some(600));
    assert_eq!((d.min_ready_seconds, d.paused), (0, false));
    let partial = with_strategy(4, json!({"rollingUpdate": {"maxSurge": 2}}));
    assert_eq!((max_surge(&partial), max_unavailable(&partial)), (2, 1));
    let no_deadline = Deployment::of(&json!({"spec": {"progressDeadlineSeconds": 2147483647}}));
    assert_eq!(no_deadline.progress_deadline_seconds, None);
}

#[test]
fn the_new_replica_set_grows_within_the_surge() {
    let d = with_strategy(10, json!({"rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}));
    let rs = |replicas: i64| {
        let mut r = ReplicaSet::of(&json!({"metadata": {"name": "x"}}), 0);
        r.replicas = replicas;
        r
    };
    let (old, new) = (rs(10), rs(0));
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
    let (old, new) = (rs(8), rs(3));
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 5);
    let (old, new) = (rs(2), rs(9));
    assert_eq!(
        new_rs_new_replicas(&d, &[&old, &new], &new),
        10,
        "never beyond the replicas"
    );
    let (old, new) = (rs(10), rs(4));
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 4, "no room: unchanged");
}

#[test]
fn the_template_hash_uses_fnv32a_and_the_safe_alphabet() {
    assert_eq!(fnv32a(b""), 0x811c_9dc5);
    assert_eq!(fnv32a(b"a"), 0xe40c_292c);
    assert_eq!(safe_encode("0123456789"), "456789bcdf");
    let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "v1"}]}});
    let h = template_hash(&t, None);
    assert!(h.len() <= 10 && h.chars().all(|c| "456789bcdf".contains(c)), "{h}");
    let mut labelled = t.clone();
    labelled["metadata"]["labels"]["pod-template-hash"] = json!(h);
    labelled["spec"]["containers"][0]["resources"] = json!({});
    assert_eq!(
        template_hash(&labelled, None),
        h,
        "the hash label and empty fields do not count"
    );
    assert_ne!(template_hash(&t, Some(1)), h, "the collision count changes it");
    let mut v2 = t.clone();
    v2["spec"]["containers"][0]["image"] = json!("v2");
    assert_ne!(template_hash(&v2, None), h);
}

#[test]
fn templates_compare_as_typed_objects_ignoring_the_hash() {
    let a = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
        "spec": {"containers": [{"name": "app", "image": "v1", "stdin": false}], "hostNetwork": false}});
    let b = json!({"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "v1", "resources": {}}]}});
    assert!(equal_ignore_hash(&a, &b));
    let mut c = b.clone();
    c["spec"]["containers"][0]["image"] = json!("v2");
    assert!(!equal_ignore_hash(&a, &c));
    let mut d = b.clone();
    d["spec"]["automountServiceAccountToken"] = json!(false);
    assert!(!equal_ignore_hash(&b, &d), "a pointer's false is not unset");
}

#[test]
fn revision_annotations_copy_the_deployment_and_keep_history_on_reuse() {
    let d = Deployment::of(&json!({"metadata": {"name": "d", "annotations": {
        "kubernetes.io/change-cause": "v2", REVISION: "7", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"replicas": 4}}));
    let mut rs = ReplicaSet::of(&json!({"metadata": {"name": "x", "annotations": {REVISION: "1"}}}), 0);
    assert!(util::set_new_rs_annotations(&d, &mut rs, 3, true));
    assert_eq!(rs.annotations.get(REVISION).map(String::as_str), Some("3"));
    assert_eq!(rs.annotations.get(REVISION_HISTORY).map(String::as_str), Some("1"));
    assert_eq!(
        rs.annotations.get("kubernetes.io/change-cause").map(String::as_str),
        Some("v2")
    );
    assert!(!rs
        .annotations
        .contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert!(
        !rs.annotations.contains_key(DESIRED_REPLICAS),
        "an existing one keeps its replica annotations"
    );
    assert!(
        !util::set_new_rs_annotations(&d, &mut rs, 3, true),
        "nothing more to change"
    );
    assert!(util::set_new_rs_annotations(&d, &mut rs, 5, true));
    assert_eq!(rs.annotations.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
    let mut fresh = ReplicaSet::of(&json!({"metadata": {"name": "y"}}), 0);
    util::set_new_rs_annotations(&d, &mut fresh, 1, false);
    assert_eq!(fresh.annotations.get(DESIRED_REPLICAS).map(String::as_str), Some("4"));
    assert_eq!(fresh.annotations.get(MAX_REPLICAS).map(String::as_str), Some("5"));
    assert!(!fresh.annotations.contains_key(REVISION_HISTORY));
}
