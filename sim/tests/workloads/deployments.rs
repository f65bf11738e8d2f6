//! `apps/v1` Deployments and ReplicaSets run by the simulated controllers and kubelet, through
//! kube-rs here and real kubectl in `deployments/kubectl.rs`.
use crate::common;
mod kubectl;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{sim, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);
const HASH: &str = "pod-template-hash";
/// The characters of a pod-template hash and of a generated name's suffix.
const SAFE: &str = "bcdfghjklmnpqrstvwxz2456789";

fn deployment(name: &str, replicas: i32, image: &str, strategy: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}}, "strategy": strategy,
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

fn rolling(surge: Value, unavailable: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

struct Apis {
    deploys: Api<Deployment>,
    rses: Api<ReplicaSet>,
    pods: Api<Pod>,
}

async fn apis(sim: &baton_sim::Sim) -> Apis {
    let client = sim.client().await.expect("client");
    Apis {
        deploys: Api::default_namespaced(client.clone()),
        rses: Api::default_namespaced(client.clone()),
        pods: Api::default_namespaced(client),
    }
}

async fn create(a: &Apis, d: Value) -> Deployment {
    let d: Deployment = serde_json::from_value(d).expect("deployment");
    a.deploys.create(&PostParams::default(), &d).await.expect("create")
}

fn condition(d: &Deployment, ty: &str) -> Option<(String, String, String)> {
    let c = d
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)?
        .clone();
    Some((c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
}

fn reason(d: &Deployment, ty: &str) -> String {
    condition(d, ty).map(|c| c.1).unwrap_or_default()
}

/// The Deployment once its rollout of generation `generation` is complete, as
/// `kubectl rollout status` judges it and with Progressing at NewReplicaSetAvailable.
async fn rolled_out(a: &Apis, name: &str, generation: i64) -> Deployment {
    wait_for(&format!("{name} rolled out"), LONG, || async move {
        let d = a.deploys.get(name).await.ok()?;
        let want = d.spec.as_ref()?.replicas.unwrap_or(1);
        let st = d.status.clone()?;
        let done = st.observed_generation? >= generation
            && st.updated_replicas.unwrap_or(0) == want
            && st.replicas.unwrap_or(0) == want
            && st.available_replicas.unwrap_or(0) == want
            && reason(&d, "Progressing") == "NewReplicaSetAvailable";
        done.then_some(d)
    })
    .await
}

/// The ReplicaSets `d` controls, by revision.
async fn owned(a: &Apis, d: &Deployment) -> Vec<ReplicaSet> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let mut rses: Vec<ReplicaSet> = a
        .rses
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .collect();
    rses.sort_by_key(|rs| annotation(rs, "deployment.kubernetes.io/revision").and_then(|r| r.parse::<i64>().ok()));
    rses
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    rs.metadata.annotations.as_ref()?.get(key).cloned()
}

fn label(p: &Pod, key: &str) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key).cloned())
        .unwrap_or_default()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

async fn set_image(a: &Apis, name: &str, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    a.deploys
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("patch image");
}

async fn merge(a: &Apis, name: &str, patch: Value) -> Deployment {
    a.deploys
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("merge patch")
}

/// Every list of `app`'s pods taken every few milliseconds while it runs, until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Vec<Pod>>>,
}

impl Sampler {
    fn start(pods: Api<Pod>, app: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let lp = ListParams::default().labels(&format!("app={app}"));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                if let Ok(l) = pods.list(&lp).await {
                    samples.push(l.items);
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            samples
        });
        Sampler { stop, task }
    }

    async fn finish(self) -> Vec<Vec<Pod>> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("sampler")
    }
}

