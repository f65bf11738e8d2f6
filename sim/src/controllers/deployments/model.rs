//! What the Deployment controller reads of a Deployment and its ReplicaSets, with the
//! defaults of pkg/apis/apps/v1/defaults.go applied to whatever the stored object leaves out,
//! and the Deployment status it writes.
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";
/// `math.MaxInt32`: a progress deadline or history limit this large means none.
const MAX_INT32: i64 = 2_147_483_647;

/// An `intstr.IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(i64),
    Str(String),
}

impl IntOrPercent {
    fn of(v: Option<&Value>, default: &str) -> IntOrPercent {
        match v {
            Some(Value::Number(n)) => IntOrPercent::Int(n.as_i64().unwrap_or(0)),
            Some(Value::String(s)) => IntOrPercent::Str(s.clone()),
            _ => IntOrPercent::Str(default.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    Recreate,
    RollingUpdate {
        max_surge: IntOrPercent,
        max_unavailable: IntOrPercent,
    },
}

/// One Deployment condition, as `DeploymentCondition` serializes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub ty: String,
    pub status: String,
    pub last_update_time: String,
    pub last_transition_time: String,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub fn new(ty: &str, status: &str, reason: &str, message: String, now: Timestamp) -> Condition {
        let t = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        Condition {
            ty: ty.into(),
            status: status.into(),
            last_update_time: t.clone(),
            last_transition_time: t,
            reason: reason.into(),
            message,
        }
    }

    fn of(v: &Value) -> Condition {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Condition {
            ty: s("type"),
            status: s("status"),
            last_update_time: s("lastUpdateTime"),
            last_transition_time: s("lastTransitionTime"),
            reason: s("reason"),
            message: s("message"),
        }
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), json!(self.ty));
        m.insert("status".into(), json!(self.status));
        for (k, v) in [
            ("lastUpdateTime", &self.last_update_time),
            ("lastTransitionTime", &self.last_transition_time),
            ("reason", &self.reason),
            ("message", &self.message),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }
}

/// `DeploymentStatus` (without the feature-gated `terminatingReplicas`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub observed_generation: i64,
    pub replicas: i64,
    pub updated_replicas: i64,
    pub ready_replicas: i64,
    pub available_replicas: i64,
    pub unavailable_replicas: i64,
    pub conditions: Vec<Condition>,
    pub collision_count: Option<i64>,
}

impl Status {
    pub fn of(v: Option<&Value>) -> Status {
        let v = v.unwrap_or(&Value::Null);
        let n = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        Status {
            observed_generation: n("observedGeneration"),
            replicas: n("replicas"),
            updated_replicas: n("updatedReplicas"),
            ready_replicas: n("readyReplicas"),
            available_replicas: n("availableReplicas"),
            unavailable_replicas: n("unavailableReplicas"),
            conditions: v
                .get("conditions")
                .and_then(Value::as_array)
                .map(|cs| cs.iter().map(Condition::of).collect())
                .unwrap_or_default(),
            collision_count: v.get("collisionCount").and_then(Value::as_i64),
        }
    }

    /// The status as JSON, zero counts left out as Go's `omitempty` leaves them.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        for (k, n) in [
            ("observedGeneration", self.observed_generation),
            ("replicas", self.replicas),
            ("updatedReplicas", self.updated_replicas),
            ("readyReplicas", self.ready_replicas),
            ("availableReplicas", self.available_replicas),
            ("unavailableReplicas", self.unavailable_replicas),
        ] {
            if n != 0 {
                m.insert(k.into(), json!(n));
            }
        }
        if !self.conditions.is_empty() {
            let cs: Vec<Value> = self.conditions.iter().map(Condition::to_value).collect();
            m.insert("conditions".into(), Value::Array(cs));
        }
        if let Some(c) = self.collision_count {
            m.insert("collisionCount".into(), json!(c));
        }
        Value::Object(m)
    }

    pub fn condition(&self, ty: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.ty == ty)
    }

    pub fn remove_condition(&mut self, ty: &str) {
        self.conditions.retain(|c| c.ty != ty);
    }

    /// `SetDeploymentCondition`: nothing changes for the same status and reason; the same
    /// status keeps its transition time; the condition moves to the end.
    pub fn set_condition(&mut self, mut c: Condition) {
        if let Some(cur) = self.condition(&c.ty) {
            if cur.status == c.status && cur.reason == c.reason {
                return;
            }
            if cur.status == c.status {
                c.last_transition_time = cur.last_transition_time.clone();
            }
        }
        self.remove_condition(&c.ty);
        self.conditions.push(c);
    }
}

