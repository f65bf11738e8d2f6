//! `apps/v1` StatefulSets run by the simulated StatefulSet controller and kubelet, observed as
//! a client observes them: pods through a watch (every change, in order), the set's status,
//! its ControllerRevisions, and real kubectl's `rollout` and `scale`.
use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::kubectl::Kubectl;
use common::{sim, wait_for};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);

/// StatefulSet `web` (pods labelled `app=web`, one container `c`), with `extra` merged into
/// its spec.
fn web(replicas: i32, image: &str, extra: Value) -> Value {
    let mut v = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}});
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, x) in extra {
            spec.insert(k.clone(), x.clone());
        }
    }
    v
}

async fn create(sets: &Api<StatefulSet>, manifest: Value) -> StatefulSet {
    let set: StatefulSet = serde_json::from_value(manifest).expect("statefulset");
    sets.create(&PostParams::default(), &set).await.expect("create")
}

async fn set_image(sets: &Api<StatefulSet>, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    sets.patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("patch image");
}

fn is_ready(p: &Pod) -> bool {
    let st = p.status.as_ref();
    st.and_then(|s| s.phase.as_deref()) == Some("Running")
        && st
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn deleting(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

fn label(p: &Pod, key: &str) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .cloned()
        .unwrap_or_default()
}

fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// What a watch of the set's pods has delivered: the latest state of each pod not yet gone.
type Pods = BTreeMap<String, Pod>;

/// A watch of the pods labelled `app=web` from now on.
struct PodWatch {
    events: futures::stream::BoxStream<'static, kube::Result<WatchEvent<Pod>>>,
    pods: Pods,
}

impl PodWatch {
    async fn start(api: &Api<Pod>) -> PodWatch {
        let lp = ListParams::default().labels("app=web");
        let list = api.list(&lp).await.expect("list pods");
        let rv = list.metadata.resource_version.clone().unwrap_or_default();
        let pods = list
            .items
            .into_iter()
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
            .collect();
        let events = api
            .watch(&WatchParams::default().labels("app=web"), &rv)
            .await
            .expect("watch pods")
            .boxed();
        PodWatch { events, pods }
    }

    /// Feed every change to `seen` (the event's pod and the state before it) until `done`
    /// holds of the state; panics after [`LONG`] naming `what`.
    async fn until(&mut self, what: &str, mut seen: impl FnMut(&Pod, &Pods), done: impl Fn(&Pods) -> bool) {
        let run = async {
            while !done(&self.pods) {
                let ev = self.events.try_next().await.expect("watch event").expect("watch open");
                let (pod, gone) = match ev {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => (p, false),
                    WatchEvent::Deleted(p) => (p, true),
                    other => panic!("unexpected watch event {other:?}"),
                };
                seen(&pod, &self.pods);
                let name = pod.metadata.name.clone().unwrap_or_default();
                if gone {
                    self.pods.remove(&name);
                } else {
                    self.pods.insert(name, pod);
                }
            }
        };
        if tokio::time::timeout(LONG, run).await.is_err() {
            panic!("timed out waiting for {what}; pods: {:?}", self.pods.keys());
        }
    }
}

/// All of `web-0`..`web-{n-1}` exist, Ready, at a revision `at` accepts.
fn all_ready(pods: &Pods, n: usize, at: impl Fn(&str) -> bool) -> bool {
    pods.len() == n
        && (0..n).all(|i| {
            pods.get(&format!("web-{i}"))
                .is_some_and(|p| is_ready(p) && !deleting(p) && at(&label(p, "controller-revision-hash")))
        })
}

/// The set once its controller has observed its generation and finished rolling out.
async fn rolled_out(sets: &Api<StatefulSet>, replicas: i32) -> StatefulSet {
    wait_for("the statefulset to roll out", LONG, || async move {
        let s = sets.get("web").await.ok()?;
        let st = s.status.clone()?;
        (st.observed_generation == s.metadata.generation
            && st.replicas == replicas
            && st.ready_replicas == Some(replicas)
            && st.updated_replicas == Some(replicas)
            && st.current_revision.is_some()
            && st.current_revision == st.update_revision)
            .then_some(s)
    })
    .await
}

/// A client for the simulator, the set API and the pod API of `default`.
async fn apis(sim: &baton_sim::Sim) -> (kube::Client, Api<StatefulSet>, Api<Pod>) {
    let client = sim.client().await.expect("client");
    (
        client.clone(),
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client),
    )
}