#[tokio::test]
async fn a_deployment_gets_a_replica_set_named_by_its_template_hash_and_ready_pods() {
    let sim = sim().await;
    let a = apis(&sim).await;
    create(&a, deployment("web", 3, "app:v1", rolling(json!("25%"), json!("25%")))).await;
    let d = rolled_out(&a, "web", 1).await;
    let rses = owned(&a, &d).await;
    assert_eq!(rses.len(), 1);
    let rs = &rses[0];
    let hash = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH).cloned())
        .expect("hash label");
    assert!(!hash.is_empty() && hash.chars().all(|c| SAFE.contains(c)), "{hash}");
    assert_eq!(rs.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
    let spec = rs.spec.clone().expect("spec");
    assert_eq!(
        spec.selector.match_labels.and_then(|m| m.get(HASH).cloned()),
        Some(hash.clone())
    );
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        annotation(rs, "deployment.kubernetes.io/revision").as_deref(),
        Some("1")
    );
    assert_eq!(
        annotation(rs, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("3")
    );
    // 3 + maxSurge 25% of 3, rounded up.
    assert_eq!(
        annotation(rs, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("4")
    );
    let revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|m| m.get("deployment.kubernetes.io/revision").cloned());
    assert_eq!(revision.as_deref(), Some("1"));
    let st = d.status.clone().expect("status");
    assert_eq!(
        (
            st.observed_generation,
            st.replicas,
            st.updated_replicas,
            st.ready_replicas,
            st.available_replicas,
            st.unavailable_replicas
        ),
        (Some(1), Some(3), Some(3), Some(3), Some(3), None)
    );
    let types: Vec<String> = st.conditions.iter().flatten().map(|c| c.type_.clone()).collect();
    assert_eq!(types, ["Available", "Progressing"]);
    assert_eq!(
        condition(&d, "Available"),
        Some((
            "True".into(),
            "MinimumReplicasAvailable".into(),
            "Deployment has minimum availability.".into()
        ))
    );
    let msg = format!("ReplicaSet \"web-{hash}\" has successfully progressed.");
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into(), msg))
    );
    let pods = a
        .pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("pods")
        .items;
    assert_eq!(pods.len(), 3);
    let rs_uid = rs.metadata.uid.clone().expect("uid");
    for p in &pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let suffix = name
            .strip_prefix(&format!("web-{hash}-"))
            .unwrap_or_else(|| panic!("{name}"));
        assert!(suffix.len() == 5 && suffix.chars().all(|c| SAFE.contains(c)), "{name}");
        assert_eq!(label(p, HASH), hash);
        assert!(ready(p), "{name} is Ready");
        let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("ReplicaSet", rs_uid.as_str(), Some(true))
        );
    }
    let events: Api<Event> = Api::default_namespaced(sim.client().await.expect("client"));
    let messages: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ScalingReplicaSet"))
        .filter_map(|e| e.message)
        .collect();
    assert_eq!(messages, [format!("Scaled up replica set web-{hash} from 0 to 3")]);
}

#[tokio::test]
async fn a_rolling_update_with_surge_one_keeps_three_available_and_at_most_four_pods() {
    let sim = sim().await;
    let a = apis(&sim).await;
    create(&a, deployment("surge", 3, "app:v1", rolling(json!(1), json!(0)))).await;
    let d = rolled_out(&a, "surge", 1).await;
    let old = owned(&a, &d).await.remove(0);
    let sampler = Sampler::start(a.pods.clone(), "surge");
    set_image(&a, "surge", "app:v2").await;
    let d = rolled_out(&a, "surge", 2).await;
    let samples = sampler.finish().await;
    assert!(samples.len() > 20, "sampled {} times", samples.len());
    for s in &samples {
        // A pod being deleted no longer counts, for kube as for this test.
        let counted: Vec<&Pod> = s.iter().filter(|p| !terminating(p)).collect();
        let available = counted.iter().filter(|p| ready(p)).count();
        assert!(counted.len() <= 4, "{} pods at once", counted.len());
        assert!(available >= 3, "only {available} available pods");
    }
    let rses = owned(&a, &d).await;
    let sizes: Vec<(String, i32, i32)> = rses
        .iter()
        .map(|rs| {
            let name = rs.metadata.name.clone().unwrap_or_default();
            (
                name,
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1),
                rs.status.as_ref().map_or(-1, |s| s.replicas),
            )
        })
        .collect();
    let old_name = old.metadata.name.clone().unwrap_or_default();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert_eq!(sizes[0], (old_name, 0, 0));
    assert_eq!((sizes[1].1, sizes[1].2), (3, 3));
    assert_eq!(
        annotation(&rses[1], "deployment.kubernetes.io/revision").as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn a_rolling_update_without_surge_never_runs_more_than_the_replicas() {
    let sim = sim().await;
    let a = apis(&sim).await;
    create(&a, deployment("nosurge", 3, "app:v1", rolling(json!(0), json!(1)))).await;
    rolled_out(&a, "nosurge", 1).await;
    let sampler = Sampler::start(a.pods.clone(), "nosurge");
    set_image(&a, "nosurge", "app:v2").await;
    rolled_out(&a, "nosurge", 2).await;
    let samples = sampler.finish().await;
    assert!(samples.len() > 20, "sampled {} times", samples.len());
    let mut saw_fewer = false;
    for s in &samples {
        let counted: Vec<&Pod> = s.iter().filter(|p| !terminating(p)).collect();
        assert!(counted.len() <= 3, "{} pods at once", counted.len());
        let available = counted.iter().filter(|p| ready(p)).count();
        assert!(available >= 2, "only {available} available pods");
        saw_fewer |= available == 2;
    }
    assert!(saw_fewer, "maxUnavailable 1 is used: some sample has 2 available pods");
}

#[tokio::test]
async fn recreate_never_runs_old_and_new_pods_at_once() {
    let sim = sim().await;
    let a = apis(&sim).await;
    // `slow-stop` pods take a while to stop once deleted: Recreate must wait for them.
    create(&a, deployment("re", 3, "app-slow-stop:v1", json!({"type": "Recreate"}))).await;
    let d = rolled_out(&a, "re", 1).await;
    let old_hash = owned(&a, &d).await[0]
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH).cloned())
        .expect("hash");
    let sampler = Sampler::start(a.pods.clone(), "re");
    set_image(&a, "re", "app-slow-stop:v2").await;
    rolled_out(&a, "re", 2).await;
    let samples = sampler.finish().await;
    let mut saw_stopping = false;
    for s in &samples {
        // Pods being deleted count: Recreate waits until they are gone.
        let hashes: BTreeSet<String> = s.iter().map(|p| label(p, HASH)).collect();
        assert!(hashes.len() <= 1, "old and new pods at once: {hashes:?}");
        saw_stopping |= s.iter().any(terminating);
    }
    assert!(saw_stopping, "the old pods were seen stopping");
    let last: BTreeSet<String> = samples
        .last()
        .expect("samples")
        .iter()
        .map(|p| label(p, HASH))
        .collect();
    assert!(!last.contains(&old_hash) && last.len() == 1, "{last:?}");
}

