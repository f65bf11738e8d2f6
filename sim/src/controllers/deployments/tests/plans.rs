//! One sync of a Deployment per case: what it creates, resizes, deletes and reports.
use jiff::Timestamp;
use serde_json::{json, Value};

use super::super::model::{DESIRED_REPLICAS, MAX_REPLICAS, REVISION, REVISION_HISTORY};
use super::super::*;

const NOW: &str = "2026-01-01T00:10:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("time")
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn deploy(replicas: i64, strategy: Value, image: &str) -> Value {
    json!({"metadata": {"name": "web", "uid": "d-uid", "generation": 1}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "strategy": strategy, "template": template(image)}})
}

fn surge(s: Value, u: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": s, "maxUnavailable": u}})
}

/// ReplicaSet `web-<image>` of revision `rev`, sized for `desired` replicas with `max`
/// at most, with `replicas` of which `available` are available.
fn rs(image: &str, rev: i64, (desired, max): (i64, i64), replicas: i64, available: i64) -> ReplicaSet {
    let mut t = template(image);
    t["metadata"]["labels"]["pod-template-hash"] = json!(image);
    ReplicaSet::of(
        &json!({"metadata": {"name": format!("web-{image}"), "uid": format!("{image}-uid"), "generation": 2,
            "creationTimestamp": format!("2026-01-01T00:0{rev}:00Z"),
            "annotations": {REVISION: rev.to_string(), DESIRED_REPLICAS: desired.to_string(), MAX_REPLICAS: max.to_string()}},
            "spec": {"replicas": replicas, "template": t},
            "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available, "observedGeneration": 2}}),
        0,
    )
}

fn sizes(p: &Plan) -> Vec<(String, i64)> {
    p.update.iter().map(|u| (u.name.clone(), u.replicas)).collect()
}

fn conditions(p: &Plan) -> Vec<(String, String, String)> {
    let st = p.status.clone().unwrap_or_default();
    st["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (s("type"), s("status"), s("reason"))
        })
        .collect()
}

fn messages(p: &Plan) -> Vec<String> {
    p.events.iter().map(|e| e.message.clone()).collect()
}

#[test]
fn a_new_deployment_creates_its_replica_set_at_full_size() {
    let d = Deployment::of(&deploy(3, surge(json!("25%"), json!("25%")), "v1"));
    let p = plan(&d, &[], now());
    let created = p.create.clone().expect("a ReplicaSet to create");
    let hash = template_hash(&d.template, None);
    let name = format!("web-{hash}");
    assert_eq!(created["metadata"]["name"], json!(name));
    assert_eq!(created["spec"]["replicas"], json!(3));
    assert_eq!(
        created["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        json!(hash)
    );
    assert_eq!(
        created["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
        json!(hash)
    );
    assert_eq!(created["metadata"]["labels"]["pod-template-hash"], json!(hash));
    let ann = &created["metadata"]["annotations"];
    assert_eq!(
        (&ann[REVISION], &ann[DESIRED_REPLICAS], &ann[MAX_REPLICAS]),
        (&json!("1"), &json!("3"), &json!("4"))
    );
    let owner = &created["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["uid"], &owner["controller"]),
        (&json!("Deployment"), &json!("d-uid"), &json!(true))
    );
    assert_eq!(
        p.annotations.as_ref().and_then(|a| a.get(REVISION)).map(String::as_str),
        Some("1")
    );
    assert_eq!(
        conditions(&p),
        [
            ("Progressing".into(), "True".into(), "NewReplicaSetCreated".into()),
            ("Available".into(), "False".into(), "MinimumReplicasUnavailable".into())
        ]
    );
    let st = p.status.clone().expect("status");
    assert_eq!(
        st["conditions"][0]["message"],
        json!(format!("Created new replica set \"{name}\""))
    );
    assert_eq!(st["observedGeneration"], json!(1));
    assert_eq!(messages(&p), [format!("Scaled up replica set {name} from 0 to 3")]);
}

#[test]
fn a_rolling_update_with_surge_one_alternates_up_and_down() {
    let d = Deployment::of(&deploy(3, surge(json!(1), json!(0)), "v2"));
    // The new pod is not available yet: neither grow (4 pods) nor shrink (3 available).
    let p = plan(&d, &[rs("v1", 1, (3, 4), 3, 3), rs("v2", 2, (3, 4), 1, 0)], now());
    assert_eq!(sizes(&p), []);
    // It is: one old pod goes.
    let p = plan(&d, &[rs("v1", 1, (3, 4), 3, 3), rs("v2", 2, (3, 4), 1, 1)], now());
    assert_eq!(sizes(&p), [("web-v1".to_string(), 2)]);
    assert_eq!(messages(&p), ["Scaled down replica set web-v1 from 3 to 2"]);
    // Room for one more new pod.
    let p = plan(&d, &[rs("v1", 1, (3, 4), 2, 2), rs("v2", 2, (3, 4), 1, 1)], now());
    assert_eq!(sizes(&p), [("web-v2".to_string(), 2)]);
    assert_eq!(messages(&p), ["Scaled up replica set web-v2 from 1 to 2"]);
}

#[test]
fn a_rolling_update_without_surge_shrinks_the_old_first() {
    let d = Deployment::of(&deploy(3, surge(json!(0), json!(1)), "v2"));
    let p = plan(&d, &[rs("v1", 1, (3, 3), 3, 3)], now());
    let created = p.create.clone().expect("create");
    assert_eq!(created["spec"]["replicas"], json!(0), "no room to grow");
    assert_eq!(sizes(&p), [("web-v1".to_string(), 2)]);
    let p = plan(&d, &[rs("v1", 1, (3, 3), 2, 2), rs("v2", 2, (3, 3), 0, 0)], now());
    assert_eq!(sizes(&p), [("web-v2".to_string(), 1)]);
}

#[test]
fn unavailable_old_replicas_are_cleaned_up_first() {
    let d = Deployment::of(&deploy(3, surge(json!(1), json!(0)), "v3"));
    let olds = [
        rs("v1", 1, (3, 4), 1, 0),
        rs("v2", 2, (3, 4), 3, 3),
        rs("v3", 3, (3, 4), 0, 0),
    ];
    let p = plan(&d, &olds, now());
    assert_eq!(
        sizes(&p),
        [("web-v1".to_string(), 0)],
        "the unhealthy one, not the available one"
    );
}

#[test]
fn recreate_scales_old_to_zero_and_waits_for_their_pods() {
    let d = Deployment::of(&deploy(3, json!({"type": "Recreate"}), "v2"));
    let p = plan(&d, &[rs("v1", 1, (3, 3), 3, 3)], now());
    assert_eq!(sizes(&p), [("web-v1".to_string(), 0)]);
    assert!(p.create.is_none());
    let mut stopping = rs("v1", 1, (3, 3), 0, 0);
    stopping.live_pods = 1;
    let p = plan(&d, &[stopping.clone()], now());
    assert!(p.create.is_none(), "a pod of the old ReplicaSet is still there");
    stopping.live_pods = 0;
    let p = plan(&d, &[stopping], now());
    assert_eq!(p.create.expect("create")["spec"]["replicas"], json!(3));
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    let stuck = [rs("v1", 1, (10, 13), 8, 8), rs("v2", 2, (10, 13), 5, 0)];
    let d = Deployment::of(&deploy(15, surge(json!(3), json!(2)), "v2"));
    let p = plan(&d, &stuck, now());
    assert_eq!(sizes(&p), [("web-v1".to_string(), 11), ("web-v2".to_string(), 7)]);
    for u in &p.update {
        assert_eq!(u.annotations.get(DESIRED_REPLICAS).map(String::as_str), Some("15"));
        assert_eq!(u.annotations.get(MAX_REPLICAS).map(String::as_str), Some("18"));
    }
    let d = Deployment::of(&deploy(5, surge(json!(3), json!(2)), "v2"));
    let p = plan(&d, &stuck, now());
    assert_eq!(sizes(&p), [("web-v1".to_string(), 5), ("web-v2".to_string(), 3)]);
}

#[test]
fn a_paused_deployment_scales_but_creates_no_new_replica_set() {
    let mut v = deploy(4, surge(json!(1), json!(0)), "v2");
    v["spec"]["paused"] = json!(true);
    let d = Deployment::of(&v);
    let p = plan(&d, &[rs("v1", 1, (3, 4), 3, 3)], now());
    assert!(p.create.is_none());
    assert_eq!(sizes(&p), [("web-v1".to_string(), 4)]);
    assert_eq!(
        conditions(&p)[0],
        ("Progressing".into(), "Unknown".into(), "DeploymentPaused".into())
    );
    // Resumed: reported, and the rollout starts.
    v["spec"]["paused"] = json!(false);
    v["status"] = p.status.clone().expect("status");
    let p = plan(&Deployment::of(&v), &[rs("v1", 1, (4, 5), 4, 4)], now());
    assert!(p.create.is_some());
    let progressing = conditions(&p)
        .into_iter()
        .find(|c| c.0 == "Progressing")
        .expect("Progressing");
    assert_eq!(progressing.1, "True", "{progressing:?}");
}

#[test]
fn resumed_is_reported_when_the_rollout_made_no_progress() {
    let mut v = deploy(3, surge(json!(1), json!(0)), "v1");
    // The counts have not moved since: only the resumption is news.
    v["status"] = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "unavailableReplicas": 3,
        "conditions": [{"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused",
        "lastUpdateTime": NOW, "lastTransitionTime": NOW}]});
    let p = plan(&Deployment::of(&v), &[rs("v1", 1, (3, 4), 3, 0)], now());
    assert!(
        conditions(&p).contains(&("Progressing".into(), "Unknown".into(), "DeploymentResumed".into())),
        "{:?}",
        conditions(&p)
    );
}

fn complete(mut v: Value, replicas: i64) -> Value {
    v["status"] = json!({"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
        "availableReplicas": replicas, "readyReplicas": replicas});
    v
}

#[test]
fn old_replica_sets_beyond_the_history_limit_are_deleted_lowest_revision_first() {
    let mut v = complete(deploy(3, surge(json!(1), json!(0)), "v3"), 3);
    v["spec"]["revisionHistoryLimit"] = json!(1);
    let rses = [
        rs("v1", 1, (3, 4), 0, 0),
        rs("v2", 2, (3, 4), 0, 0),
        rs("v3", 3, (3, 4), 3, 3),
    ];
    let p = plan(&Deployment::of(&v), &rses, now());
    assert_eq!(p.delete, ["web-v1"]);
    // Not while it still counts pods, nor before its last resize is observed.
    let mut busy = rses.clone();
    busy[0].status_replicas = 1;
    busy[1].generation = 3;
    let mut v2 = v.clone();
    v2["spec"]["revisionHistoryLimit"] = json!(0);
    assert_eq!(plan(&Deployment::of(&v2), &busy, now()).delete, Vec::<String>::new());
}

fn stalled(last_update: &str) -> Value {
    let mut v = deploy(1, surge(json!("25%"), json!("25%")), "v1");
    v["spec"]["progressDeadlineSeconds"] = json!(2);
    v["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
            "message": "ReplicaSet \"web-v1\" is progressing.", "lastUpdateTime": last_update, "lastTransitionTime": "2026-01-01T00:09:00Z"}]});
    v
}