#[tokio::test]
async fn ordered_ready_creates_each_pod_only_after_the_one_below_is_ready() {
    let sim = sim().await;
    let (_, sets, pods) = apis(&sim).await;
    let mut w = PodWatch::start(&pods).await;
    let created = create(&sets, web(3, "nginx:1", json!({}))).await;
    let mut added = Vec::new();
    w.until(
        "web-0, web-1 and web-2 to be Ready",
        |pod, before| {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if before.contains_key(&name) {
                return;
            }
            let ordinal: usize = name.trim_start_matches("web-").parse().expect("ordinal");
            if ordinal > 0 {
                let lower = before.get(&format!("web-{}", ordinal - 1));
                assert!(
                    lower.is_some_and(is_ready),
                    "{name} was created before web-{} was Ready",
                    ordinal - 1
                );
            }
            added.push(name);
        },
        |pods| all_ready(pods, 3, |_| true),
    )
    .await;
    assert_eq!(added, ["web-0", "web-1", "web-2"]);

    let p = &w.pods["web-1"];
    let uid = created.metadata.uid.clone().expect("uid");
    let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("StatefulSet", uid.as_str(), Some(true))
    );
    assert_eq!(label(p, "statefulset.kubernetes.io/pod-name"), "web-1");
    assert_eq!(label(p, "apps.kubernetes.io/pod-index"), "1");
    assert_eq!(label(p, "app"), "web");
    let spec = p.spec.as_ref().expect("spec");
    assert_eq!(
        (spec.hostname.as_deref(), spec.subdomain.as_deref()),
        (Some("web-1"), Some("nginx"))
    );

    let s = rolled_out(&sets, 3).await;
    let st = s.status.expect("status");
    let rev = st.update_revision.clone().expect("update revision");
    assert!(rev.starts_with("web-"), "{rev}");
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.current_replicas,
            st.updated_replicas,
            st.available_replicas
        ),
        (3, Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!((st.observed_generation, st.collision_count), (Some(1), Some(0)));
    assert!(w.pods.values().all(|p| label(p, "controller-revision-hash") == rev));
    let revs: Api<ControllerRevision> = Api::default_namespaced(sim.client().await.expect("client"));
    let r = revs.get(&rev).await.expect("the update revision exists");
    assert_eq!(r.revision, 1);
    let data = serde_json::to_value(r.data.expect("data")).expect("json");
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(data["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1");
}

#[tokio::test]
async fn parallel_creates_every_pod_at_once() {
    let sim = sim().await;
    let (_, sets, pods) = apis(&sim).await;
    let mut w = PodWatch::start(&pods).await;
    create(&sets, web(3, "nginx:1", json!({"podManagementPolicy": "Parallel"}))).await;
    w.until(
        "three pods",
        |pod, before| {
            assert!(
                !is_ready(pod) || before.len() == 3,
                "a pod was Ready before all three existed"
            );
        },
        |pods| pods.len() == 3,
    )
    .await;
    assert!(w.pods.values().all(|p| !is_ready(p)));
    w.until("all Ready", |_, _| {}, |pods| all_ready(pods, 3, |_| true))
        .await;
}

#[tokio::test]
async fn scaling_down_removes_the_highest_ordinal_first_one_at_a_time() {
    let sim = sim().await;
    let (_, sets, pods) = apis(&sim).await;
    let mut w = PodWatch::start(&pods).await;
    create(&sets, web(3, "nginx:1", json!({}))).await;
    w.until("three Ready pods", |_, _| {}, |pods| all_ready(pods, 3, |_| true))
        .await;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale");
    let mut order: Vec<String> = Vec::new();
    w.until(
        "web-1 and web-2 to be gone",
        |pod, before| {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let was_going = before.get(&name).is_none_or(deleting);
            if deleting(pod) && !was_going {
                if name == "web-1" {
                    assert!(
                        !before.contains_key("web-2"),
                        "web-1 was deleted while web-2 still existed"
                    );
                }
                order.push(name);
            }
        },
        |pods| pods.len() == 1 && pods.contains_key("web-0"),
    )
    .await;
    assert_eq!(order, ["web-2", "web-1"]);
    let s = rolled_out(&sets, 1).await;
    assert_eq!(s.status.and_then(|s| s.ready_replicas), Some(1));
}

#[tokio::test]
async fn a_template_change_rolls_pods_from_the_highest_ordinal_one_at_a_time() {
    let sim = sim().await;
    let (_, sets, pods) = apis(&sim).await;
    let mut w = PodWatch::start(&pods).await;
    create(&sets, web(3, "nginx:1", json!({}))).await;
    w.until("three Ready pods", |_, _| {}, |pods| all_ready(pods, 3, |_| true))
        .await;
    let old = rolled_out(&sets, 3)
        .await
        .status
        .and_then(|s| s.current_revision)
        .expect("revision");
    set_image(&sets, "nginx:2").await;
    let mut order: Vec<String> = Vec::new();
    let mut worst = 0;
    w.until(
        "every pod at the new revision",
        |pod, before| {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if deleting(pod) && !before.get(&name).is_some_and(deleting) {
                order.push(name.clone());
            }
            let mut after = before.clone();
            after.insert(name, pod.clone());
            let not_ready = (0..3)
                .filter(|i| {
                    !after
                        .get(&format!("web-{i}"))
                        .is_some_and(|p| is_ready(p) && !deleting(p))
                })
                .count();
            worst = worst.max(not_ready);
        },
        |pods| all_ready(pods, 3, |r| r != old),
    )
    .await;
    assert_eq!(order, ["web-2", "web-1", "web-0"]);
    assert_eq!(worst, 1, "exactly one pod at a time was out of service");
    assert!(w.pods.values().all(|p| image(p) == "nginx:2"));
    let s = rolled_out(&sets, 3).await;
    let st = s.status.expect("status");
    assert_ne!(st.current_revision.as_deref(), Some(old.as_str()));
    assert_eq!((st.observed_generation, st.available_replicas), (Some(2), Some(3)));
}

#[tokio::test]
async fn a_partition_updates_only_the_ordinals_at_or_above_it() {
    let sim = sim().await;
    let (_, sets, pods) = apis(&sim).await;
    let mut w = PodWatch::start(&pods).await;
    let partitioned = json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}});
    create(&sets, web(3, "nginx:1", partitioned)).await;
    w.until("three Ready pods", |_, _| {}, |pods| all_ready(pods, 3, |_| true))
        .await;
    let old = rolled_out(&sets, 3)
        .await
        .status
        .and_then(|s| s.current_revision)
        .expect("revision");
    let uids: Vec<Option<String>> = (0..2)
        .map(|i| w.pods[&format!("web-{i}")].metadata.uid.clone())
        .collect();
    set_image(&sets, "nginx:2").await;
    w.until(
        "web-2 at the new revision",
        |pod, _| {
            let name = pod.metadata.name.as_deref().unwrap_or("");
            assert!(name == "web-2" || !deleting(pod), "{name} is below the partition");
        },
        |pods| {
            pods.get("web-2")
                .is_some_and(|p| is_ready(p) && label(p, "controller-revision-hash") != old)
        },
    )
    .await;
    let st = wait_for("the status to count the update", LONG, || async {
        let st = sets.get("web").await.ok()?.status?;
        (st.updated_replicas == Some(1) && st.ready_replicas == Some(3)).then_some(st)
    })
    .await;
    assert_eq!(
        st.current_revision.as_deref(),
        Some(old.as_str()),
        "the rollout stays partial"
    );
    assert_ne!(st.update_revision.as_deref(), Some(old.as_str()));
    assert_eq!(st.current_replicas, Some(2));
    for (i, uid) in uids.iter().enumerate() {
        let p = pods.get(&format!("web-{i}")).await.expect("pod");
        assert_eq!(&p.metadata.uid, uid, "web-{i} was not replaced");
        assert_eq!(image(&p), "nginx:1");
    }
}

