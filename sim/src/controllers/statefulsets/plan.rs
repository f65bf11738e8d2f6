//! One pass of the StatefulSet controller over a set's pods (`updateStatefulSet` and
//! `updateStatefulSetStatus` of `stateful_set_control.go`), as a pure function: which pods to
//! create, which to delete, and the status to write.
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::view::{SetPod, SetView, Strategy, POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL};

/// A revision the pass makes pods from: its name and the pod template it restores.
#[derive(Debug, Clone, Copy)]
pub struct Revision<'a> {
    pub name: &'a str,
    pub template: &'a Value,
}

/// What to do for one StatefulSet.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Pods to create, complete objects.
    pub create: Vec<Value>,
    /// Pods to delete gracefully, by name.
    pub delete: Vec<String>,
    /// The set's new status (`apps/v1` StatefulSetStatus).
    pub status: Value,
    /// The status differs from the stored one in a field kube compares (`inconsistentStatus`).
    pub write_status: bool,
    /// When a Ready pod becomes available (minReadySeconds): look again then.
    pub requeue_at: Option<Timestamp>,
}

/// A pod slot of the pass: the pod, and its object when this pass may create it.
struct Slot {
    pod: SetPod,
    new: Option<Value>,
}

/// Counts of `computeReplicaStatus`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Counts {
    replicas: i64,
    ready: i64,
    available: i64,
    current: i64,
    updated: i64,
}

/// The pass's working state: the pods in their ordinal slots, and what was decided so far.
struct Pass<'a> {
    set: &'a SetView,
    now: Timestamp,
    /// OrderedReady: one step at a time, each waiting for the ones before it.
    monotonic: bool,
    replicas: Vec<Slot>,
    /// Pods beyond the ordinals the set keeps, highest ordinal first.
    condemned: Vec<SetPod>,
    create: Vec<Value>,
    delete: Vec<String>,
}

impl Pass<'_> {
    fn delete(&mut self, name: &str) {
        if !self.delete.iter().any(|d| d == name) {
            self.delete.push(name.to_string());
        }
    }

    fn unavailable(&self, pod: &SetPod) -> bool {
        pod.unavailable(self.set.min_ready_seconds, self.now)
    }

    fn available(&self, pod: &SetPod) -> bool {
        pod.available(self.set.min_ready_seconds, self.now)
    }

    /// `processReplica` for slot `i`; true when an ordered set must go no further this pass.
    fn process_replica(&mut self, i: usize) -> bool {
        let pod = self.replicas[i].pod.clone();
        // A pod that stopped for good is deleted, and made again once it is gone.
        if pod.finished() {
            if !pod.deleting {
                self.delete(&pod.name);
            }
            return self.monotonic;
        }
        if !pod.created() {
            if let Some(obj) = self.replicas[i].new.take() {
                self.create.push(obj);
            }
            if self.monotonic {
                return true;
            }
        }
        self.monotonic && (pod.deleting || !pod.running_and_ready() || !self.available(&pod))
    }

    /// `processCondemned` for condemned pod `i`; true when an ordered set must go no further.
    fn process_condemned(&mut self, i: usize, first_unavailable: Option<&str>) -> bool {
        let pod = self.condemned[i].clone();
        if pod.deleting {
            return self.monotonic;
        }
        let first = first_unavailable == Some(pod.name.as_str());
        if self.monotonic && !first && (!pod.running_and_ready() || !self.available(&pod)) {
            return true;
        }
        self.delete(&pod.name);
        self.monotonic
    }

    /// The rolling update (MaxUnavailableStatefulSet off, as in 1.32): delete the highest pod
    /// at or above the partition that is not at the update revision, once every pod above it
    /// is available. Returns whether a pod at the current revision was deleted.
    fn roll(&mut self, partition: i64, update: &str) -> bool {
        let from = usize::try_from(partition).unwrap_or(0);
        for target in (from..self.replicas.len()).rev() {
            let pod = self.replicas[target].pod.clone();
            if pod.revision != update && !pod.deleting {
                if pod.created() {
                    self.delete(&pod.name);
                }
                return true;
            }
            if self.unavailable(&pod) {
                return false;
            }
        }
        false
    }

    /// `computeReplicaStatus` over every slot and condemned pod (pods not yet created count
    /// for nothing).
    fn counts(&self, current: &str, update: &str) -> Counts {
        let mut c = Counts::default();
        let pods = self.replicas.iter().map(|s| &s.pod).chain(self.condemned.iter());
        for pod in pods.filter(|p| p.created()) {
            c.replicas += 1;
            if pod.running_and_ready() {
                c.ready += 1;
                if self.available(pod) {
                    c.available += 1;
                }
            }
            if !pod.deleting {
                c.current += i64::from(pod.revision == current);
                c.updated += i64::from(pod.revision == update);
            }
        }
        c
    }
}

