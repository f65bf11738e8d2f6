//! The ReplicaSet controller's decision for one ReplicaSet (pkg/controller/replicaset:
//! `manageReplicas` and `calculateStatus`), a pure function of the ReplicaSet, its pods and
//! the time.
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::rank::{to_delete, RankedPod};

/// kube-controller-manager's `--replicaset-burst-replicas` default: at most this many pods are
/// created or deleted in one sync.
pub const BURST_REPLICAS: usize = 500;

/// What to do for one ReplicaSet.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Pods to create from the template.
    pub create: usize,
    /// Pods to delete (gracefully), by name.
    pub delete: Vec<String>,
    /// The ReplicaSet's status after this plan (written when it differs).
    pub status: Value,
    /// Look again after this long: a Ready pod becomes available once it has been Ready for
    /// `minReadySeconds`, and no event says so.
    pub requeue: Option<Duration>,
}

use crate::meta::string_map as labels_of;

/// `podutil.IsPodAvailable`: Ready, for longer than `min_ready` seconds.
pub fn available(p: &RankedPod, min_ready: i64, now: Timestamp) -> bool {
    if !p.ready {
        return false;
    }
    min_ready == 0
        || p.ready_since
            .is_some_and(|t| t + jiff::SignedDuration::from_secs(min_ready) < now)
}

/// When a Ready pod that is not yet available will be, from `now`.
fn until_available(p: &RankedPod, min_ready: i64, now: Timestamp) -> Option<Duration> {
    if !p.ready || available(p, min_ready, now) {
        return None;
    }
    let due = p.ready_since? + jiff::SignedDuration::from_secs(min_ready);
    let left = due.duration_since(now).as_millis().max(0) as u64;
    // Availability needs the time strictly after `due`.
    Some(Duration::from_millis(left + 10))
}

/// The ReplicaSet controller's decision for `rs` given its active-or-not `pods` (those it
/// owns) and `related` (the pods of every ReplicaSet its owner owns), at `now`.
pub fn plan(rs: &Value, pods: &[RankedPod], related: &[RankedPod], now: Timestamp) -> Plan {
    let int = |p: &str| rs.pointer(p).and_then(Value::as_i64);
    let replicas = int("/spec/replicas").unwrap_or(1).max(0) as usize;
    let min_ready = int("/spec/minReadySeconds").unwrap_or(0).max(0);
    let deleting = rs.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null());
    let active: Vec<RankedPod> = pods.iter().filter(|p| p.active()).cloned().collect();
    let (mut create, mut delete) = (0, Vec::new());
    if !deleting {
        if active.len() < replicas {
            create = (replicas - active.len()).min(BURST_REPLICAS);
        } else if active.len() > replicas {
            let n = (active.len() - replicas).min(BURST_REPLICAS);
            delete = to_delete(&active, related, n, now);
        }
    }
    // kube's status counts the pods it listed, deleted ones included, until their deletion is
    // observed; counting what remains says the same one sync earlier.
    let counted: Vec<&RankedPod> = active.iter().filter(|p| !delete.contains(&p.name)).collect();
    let template = labels_of(rs.pointer("/spec/template/metadata/labels"));
    let fully = counted
        .iter()
        .filter(|p| template.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
        .count();
    let ready = counted.iter().filter(|p| p.ready).count();
    let avail = counted.iter().filter(|p| available(p, min_ready, now)).count();
    let mut status = Map::new();
    status.insert("replicas".into(), json!(counted.len()));
    for (k, n) in [
        ("fullyLabeledReplicas", fully),
        ("readyReplicas", ready),
        ("availableReplicas", avail),
    ] {
        if n > 0 {
            status.insert(k.into(), json!(n));
        }
    }
    if let Some(g) = int("/metadata/generation").filter(|g| *g > 0) {
        status.insert("observedGeneration".into(), json!(g));
    }
    if let Some(c) = rs
        .pointer("/status/conditions")
        .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
    {
        status.insert("conditions".into(), c.clone());
    }
    let requeue = counted.iter().filter_map(|p| until_available(p, min_ready, now)).min();
    Plan {
        create,
        delete,
        status: Value::Object(status),
        requeue,
    }
}