#[tokio::test]
async fn on_delete_replaces_only_the_pods_someone_deletes() {
    let sim = sim().await;
    let (_, sets, pods) = apis(&sim).await;
    let mut w = PodWatch::start(&pods).await;
    create(
        &sets,
        web(2, "nginx:1", json!({"updateStrategy": {"type": "OnDelete"}})),
    )
    .await;
    w.until("two Ready pods", |_, _| {}, |pods| all_ready(pods, 2, |_| true))
        .await;
    let uid = |pods: &Pods, name: &str| pods[name].metadata.uid.clone();
    let (uid0, uid1) = (uid(&w.pods, "web-0"), uid(&w.pods, "web-1"));
    set_image(&sets, "nginx:2").await;
    // Once the controller has written the new generation's status, it has made its decision.
    let st = wait_for("the new generation observed", LONG, || async {
        let st = sets.get("web").await.ok()?.status?;
        (st.observed_generation == Some(2)).then_some(st)
    })
    .await;
    assert_ne!(st.update_revision, st.current_revision);
    assert_eq!(st.updated_replicas, None, "no pod is at the new revision");
    for name in ["web-0", "web-1"] {
        let p = pods.get(name).await.expect("pod");
        assert!(!deleting(&p) && image(&p) == "nginx:1", "{name} was left alone");
    }
    pods.delete("web-1", &Default::default()).await.expect("delete web-1");
    w.until(
        "web-1 made again at the new revision",
        |_, _| {},
        |pods| pods.get("web-1").is_some_and(|p| is_ready(p) && image(p) == "nginx:2"),
    )
    .await;
    assert_ne!(uid(&w.pods, "web-1"), uid1);
    assert_eq!(uid(&w.pods, "web-0"), uid0);
    assert_eq!(image(&w.pods["web-0"]), "nginx:1");
}