/// The pod for `ordinal` made from `template` at revision `revision` (`newStatefulSetPod`):
/// the template's labels, annotations and finalizers, the identity labels, a controller
/// reference, `hostname`/`subdomain`, and a volume per claim template (the simulator serves no
/// PersistentVolumeClaims, so the claims themselves are not made).
pub fn new_pod(set: &SetView, template: &Value, revision: &str, ordinal: i64) -> Value {
    let name = set.pod_name(ordinal);
    let tmeta = template.get("metadata").cloned().unwrap_or(Value::Null);
    let mut labels = tmeta
        .get("labels")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    labels[POD_NAME_LABEL] = json!(name);
    labels[POD_INDEX_LABEL] = json!(ordinal.to_string());
    labels[REVISION_LABEL] = json!(revision);
    let mut meta = json!({
        "name": name,
        "generateName": format!("{}-", set.name),
        "namespace": set.namespace,
        "labels": labels,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": set.name, "uid": set.uid, "controller": true, "blockOwnerDeletion": true}],
    });
    for field in ["annotations", "finalizers"] {
        if let Some(v) = tmeta.get(field).filter(|v| !v.is_null()) {
            meta[field] = v.clone();
        }
    }
    let mut spec = template
        .get("spec")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    spec["hostname"] = json!(name);
    if !set.service_name.is_empty() {
        spec["subdomain"] = json!(set.service_name);
    }
    if !set.claim_templates.is_empty() {
        let mut volumes: Vec<Value> = set
            .claim_templates
            .iter()
            .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": format!("{c}-{}-{ordinal}", set.name)}}))
            .collect();
        let others = spec
            .get("volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        volumes.extend(
            others
                .into_iter()
                .filter(|v| !set.claim_templates.iter().any(|c| v["name"] == json!(c))),
        );
        spec["volumes"] = json!(volumes);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// Put the set's pods in their ordinal slots, with a pod to create in each empty one (at the
/// current revision below the partition, at the update revision otherwise:
/// `newVersionedStatefulSetPod`), and the rest condemned, highest first.
fn slots<'a>(set: &'a SetView, current: Revision, update: Revision, pods: &[SetPod], now: Timestamp) -> Pass<'a> {
    let n = usize::try_from(set.replicas).unwrap_or(0);
    let mut found: Vec<Option<SetPod>> = vec![None; n];
    let mut condemned = Vec::new();
    for pod in pods {
        match usize::try_from(pod.ordinal - set.start).ok().filter(|i| *i < n) {
            Some(i) => found[i] = Some(pod.clone()),
            None => condemned.push(pod.clone()),
        }
    }
    condemned.sort_by_key(|p| std::cmp::Reverse(p.ordinal));
    let replicas = found
        .into_iter()
        .zip(set.start..)
        .map(|(pod, ordinal)| match pod {
            Some(pod) => Slot { pod, new: None },
            None => {
                let rev = match set.strategy {
                    Strategy::RollingUpdate { partition } if ordinal < set.start + partition => current,
                    _ => update,
                };
                Slot {
                    pod: SetPod::planned(set.pod_name(ordinal), ordinal, rev.name),
                    new: Some(new_pod(set, rev.template, rev.name, ordinal)),
                }
            }
        })
        .collect();
    Pass {
        set,
        now,
        monotonic: !set.parallel,
        replicas,
        condemned,
        create: Vec::new(),
        delete: Vec::new(),
    }
}