pub use crate::meta::string_map;

/// A Deployment, defaulted.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub name: String,
    pub uid: String,
    pub generation: i64,
    pub annotations: BTreeMap<String, String>,
    pub replicas: i64,
    pub selector: Value,
    pub template: Value,
    pub strategy: Strategy,
    pub min_ready_seconds: i64,
    /// None: keep every old ReplicaSet.
    pub revision_history_limit: Option<i64>,
    /// None: no deadline (and no Progressing condition).
    pub progress_deadline_seconds: Option<i64>,
    pub paused: bool,
    pub deleting: bool,
    pub status: Status,
}

impl Deployment {
    pub fn of(v: &Value) -> Deployment {
        let spec = v.get("spec").unwrap_or(&Value::Null);
        let int = |k: &str| spec.get(k).and_then(Value::as_i64);
        let ru = spec.pointer("/strategy/rollingUpdate");
        let strategy = match spec.pointer("/strategy/type").and_then(Value::as_str) {
            Some("Recreate") => Strategy::Recreate,
            _ => Strategy::RollingUpdate {
                max_surge: IntOrPercent::of(ru.and_then(|r| r.get("maxSurge")), "25%"),
                max_unavailable: IntOrPercent::of(ru.and_then(|r| r.get("maxUnavailable")), "25%"),
            },
        };
        let meta = |p: &str| v.pointer(&format!("/metadata/{p}"));
        Deployment {
            name: meta("name").and_then(Value::as_str).unwrap_or("").into(),
            uid: meta("uid").and_then(Value::as_str).unwrap_or("").into(),
            generation: meta("generation").and_then(Value::as_i64).unwrap_or(0),
            annotations: string_map(meta("annotations")),
            replicas: int("replicas").unwrap_or(1).max(0),
            selector: spec.get("selector").cloned().unwrap_or(Value::Null),
            template: spec.get("template").cloned().unwrap_or_else(|| json!({})),
            strategy,
            min_ready_seconds: int("minReadySeconds").unwrap_or(0).max(0),
            revision_history_limit: Some(int("revisionHistoryLimit").unwrap_or(10)).filter(|n| *n != MAX_INT32),
            progress_deadline_seconds: Some(int("progressDeadlineSeconds").unwrap_or(600)).filter(|n| *n != MAX_INT32),
            paused: spec.get("paused").and_then(Value::as_bool).unwrap_or(false),
            deleting: meta("deletionTimestamp").is_some_and(|t| !t.is_null()),
            status: Status::of(v.get("status")),
        }
    }
}

/// A Deployment's ReplicaSet as the Deployment controller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSet {
    pub name: String,
    pub uid: String,
    pub created: Option<Timestamp>,
    pub generation: i64,
    pub replicas: i64,
    pub min_ready_seconds: i64,
    pub annotations: BTreeMap<String, String>,
    pub template: Value,
    pub status_replicas: i64,
    pub ready_replicas: i64,
    pub available_replicas: i64,
    pub observed_generation: i64,
    pub deleting: bool,
    /// Its pods not in a terminal phase, being deleted or not: a Recreate rollout waits for
    /// none to be left.
    pub live_pods: usize,
}

impl ReplicaSet {
    pub fn of(v: &Value, live_pods: usize) -> ReplicaSet {
        let n = |p: &str| v.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
        ReplicaSet {
            name: s("/metadata/name"),
            uid: s("/metadata/uid"),
            created: v
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok()),
            generation: n("/metadata/generation"),
            replicas: v.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1),
            min_ready_seconds: n("/spec/minReadySeconds"),
            annotations: string_map(v.pointer("/metadata/annotations")),
            template: v.pointer("/spec/template").cloned().unwrap_or_else(|| json!({})),
            status_replicas: n("/status/replicas"),
            ready_replicas: n("/status/readyReplicas"),
            available_replicas: n("/status/availableReplicas"),
            observed_generation: n("/status/observedGeneration"),
            deleting: v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
            live_pods,
        }
    }

    /// The `deployment.kubernetes.io/revision` annotation (0 when missing, None when not a
    /// number).
    pub fn revision(&self) -> Option<i64> {
        match self.annotations.get(REVISION) {
            None => Some(0),
            Some(r) => r.parse().ok(),
        }
    }
}