#[tokio::test]
async fn min_ready_seconds_holds_the_next_ordinal_until_the_one_below_is_available() {
    let sim = sim().await;
    let (_, sets, pods) = apis(&sim).await;
    let mut w = PodWatch::start(&pods).await;
    create(&sets, web(2, "nginx:1", json!({"minReadySeconds": 2}))).await;
    let (mut ready_at, mut added_at) = (None, None);
    w.until(
        "web-1 to be created",
        |pod, before| {
            let name = pod.metadata.name.as_deref().unwrap_or("");
            if name == "web-0" && is_ready(pod) && ready_at.is_none() {
                ready_at = Some(std::time::Instant::now());
            }
            if name == "web-1" && !before.contains_key(name) {
                added_at = Some(std::time::Instant::now());
            }
        },
        |pods| pods.contains_key("web-1"),
    )
    .await;
    let waited = added_at.expect("web-1 added") - ready_at.expect("web-0 was Ready first");
    // Available means Ready for more than 2 s, counted from the second the condition records.
    assert!(
        waited > Duration::from_millis(900),
        "web-1 came {waited:?} after web-0 was Ready"
    );
    // Nothing but the controller's own timer makes the last pod count as available.
    let st = wait_for("both pods available", LONG, || async {
        let st = sets.get("web").await.ok()?.status?;
        (st.available_replicas == Some(2)).then_some(st)
    })
    .await;
    assert_eq!(st.ready_replicas, Some(2));
}

#[tokio::test]
async fn revisions_no_pod_uses_are_pruned_to_the_history_limit() {
    let sim = sim().await;
    let (client, sets, _) = apis(&sim).await;
    create(&sets, web(1, "nginx:1", json!({"revisionHistoryLimit": 1}))).await;
    rolled_out(&sets, 1).await;
    for image in ["nginx:2", "nginx:3", "nginx:4"] {
        set_image(&sets, image).await;
        rolled_out(&sets, 1).await;
    }
    let current = sets
        .get("web")
        .await
        .expect("get")
        .status
        .and_then(|s| s.current_revision);
    let revs: Api<ControllerRevision> = Api::default_namespaced(client);
    let kept = wait_for("history pruned to one revision beside the live one", LONG, || async {
        let list = revs.list(&ListParams::default().labels("app=web")).await.ok()?;
        let mut kept: Vec<(i64, String)> = list
            .items
            .into_iter()
            .map(|r| (r.revision, r.metadata.name.unwrap_or_default()))
            .collect();
        kept.sort();
        (kept.len() == 2).then_some(kept)
    })
    .await;
    assert_eq!(kept.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(Some(kept[1].1.clone()), current, "the newest is the live one");
}

/// kubectl with StatefulSet `web` applied (from `manifest`) and rolled out.
async fn kubectl_with(sim: &baton_sim::Sim, manifest: Value, replicas: i32) -> Kubectl {
    let k = Kubectl::new(sim);
    let f = k.file("web.json", &manifest);
    assert!(k
        .ok(&["apply", "-f", &f])
        .await
        .contains("statefulset.apps/web created"));
    let (_, sets, _) = apis(sim).await;
    rolled_out(&sets, replicas).await;
    k
}

/// The pods' images by name, as kubectl lists them.
async fn pod_images(k: &Kubectl) -> String {
    let tpl = r#"{range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}"#;
    k.ok(&["get", "pods", "-l", "app=web", "-o", &format!("jsonpath={tpl}")])
        .await
}

#[tokio::test]
async fn kubectl_rollout_status_follows_set_image_to_the_end() {
    let sim = sim().await;
    let k = kubectl_with(&sim, web(3, "nginx:1", json!({})), 3).await;
    k.ok(&["set", "image", "statefulset/web", "c=nginx:2"]).await;
    let out = k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]).await;
    assert_eq!(
        out.lines().last(),
        Some("partitioned roll out complete: 3 new pods have been updated..."),
        "{out}"
    );
    assert_eq!(pod_images(&k).await.trim(), "web-0=nginx:2 web-1=nginx:2 web-2=nginx:2");
    let ready = k
        .ok(&[
            "get",
            "statefulset",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}/{.status.updatedReplicas}",
        ])
        .await;
    assert_eq!(ready, "3/3");
}