/// The controller's pass over `set` whose template is at revision `update`, with `current`
/// the revision it rolls from, given its pods at `now`.
pub fn plan(
    set: &SetView,
    current: Revision,
    update: Revision,
    collision_count: i64,
    pods: &[SetPod],
    now: Timestamp,
) -> Plan {
    let mut pass = slots(set, current, update, pods, now);
    let rolled = if set.deleting {
        false
    } else {
        act(&mut pass, update.name)
    };
    let mut counts = pass.counts(current.name, update.name);
    if rolled {
        counts.current = (counts.current - 1).max(0);
    }
    let requeue_at = requeue_at(&pass, &counts);
    let status = status(set, counts, current.name, update.name, collision_count);
    Plan {
        write_status: inconsistent(&set.status, &status),
        create: pass.create,
        delete: pass.delete,
        status,
        requeue_at,
    }
}

/// Replicas first, then condemned pods, then the rolling update, stopping where an ordered
/// set must wait. Returns whether the rolling update deleted a pod.
fn act(pass: &mut Pass, update: &str) -> bool {
    for i in 0..pass.replicas.len() {
        if pass.process_replica(i) {
            return false;
        }
    }
    let first_unavailable = pass
        .replicas
        .iter()
        .map(|s| &s.pod)
        .chain(pass.condemned.iter().rev())
        .find(|p| pass.unavailable(p))
        .map(|p| p.name.clone());
    for i in 0..pass.condemned.len() {
        if pass.process_condemned(i, first_unavailable.as_deref()) {
            return false;
        }
    }
    match pass.set.strategy {
        Strategy::OnDelete => false,
        Strategy::RollingUpdate { partition } => pass.roll(partition, update),
    }
}

/// With minReadySeconds, the first moment a Ready pod that is not yet available becomes so.
fn requeue_at(pass: &Pass, counts: &Counts) -> Option<Timestamp> {
    let min_ready = pass.set.min_ready_seconds;
    if min_ready == 0 || counts.available == pass.set.replicas {
        return None;
    }
    let pods = pass.replicas.iter().map(|s| &s.pod).chain(pass.condemned.iter());
    pods.filter(|p| p.ready && !pass.available(p))
        .filter_map(|p| p.available_at(min_ready))
        .min()
        // Available means Ready for strictly longer than minReadySeconds.
        .map(|t| t.checked_add(SignedDuration::from_millis(10)).unwrap_or(t))
}

/// The status kube writes (`updateStatefulSet`, then `completeRollingUpdate`): once every
/// replica is updated and ready, the update revision becomes the current one. Zero counts
/// are left out as Go's `omitempty` leaves them out; `replicas`, `availableReplicas` and
/// `collisionCount` are always written.
fn status(set: &SetView, mut c: Counts, current: &str, update: &str, collision_count: i64) -> Value {
    let mut current = current.to_string();
    let complete = c.updated == set.replicas && c.ready == set.replicas && c.replicas == set.replicas;
    if matches!(set.strategy, Strategy::RollingUpdate { .. }) && complete {
        c.current = c.updated;
        current = update.to_string();
    }
    let mut s = json!({"replicas": c.replicas, "availableReplicas": c.available, "collisionCount": collision_count});
    if set.generation > 0 {
        s["observedGeneration"] = json!(set.generation);
    }
    for (key, n) in [
        ("readyReplicas", c.ready),
        ("currentReplicas", c.current),
        ("updatedReplicas", c.updated),
    ] {
        if n > 0 {
            s[key] = json!(n);
        }
    }
    for (key, rev) in [("currentRevision", current.as_str()), ("updateRevision", update)] {
        if !rev.is_empty() {
            s[key] = json!(rev);
        }
    }
    s
}

/// `inconsistentStatus`: a newer generation, or any count or revision differs.
fn inconsistent(old: &Value, new: &Value) -> bool {
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    int(new, "observedGeneration") > int(old, "observedGeneration")
        || [
            "replicas",
            "currentReplicas",
            "readyReplicas",
            "updatedReplicas",
            "availableReplicas",
        ]
        .iter()
        .any(|k| int(old, k) != int(new, k))
        || ["currentRevision", "updateRevision"]
            .iter()
            .any(|k| text(old, k) != text(new, k))
}
