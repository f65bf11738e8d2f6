//! Which of a ReplicaSet's pods go first when it scales down: kube's `ActivePodsWithRanks`
//! order (pkg/controller/controller_utils.go), with the `PodDeletionCost` and
//! `LogarithmicScaleDown` features on, as they are by default.
use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

/// What the ReplicaSet controller needs to know of a pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RankedPod {
    pub name: String,
    pub uid: String,
    /// `spec.nodeName` ("" while not scheduled).
    pub node: String,
    pub phase: String,
    pub deleting: bool,
    pub labels: BTreeMap<String, String>,
    /// The Ready condition is True.
    pub ready: bool,
    /// When the Ready condition last changed (the start of being Ready, for a Ready pod).
    pub ready_since: Option<Timestamp>,
    /// The highest restart count of its regular containers, and of its sidecars.
    pub restarts: (i64, i64),
    pub created: Option<Timestamp>,
    /// `controller.kubernetes.io/pod-deletion-cost`.
    pub deletion_cost: i64,
}

pub fn parse_time(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

fn max_restarts(statuses: Option<&Value>, only_sidecars: Option<&Value>) -> i64 {
    let sidecars: Vec<&str> = only_sidecars
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    statuses
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| {
            only_sidecars.is_none()
                || c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| sidecars.contains(&n))
        })
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .max()
        .unwrap_or(0)
}

impl RankedPod {
    pub fn of(v: &Value) -> RankedPod {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
        let ready_cond = v
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
        let ready = ready_cond.is_some_and(|c| c["status"] == "True");
        let labels = v
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        RankedPod {
            name: s("/metadata/name"),
            uid: s("/metadata/uid"),
            node: s("/spec/nodeName"),
            phase: s("/status/phase"),
            deleting: v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
            labels,
            ready,
            ready_since: ready_cond.and_then(|c| parse_time(c.get("lastTransitionTime"))),
            restarts: (
                max_restarts(v.pointer("/status/containerStatuses"), None),
                max_restarts(
                    v.pointer("/status/initContainerStatuses"),
                    Some(v.pointer("/spec/initContainers").unwrap_or(&Value::Null)),
                ),
            ),
            created: parse_time(v.pointer("/metadata/creationTimestamp")),
            deletion_cost: v
                .pointer("/metadata/annotations/controller.kubernetes.io~1pod-deletion-cost")
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
        }
    }

    /// Counted by a ReplicaSet: not finished and not being deleted (`controller.IsPodActive`).
    pub fn active(&self) -> bool {
        self.phase != "Succeeded" && self.phase != "Failed" && !self.deleting
    }
}

fn phase_ordinal(phase: &str) -> u8 {
    match phase {
        "Unknown" => 1,
        "Running" => 2,
        // Pending, and phases the order does not know (Go's map lookup yields zero).
        _ => 0,
    }
}

/// Go's `afterOrZero`: a missing time sorts first, else the later one does.
fn after_or_zero(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a > b,
        (a, _) => a.is_none(),
    }
}

/// The base-2 logarithm of how long ago `t` was, in nanoseconds (-1 for not in the past):
/// times within the same power of two of each other rank alike.
fn log_rank(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d > 0 {
        (d as f64).log2() as i64
    } else {
        -1
    }
}

/// Newer first, coarsely (`logarithmicRankDiff`), then by uid; a missing time sorts first.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>, a_uid: &str, b_uid: &str, now: Timestamp) -> bool {
    match (a, b) {
        (Some(ta), Some(tb)) => {
            let diff = log_rank(ta, now) - log_rank(tb, now);
            if diff == 0 {
                a_uid < b_uid
            } else {
                diff < 0
            }
        }
        _ => after_or_zero(a, b),
    }
}

/// Whether `a` (with `ra` related pods on its node) goes before `b` when scaling down.
pub fn deleted_before(a: &RankedPod, ra: usize, b: &RankedPod, rb: usize, now: Timestamp) -> bool {
    if a.node != b.node && (a.node.is_empty() || b.node.is_empty()) {
        return a.node.is_empty();
    }
    if phase_ordinal(&a.phase) != phase_ordinal(&b.phase) {
        return phase_ordinal(&a.phase) < phase_ordinal(&b.phase);
    }
    if a.ready != b.ready {
        return !a.ready;
    }
    if a.deletion_cost != b.deletion_cost {
        return a.deletion_cost < b.deletion_cost;
    }
    // Doubled up: the pod sharing its node with more of its kin goes first.
    if ra != rb {
        return ra > rb;
    }
    if a.ready && b.ready && a.ready_since != b.ready_since {
        return newer_first(a.ready_since, b.ready_since, &a.uid, &b.uid, now);
    }
    if a.restarts.0 != b.restarts.0 {
        return a.restarts.0 > b.restarts.0;
    }
    if a.restarts.1 != b.restarts.1 {
        return a.restarts.1 > b.restarts.1;
    }
    if a.created != b.created {
        return newer_first(a.created, b.created, &a.uid, &b.uid, now);
    }
    false
}

/// The `n` of `pods` (all active) to delete: ranked by [`deleted_before`], where a pod's rank
/// is how many active `related` pods (the pods of its owner's siblings, itself included) share
/// its node.
pub fn to_delete(pods: &[RankedPod], related: &[RankedPod], n: usize, now: Timestamp) -> Vec<String> {
    if n >= pods.len() {
        return pods.iter().map(|p| p.name.clone()).collect();
    }
    let mut on_node: BTreeMap<&str, usize> = BTreeMap::new();
    for p in related.iter().filter(|p| p.active()) {
        *on_node.entry(p.node.as_str()).or_default() += 1;
    }
    let mut ranked: Vec<(&RankedPod, usize)> = pods
        .iter()
        .map(|p| (p, on_node.get(p.node.as_str()).copied().unwrap_or(0)))
        .collect();
    ranked.sort_by(|(a, ra), (b, rb)| {
        if deleted_before(a, *ra, b, *rb, now) {
            Ordering::Less
        } else if deleted_before(b, *rb, a, *ra, now) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
    ranked.into_iter().take(n).map(|(p, _)| p.name.clone()).collect()
}