#[test]
fn a_rollout_without_progress_times_out_after_its_deadline() {
    let rses = [rs("v1", 1, (1, 2), 1, 0)];
    let p = plan(&Deployment::of(&stalled("2026-01-01T00:09:55Z")), &rses, now());
    let st = p.status.clone().expect("status");
    let progressing = st["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .expect("Progressing");
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    assert_eq!(
        progressing["message"],
        "ReplicaSet \"web-v1\" has timed out progressing."
    );
    assert_eq!(progressing["lastTransitionTime"], NOW);
    assert_eq!(p.requeue, None, "nothing more to wait for");
    // One second left: no change yet, look again when it has passed.
    let p = plan(&Deployment::of(&stalled("2026-01-01T00:09:59Z")), &rses, now());
    assert!(!conditions(&p).iter().any(|c| c.2 == "ProgressDeadlineExceeded"));
    assert_eq!(p.requeue, Some(std::time::Duration::from_millis(1050)));
}

#[test]
fn a_rollback_reuses_the_replica_set_with_that_template_under_a_new_revision() {
    let d = Deployment::of(&deploy(3, surge(json!(1), json!(0)), "v1"));
    let p = plan(&d, &[rs("v1", 1, (3, 4), 0, 0), rs("v2", 2, (3, 4), 3, 3)], now());
    assert!(p.create.is_none());
    let u = p.update.iter().find(|u| u.name == "web-v1").expect("web-v1 updated");
    assert_eq!(u.replicas, 1);
    assert_eq!(u.annotations.get(REVISION).map(String::as_str), Some("3"));
    assert_eq!(u.annotations.get(REVISION_HISTORY).map(String::as_str), Some("1"));
    assert_eq!(
        p.annotations.as_ref().and_then(|a| a.get(REVISION)).map(String::as_str),
        Some("3")
    );
}

#[test]
fn a_hash_collision_is_counted_and_nothing_created() {
    let d = Deployment::of(&deploy(3, surge(json!(1), json!(0)), "v2"));
    let mut taken = rs("v1", 1, (3, 4), 3, 3);
    taken.name = format!("web-{}", template_hash(&d.template, None));
    let p = plan(&d, &[taken.clone()], now());
    assert!(p.create.is_none());
    let status = p.status.expect("status");
    assert_eq!(status["collisionCount"], json!(1));
    // The next sync hashes with the count: another name.
    let mut v = deploy(3, surge(json!(1), json!(0)), "v2");
    v["status"] = status;
    let p = plan(&Deployment::of(&v), &[taken.clone()], now());
    let created = p.create.expect("create");
    assert_eq!(
        created["metadata"]["name"],
        json!(format!("web-{}", template_hash(&d.template, Some(1))))
    );
    assert_ne!(created["metadata"]["name"], json!(taken.name));
}
