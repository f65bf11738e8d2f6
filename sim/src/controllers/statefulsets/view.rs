//! What the StatefulSet controller reads of a StatefulSet and of its pods. The StatefulSet's
//! spec is read with the defaults of `pkg/apis/apps/v1/defaults.go` applied, so an object
//! stored before (or without) API-server defaulting is managed as kube would manage it.
use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

/// The label naming the revision a pod was made from (`apps.StatefulSetRevisionLabel`).
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label carrying a pod's own name (`apps.StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying a pod's ordinal (`apps.PodIndexLabel`, feature PodIndexLabel, on by
/// default since 1.28).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// How pods are replaced when the template changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Replace pods with ordinal ≥ `partition` (relative to the start ordinal), highest first.
    RollingUpdate { partition: i64 },
    /// Never replace a pod for an update; a pod deleted by someone is recreated at the update
    /// revision.
    OnDelete,
}

/// A StatefulSet, defaulted.
#[derive(Debug, Clone, PartialEq)]
pub struct SetView {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub generation: i64,
    pub deleting: bool,
    pub annotations: Map<String, Value>,
    pub replicas: i64,
    /// `spec.ordinals.start`: the first ordinal (feature StatefulSetStartOrdinal, GA in 1.31).
    pub start: i64,
    /// `podManagementPolicy: Parallel` (kube's `allowsBurst`); OrderedReady otherwise.
    pub parallel: bool,
    pub strategy: Strategy,
    pub min_ready_seconds: i64,
    pub revision_history_limit: i64,
    pub service_name: String,
    pub selector: Value,
    /// `spec.template`, as stored.
    pub template: Value,
    /// `spec.volumeClaimTemplates` names: the claim volumes each pod gets.
    pub claim_templates: Vec<String>,
    /// The status the controller last wrote (`status.currentRevision`, `collisionCount`).
    pub current_revision: String,
    pub collision_count: i64,
    pub status: Value,
}

fn int_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

fn str_at(v: &Value, ptr: &str) -> String {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("").to_string()
}

impl SetView {
    /// The StatefulSet `v` with the `apps/v1` defaults for whatever it leaves out: one replica,
    /// OrderedReady, RollingUpdate with partition 0, ten revisions of history, no
    /// minReadySeconds.
    pub fn of(v: &Value) -> SetView {
        let strategy = match v.pointer("/spec/updateStrategy/type").and_then(Value::as_str) {
            Some("OnDelete") => Strategy::OnDelete,
            _ => Strategy::RollingUpdate {
                partition: int_at(v, "/spec/updateStrategy/rollingUpdate/partition")
                    .unwrap_or(0)
                    .max(0),
            },
        };
        let claim_templates = v
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        SetView {
            name: str_at(v, "/metadata/name"),
            namespace: str_at(v, "/metadata/namespace"),
            uid: str_at(v, "/metadata/uid"),
            generation: int_at(v, "/metadata/generation").unwrap_or(0),
            deleting: v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
            annotations: v
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            replicas: int_at(v, "/spec/replicas").unwrap_or(1).max(0),
            start: int_at(v, "/spec/ordinals/start").unwrap_or(0).max(0),
            parallel: v.pointer("/spec/podManagementPolicy").and_then(Value::as_str) == Some("Parallel"),
            strategy,
            min_ready_seconds: int_at(v, "/spec/minReadySeconds").unwrap_or(0).max(0),
            revision_history_limit: int_at(v, "/spec/revisionHistoryLimit").unwrap_or(10),
            service_name: str_at(v, "/spec/serviceName"),
            selector: v.pointer("/spec/selector").cloned().unwrap_or(Value::Null),
            template: v.pointer("/spec/template").cloned().unwrap_or_else(|| json!({})),
            claim_templates,
            current_revision: str_at(v, "/status/currentRevision"),
            collision_count: int_at(v, "/status/collisionCount").unwrap_or(0).max(0),
            status: v.get("status").cloned().unwrap_or(Value::Null),
        }
    }