#[tokio::test]
async fn a_paused_deployment_scales_but_does_not_roll_out_until_resumed() {
    let sim = sim().await;
    let a = apis(&sim).await;
    create(&a, deployment("held", 2, "app:v1", rolling(json!(1), json!(0)))).await;
    let d = rolled_out(&a, "held", 1).await;
    let old = owned(&a, &d).await.remove(0).metadata.name.expect("name");
    merge(&a, "held", json!({"spec": {"paused": true}})).await;
    set_image(&a, "held", "app:v2").await;
    let scaled = merge(&a, "held", json!({"spec": {"replicas": 4}})).await;
    let generation = scaled.metadata.generation.expect("generation");
    let d = wait_for("the paused deployment observed and scaled", LONG, || async {
        let d = a.deploys.get("held").await.ok()?;
        let st = d.status.clone()?;
        (st.observed_generation == Some(generation) && st.available_replicas == Some(4)).then_some(d)
    })
    .await;
    let progressing = condition(&d, "Progressing").expect("Progressing");
    assert_eq!(
        (progressing.0.as_str(), progressing.1.as_str()),
        ("Unknown", "DeploymentPaused")
    );
    let rses = owned(&a, &d).await;
    assert_eq!(rses.len(), 1, "no new ReplicaSet while paused");
    assert_eq!(rses[0].metadata.name.as_deref(), Some(old.as_str()));
    assert_eq!(d.status.as_ref().and_then(|s| s.updated_replicas), None);
    merge(&a, "held", json!({"spec": {"paused": false}})).await;
    let d = rolled_out(&a, "held", generation + 1).await;
    let rses = owned(&a, &d).await;
    assert_eq!(rses.len(), 2);
    assert_eq!(rses[1].spec.as_ref().and_then(|s| s.replicas), Some(4));
}

#[tokio::test]
async fn revision_history_limit_one_keeps_one_old_replica_set() {
    let sim = sim().await;
    let a = apis(&sim).await;
    let mut d = deployment("hist", 1, "app:v1", rolling(json!(1), json!(0)));
    d["spec"]["revisionHistoryLimit"] = json!(1);
    create(&a, d).await;
    let d = rolled_out(&a, "hist", 1).await;
    let first = owned(&a, &d).await.remove(0).metadata.name.expect("name");
    set_image(&a, "hist", "app:v2").await;
    let d = rolled_out(&a, "hist", 2).await;
    let second = owned(&a, &d).await.remove(1).metadata.name.expect("name");
    set_image(&a, "hist", "app:v3").await;
    rolled_out(&a, "hist", 3).await;
    let names = wait_for("the oldest ReplicaSet deleted", LONG, || async {
        let d = a.deploys.get("hist").await.ok()?;
        let names: Vec<String> = owned(&a, &d)
            .await
            .into_iter()
            .filter_map(|rs| rs.metadata.name)
            .collect();
        (names.len() == 2).then_some(names)
    })
    .await;
    assert!(!names.contains(&first), "{names:?}");
    assert_eq!(names[0], second);
}