#[tokio::test]
async fn kubectl_rollout_status_reports_a_partitioned_rollout() {
    let sim = sim().await;
    let partitioned = json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}});
    let k = kubectl_with(&sim, web(3, "nginx:1", partitioned), 3).await;
    k.ok(&["set", "image", "statefulset/web", "c=nginx:2"]).await;
    let out = k.ok(&["rollout", "status", "sts/web", "--timeout=60s"]).await;
    assert_eq!(
        out.lines().last(),
        Some("partitioned roll out complete: 2 new pods have been updated..."),
        "{out}"
    );
    for line in out.lines().filter(|l| l.starts_with("Waiting for partitioned")) {
        assert!(line.ends_with("out of 2 new pods have been updated..."), "{out}");
    }
    assert_eq!(pod_images(&k).await.trim(), "web-0=nginx:1 web-1=nginx:2 web-2=nginx:2");
}

#[tokio::test]
async fn kubectl_rollout_history_and_undo_bring_the_old_template_back() {
    let sim = sim().await;
    let k = kubectl_with(&sim, web(2, "nginx:1", json!({})), 2).await;
    k.ok(&["set", "image", "statefulset/web", "c=nginx:2"]).await;
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]).await;

    let history = k.ok(&["rollout", "history", "statefulset/web"]).await;
    let rows: Vec<Vec<&str>> = history
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["statefulset.apps/web"], "{history}");
    assert_eq!(rows[1], ["REVISION", "CHANGE-CAUSE"], "{history}");
    assert_eq!(&rows[2..], [["1", "<none>"], ["2", "<none>"]], "{history}");
    let first = k.ok(&["rollout", "history", "statefulset/web", "--revision=1"]).await;
    assert!(first.starts_with("statefulset.apps/web with revision #1"), "{first}");
    assert!(
        first.lines().any(|l| l.split_whitespace().eq(["Image:", "nginx:1"])),
        "{first}"
    );
    assert!(!first.contains("nginx:2"), "{first}");

    let undo = k.ok(&["rollout", "undo", "statefulset/web"]).await;
    assert_eq!(undo.trim(), "statefulset.apps/web rolled back");
    let tpl = k
        .ok(&[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(tpl, "nginx:1");
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]).await;
    assert_eq!(pod_images(&k).await.trim(), "web-0=nginx:1 web-1=nginx:1");
    // The old revision was renumbered to be the newest, as kube does on a rollback.
    let history = k.ok(&["rollout", "history", "statefulset/web"]).await;
    let numbers: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(numbers, ["2", "3"], "{history}");
    // kubectl compares the set's template with the revision's data: they are equal.
    let again = k.ok(&["rollout", "undo", "statefulset/web", "--to-revision=3"]).await;
    assert_eq!(
        again.trim(),
        "statefulset.apps/web skipped rollback (current template already matches revision 3)"
    );
}

#[tokio::test]
async fn kubectl_rollout_restart_replaces_every_pod() {
    let sim = sim().await;
    let k = kubectl_with(&sim, web(2, "nginx:1", json!({})), 2).await;
    let uids = [
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.uid}",
    ];
    let before = k.ok(&uids).await;
    assert_eq!(before.split_whitespace().count(), 2);
    let out = k.ok(&["rollout", "restart", "statefulset/web"]).await;
    assert_eq!(out.trim(), "statefulset.apps/web restarted");
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]).await;
    let after = k.ok(&uids).await;
    assert_eq!(after.split_whitespace().count(), 2);
    for uid in before.split_whitespace() {
        assert!(!after.contains(uid), "pod {uid} was not replaced: {after}");
    }
    let stamped = k
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            r#"jsonpath={.items[*].metadata.annotations.kubectl\.kubernetes\.io/restartedAt}"#,
        ])
        .await;
    assert_eq!(stamped.split_whitespace().count(), 2, "{stamped}");
}

#[tokio::test]
async fn kubectl_scale_adds_the_next_ordinals() {
    let sim = sim().await;
    let k = kubectl_with(&sim, web(3, "nginx:1", json!({})), 3).await;
    let out = k.ok(&["scale", "statefulset/web", "--replicas=5"]).await;
    assert_eq!(out.trim(), "statefulset.apps/web scaled");
    let (_, sets, _) = apis(&sim).await;
    rolled_out(&sets, 5).await;
    let names = k
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .await;
    assert_eq!(names, "web-0 web-1 web-2 web-3 web-4");
    let table = k.ok(&["get", "statefulset", "web"]).await;
    assert_eq!(
        common::kubectl::cell(&table, "web", "READY").as_deref(),
        Some("5/5"),
        "{table}"
    );
}