    /// The last ordinal this set keeps (`getEndOrdinal`); below `start` when it has no replicas.
    pub fn end(&self) -> i64 {
        self.start + self.replicas - 1
    }

    /// `<set>-<ordinal>`.
    pub fn pod_name(&self, ordinal: i64) -> String {
        format!("{}-{ordinal}", self.name)
    }

    /// The labels of the pod template (the labels a revision carries).
    pub fn template_labels(&self) -> BTreeMap<String, String> {
        labels_of(self.template.pointer("/metadata/labels"))
    }
}

pub use crate::meta::string_map as labels_of;

/// The parent name and ordinal in a pod name `<parent>-<ordinal>` (kube's
/// `getParentNameAndOrdinal`: the ordinal must fit an int32).
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ordinal: i32 = digits.parse().ok()?;
    Some((parent, i64::from(ordinal)))
}

/// What the controller needs to know of one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct SetPod {
    pub name: String,
    pub ordinal: i64,
    /// Empty for a pod this pass decided to create (kube's "not created" placeholder).
    pub phase: String,
    pub deleting: bool,
    /// The Ready condition is True.
    pub ready: bool,
    /// When the Ready condition last changed (whole seconds, as stored).
    pub ready_since: Option<Timestamp>,
    /// Its `controller-revision-hash` label.
    pub revision: String,
}

impl SetPod {
    /// A stored pod; None when its name carries no ordinal.
    pub fn of(v: &Value) -> Option<SetPod> {
        let name = str_at(v, "/metadata/name");
        let (_, ordinal) = parent_and_ordinal(&name)?;
        let ready_cond = v
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
        Some(SetPod {
            ordinal,
            phase: str_at(v, "/status/phase"),
            deleting: v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
            ready: ready_cond.is_some_and(|c| c["status"] == "True"),
            ready_since: ready_cond
                .and_then(|c| c["lastTransitionTime"].as_str())
                .and_then(|t| t.parse().ok()),
            revision: v
                .pointer("/metadata/labels")
                .and_then(|l| l.get(REVISION_LABEL))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            name,
        })
    }

    /// A pod this pass creates: not yet created, at `revision`.
    pub fn planned(name: String, ordinal: i64, revision: &str) -> SetPod {
        SetPod {
            name,
            ordinal,
            phase: String::new(),
            deleting: false,
            ready: false,
            ready_since: None,
            revision: revision.to_string(),
        }
    }

    /// `isCreated`: it exists in the API (the server gives every pod a phase).
    pub fn created(&self) -> bool {
        !self.phase.is_empty()
    }

    /// `isFailed || isSucceeded`: its containers have stopped for good.
    pub fn finished(&self) -> bool {
        self.phase == "Failed" || self.phase == "Succeeded"
    }

    /// `isRunningAndReady`.
    pub fn running_and_ready(&self) -> bool {
        self.phase == "Running" && self.ready
    }

    /// `isRunningAndAvailable` (`podutil.IsPodAvailable`): Ready for longer than
    /// `min_ready_seconds` at `now`.
    pub fn available(&self, min_ready_seconds: i64, now: Timestamp) -> bool {
        self.ready && (min_ready_seconds == 0 || self.available_at(min_ready_seconds).is_some_and(|at| at < now))
    }

    /// When a Ready pod stops being too recently Ready to count as available.
    pub fn available_at(&self, min_ready_seconds: i64) -> Option<Timestamp> {
        self.ready_since?
            .checked_add(SignedDuration::from_secs(min_ready_seconds))
            .ok()
    }

    /// `isHealthy`: running, ready and not being deleted.
    pub fn healthy(&self) -> bool {
        self.running_and_ready() && !self.deleting
    }

    /// `isUnavailable`: unhealthy, or not yet available for `min_ready_seconds`.
    pub fn unavailable(&self, min_ready_seconds: i64, now: Timestamp) -> bool {
        !self.healthy() || !self.available(min_ready_seconds, now)
    }
}