#[tokio::test]
async fn a_rollout_that_never_becomes_ready_exceeds_its_progress_deadline() {
    let sim = sim().await;
    let a = apis(&sim).await;
    let mut d = deployment("stuck", 1, "app:never-ready", rolling(json!("25%"), json!("25%")));
    d["spec"]["progressDeadlineSeconds"] = json!(2);
    create(&a, d).await;
    let d = wait_for("the deadline exceeded", LONG, || async {
        let d = a.deploys.get("stuck").await.ok()?;
        (reason(&d, "Progressing") == "ProgressDeadlineExceeded").then_some(d)
    })
    .await;
    let rs = owned(&a, &d).await.remove(0).metadata.name.expect("name");
    let (status, _, message) = condition(&d, "Progressing").expect("Progressing");
    assert_eq!(status, "False");
    assert_eq!(message, format!("ReplicaSet \"{rs}\" has timed out progressing."));
    let available = condition(&d, "Available").expect("Available");
    assert_eq!(
        (available.0.as_str(), available.1.as_str()),
        ("False", "MinimumReplicasUnavailable")
    );
    let st = d.status.expect("status");
    assert_eq!(
        (st.replicas, st.available_replicas, st.unavailable_replicas),
        (Some(1), None, Some(1))
    );
}

#[tokio::test]
async fn scaling_mid_rollout_is_proportional_across_replica_sets() {
    let sim = sim().await;
    let a = apis(&sim).await;
    // kube's documented example: 10 replicas, maxSurge 3, maxUnavailable 2, a new template
    // whose pods never become Ready, then a scale to 15.
    create(&a, deployment("prop", 10, "app:v1", rolling(json!(3), json!(2)))).await;
    let d = rolled_out(&a, "prop", 1).await;
    set_image(&a, "prop", "app:never-ready").await;
    let sizes = |rses: &[ReplicaSet]| -> Vec<i32> {
        rses.iter()
            .map(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1))
            .collect()
    };
    wait_for("the stalled rollout", LONG, || async {
        let rses = owned(&a, &d).await;
        (sizes(&rses) == [8, 5]).then_some(())
    })
    .await;
    merge(&a, "prop", json!({"spec": {"replicas": 15}})).await;
    // 18 allowed (15 + 3) of 13: the 5 more go 3 to the old (8/13) and 2 to the new.
    let rses = wait_for("proportional scaling", LONG, || async {
        let rses = owned(&a, &d).await;
        (sizes(&rses).iter().sum::<i32>() == 18).then_some(rses)
    })
    .await;
    assert_eq!(sizes(&rses), [11, 7]);
    for rs in &rses {
        assert_eq!(
            annotation(rs, "deployment.kubernetes.io/desired-replicas").as_deref(),
            Some("15")
        );
        assert_eq!(
            annotation(rs, "deployment.kubernetes.io/max-replicas").as_deref(),
            Some("18")
        );
    }
}

#[tokio::test]
async fn pods_count_as_available_only_after_min_ready_seconds() {
    let sim = sim().await;
    let a = apis(&sim).await;
    let mut d = deployment("slow", 2, "app:v1", rolling(json!("25%"), json!("25%")));
    d["spec"]["minReadySeconds"] = json!(2);
    create(&a, d).await;
    let counts = |d: &Deployment| {
        let st = d.status.clone().unwrap_or_default();
        (st.ready_replicas.unwrap_or(0), st.available_replicas.unwrap_or(0))
    };
    let (ready_at, d) = wait_for("both pods Ready", LONG, || async {
        let d = a.deploys.get("slow").await.ok()?;
        (counts(&d).0 == 2).then(|| (std::time::Instant::now(), d))
    })
    .await;
    assert!(counts(&d).1 < 2, "not yet available: {:?}", counts(&d));
    let rs = owned(&a, &d).await.remove(0);
    assert_eq!(rs.spec.as_ref().and_then(|s| s.min_ready_seconds), Some(2));
    // Nothing but the passing time makes them available: the controllers look again then.
    rolled_out(&a, "slow", 1).await;
    // Ready times are kept to the second, so a pod may count up to a second early.
    assert!(
        ready_at.elapsed() >= Duration::from_millis(900),
        "{:?}",
        ready_at.elapsed()
    );
}
