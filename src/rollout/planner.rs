//! The pure rollout planner: spec + observed pods and revisions + `now` → actions, status,
//! events and a requeue time. No I/O; every decision of the Rollout controller is made here.
//!
//! The reconciler reads its caches, builds a [`PlanInput`], calls [`plan`], applies
//! [`Plan::actions`] in order (revisions first, then pods), writes [`Plan::status`] when it
//! differs from the stored one, publishes [`Plan::events`] and requeues after
//! [`Plan::requeue_after`] if set. Planning is level-based: it only uses the observed objects and
//! the facts recorded in status (last healthy revision, batch and pause start times, failed
//! revision, handled action nonces), so a reconcile killed at any point is finished by the next.
//!
//! # Model
//!
//! * Instances are slots `<rollout>-<ordinal>`, `0 <= ordinal < spec.replicas`. A slot's pod is
//!   named `<rollout>-<ordinal>-<revision-hash>` ([`pod_name`]); during a surge a slot briefly
//!   has an old and a new pod.
//! * Revisions are ControllerRevisions `<rollout>-<revision-hash>` ([`revision_name`]); the hash
//!   is [`revision_hash`] of the effective pod template and `spec.version`.
//! * `status.currentRevision` is the last fully healthy revision (the rollback target);
//!   `status.updateRevision` the revision of the current spec.
//! * Batches are cumulative targets over the *unpinned* slots (percentages round up); a last
//!   batch below 100% gets an implicit final batch; batches that resolve to the same count
//!   collapse. Slots are chosen for the update revision in this order: slots that have a pod
//!   of it, then slots without a serving pod of the current revision (empty — missing pods,
//!   scale-up —, not Ready, or on some other revision), then the rest; ties by ordinal. The
//!   slots not chosen keep (or return to) the current revision.
//! * Inside a batch, `maxSurge` (rounded up) bounds the extra pods: the sum over slots of their
//!   pods beyond one, plus every pod of a slot at or above `spec.replicas`; terminating pods
//!   count. `maxUnavailable` (rounded down) bounds the slots without a Ready pod: a Ready pod
//!   whose slot has no other Ready pod is deleted only while fewer than `maxUnavailable` slots
//!   lack a Ready pod; deleting pods that are not Ready never counts. If both resolve to zero,
//!   `maxSurge` is taken as 1. The same budgets apply to pins, rollbacks and repairs.
//! * A batch is healthy when each of its slots has exactly one live pod, of the update revision,
//!   Ready for `minReadySeconds`. A batch fails when one of its update-revision pods is
//!   crash-looping, or when it is not healthy `progressDeadlineSeconds` after it started (after
//!   its pause ended, when it turned unhealthy while pausing).
//! * After a failure with `autoRollback` (and a healthy revision to return to) every unpinned
//!   slot returns to `status.currentRevision` at once (no batches, no pauses): phase
//!   `RollingBack`, then `Healthy` with `Progressing=False/RolledBack` while `Available` stays
//!   True. Without `autoRollback` the rollout stops (`Degraded`, the message names the instances
//!   holding it up); only missing pods are recreated. The failed revision is recorded in
//!   `status.failedUpdate` and not rolled out again until the spec changes (a new revision
//!   supersedes any rollout in progress) or a retry is requested.
//! * Pins put named slots on the newest revision with the pinned version (or on the update
//!   revision when the version is `spec.version`) and keep them there, outside the batches and
//!   rollbacks. An unknown instance or version makes the spec invalid: `InvalidSpec=True`, a
//!   Warning event, and no action at all until it is fixed (never half-applied).
//! * `spec.paused`: no slot that has a pod is touched (missing pods are still recreated and
//!   scale-down still removes slots); phase `Paused`, `Progressing=Unknown/RolloutPaused`; the
//!   progress deadline restarts on resume.
//! * Pods holding listeners (`ObservedPod::holds_listeners`) are drained before deletion:
//!   [`Action::DrainPod`] first (the reconciler sets annotation `baton.dev/drain`), then
//!   [`Action::DeletePod`] once the pod holds no listener or `drain_timeout` has passed.
//! * Old revisions beyond `revisionHistoryLimit` are pruned oldest first, never one that the
//!   update revision, the current revision, a pin or any pod uses.
//!
//! # Runtime-action annotation protocol
//!
//! Runtime actions never touch fields GitOps owns. The CLI sets annotations on the Rollout;
//! the controller never edits them, and records handled nonces in `status.actions`.
//!
//! | annotation | value | effect |
//! | --- | --- | --- |
//! | `baton.dev/promote` | nonce | ends the current inter-batch pause (timed or waiting for promotion) at once. A nonce seen while not pausing is recorded and has no effect. |
//! | `baton.dev/abort` | nonce | while a rollout is in progress (or stopped `Degraded`): the update revision is marked failed with reason `Aborted` and every unpinned slot returns to `status.currentRevision`, as an automatic rollback, even with `autoRollback: false`. Ends with `Progressing=False/RolloutAborted`. |
//! | `baton.dev/retry` | nonce | when the update revision is recorded as failed: forget the failure and roll it out again, from batch 1 after a rollback, or from the failed batch after a stop. |
//! | `baton.dev/restartedAt` | timestamp | stamped into the effective pod template as the same annotation, so a new value is a new revision rolled out with the normal batches (like `kubectl rollout restart`). Not a nonce: the value stays. |
//!
//! A nonce is acted on when it differs from the one recorded in `status.actions` (then recorded,
//! whether or not it had an effect), so an action happens once even if reconciles repeat. While
//! the spec is invalid, nonces are neither acted on nor recorded.
//!
//! # Status conditions
//!
//! * `Available`: True when at least `replicas - maxUnavailable` instances are available
//!   (`MinimumReplicasAvailable` / `MinimumReplicasUnavailable`).
//! * `Progressing`: True with `ReplicaSetUpdated` (rolling out, repairing), `BatchPaused`,
//!   `RollingBack`, `NewRevisionAvailable` (done); False with `ProgressDeadlineExceeded` or
//!   `PodCrashLooping` (stopped), `RolledBack` or `RolloutAborted` (returned to the current
//!   revision); Unknown with `RolloutPaused`.
//! * `InvalidSpec`: True with the problems (`InvalidSpec`), else False (`SpecValid`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::rollout::{
    annotations, labels, parse_duration, scaled_value, selector_string, validate, BatchStatus, FailedUpdate,
    HandledActions, InstanceStatus, ProgressStatus, RolloutPhase, RolloutSpec, RolloutStatus, RolloutStrategy,
};

/// Default bound on how long a pod holding listeners is given to hand them over before it is
/// deleted anyway.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Condition type `Available`.
pub const CONDITION_AVAILABLE: &str = "Available";
/// Condition type `Progressing`.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type `InvalidSpec`.
pub const CONDITION_INVALID_SPEC: &str = "InvalidSpec";

/// Runtime-action annotation values of the Rollout (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionRequests {
    pub promote: Option<String>,
    pub abort: Option<String>,
    pub retry: Option<String>,
    pub restarted_at: Option<String>,
}

impl ActionRequests {
    /// Reads the action annotations from a Rollout's `metadata.annotations`.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| annotations.get(k).filter(|v| !v.is_empty()).cloned();
        Self {
            promote: get(annotations::PROMOTE),
            abort: get(annotations::ABORT),
            retry: get(annotations::RETRY),
            restarted_at: get(annotations::RESTARTED_AT),
        }
    }
}

/// One observed pod of the Rollout (selected by label `baton.dev/rollout`).
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedPod {
    pub name: String,
    /// Label `baton.dev/slot`.
    pub slot: i32,
    /// Label `baton.dev/revision-hash`.
    pub revision_hash: String,
    /// Label `app.kubernetes.io/version`.
    pub version: String,
    /// Condition `Ready` is True.
    pub ready: bool,
    /// `lastTransitionTime` of the Ready condition when Ready.
    pub ready_since: Option<Timestamp>,
    /// A container is in `CrashLoopBackOff` (or restarting repeatedly).
    pub crash_looping: bool,
    pub restarts: i32,
    /// Phase `Failed` or `Succeeded`: the pod will never run again.
    pub failed: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    pub created: Option<Timestamp>,
    /// Value of annotation `baton.dev/drain`, when set.
    pub drain_requested_at: Option<Timestamp>,
    /// The pod holds at least one listener Lease.
    pub holds_listeners: bool,
}

impl ObservedPod {
    /// A pod with every flag off (handy for builders and tests).
    pub fn new(name: impl Into<String>, slot: i32, revision_hash: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            slot,
            revision_hash: revision_hash.into(),
            version: String::new(),
            ready: false,
            ready_since: None,
            crash_looping: false,
            restarts: 0,
            failed: false,
            terminating: false,
            created: None,
            drain_requested_at: None,
            holds_listeners: false,
        }
    }

    fn live(&self) -> bool {
        !self.terminating && !self.failed
    }

    /// Ready and not on its way out.
    fn serving(&self) -> bool {
        self.live() && self.ready && self.drain_requested_at.is_none()
    }
}

/// A ControllerRevision of the Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionInfo {
    pub name: String,
    /// `revision` of the ControllerRevision.
    pub revision: i64,
    /// Label `baton.dev/revision-hash`.
    pub hash: String,
    /// Label `app.kubernetes.io/version`.
    pub version: String,
}

/// Everything [`plan`] looks at.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// Rollout name.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    pub spec: RolloutSpec,
    /// Runtime-action annotations.
    pub requests: ActionRequests,
    /// Status as stored.
    pub status: Option<RolloutStatus>,
    pub pods: Vec<ObservedPod>,
    pub revisions: Vec<RevisionInfo>,
    pub now: Timestamp,
    /// See [`DEFAULT_DRAIN_TIMEOUT`].
    pub drain_timeout: Duration,
}

/// Something the reconciler must do. Apply in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create ControllerRevision `name` (labels [`labels::ROLLOUT`], [`labels::REVISION_HASH`],
    /// [`labels::VERSION`]; data [`revision_data`]).
    CreateRevision {
        name: String,
        hash: String,
        revision: i64,
        version: String,
        template: Box<PodTemplateSpec>,
    },
    /// Prune ControllerRevision `name`.
    DeleteRevision { name: String },
    /// Create pod `name` for `slot` from the template of ControllerRevision `revision`, with
    /// [`pod_labels`].
    CreatePod {
        name: String,
        slot: i32,
        revision: String,
        hash: String,
        version: String,
    },
    /// Delete pod `name`.
    DeletePod { name: String },
    /// Ask pod `name` to hand its listeners over: set annotation `baton.dev/drain` to now.
    DrainPod { name: String },
    /// Pod `name` is wanted again: remove annotation `baton.dev/drain`.
    UndrainPod { name: String },
}

/// Event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// An event to publish on the Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanEvent {
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub status: RolloutStatus,
    pub events: Vec<PlanEvent>,
    /// Reconcile again after this long even if nothing changes (time is the trigger).
    pub requeue_after: Option<Duration>,
}

/// Instance (slot) name: `<rollout>-<ordinal>`.
pub fn slot_name(rollout: &str, ordinal: i32) -> String {
    format!("{rollout}-{ordinal}")
}

/// Pod name of a slot incarnation: `<rollout>-<ordinal>-<hash>`.
pub fn pod_name(rollout: &str, ordinal: i32, hash: &str) -> String {
    format!("{rollout}-{ordinal}-{hash}")
}

/// ControllerRevision name: `<rollout>-<hash>`.
pub fn revision_name(rollout: &str, hash: &str) -> String {
    format!("{rollout}-{hash}")
}

/// Ordinal of an instance name `<rollout>-<ordinal>`.
pub fn parse_slot(rollout: &str, instance: &str) -> Option<i32> {
    let digits = instance.strip_prefix(rollout)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// Labels of a pod of the Rollout (the template's labels come first; these win).
pub fn pod_labels(rollout: &str, slot: i32, hash: &str, version: &str) -> BTreeMap<String, String> {
    [
        (labels::ROLLOUT, rollout.to_string()),
        (labels::SLOT, slot.to_string()),
        (labels::INSTANCE, slot_name(rollout, slot)),
        (labels::REVISION_HASH, hash.to_string()),
        (labels::VERSION, version.to_string()),
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `data` of a ControllerRevision: `{"version": …, "template": …}`.
pub fn revision_data(template: &PodTemplateSpec, version: &str) -> serde_json::Value {
    serde_json::json!({ "version": version, "template": template })
}

/// The pod template actually rolled out: `spec.template` plus, when a restart was requested,
/// annotation `baton.dev/restartedAt`.
pub fn effective_template(spec: &RolloutSpec, restarted_at: Option<&str>) -> PodTemplateSpec {
    let mut template = spec.template.clone();
    if let Some(value) = restarted_at {
        template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default)
            .insert(annotations::RESTARTED_AT.to_string(), value.to_string());
    }
    template
}

/// Stable, short, DNS-safe revision hash: 10 hex digits of FNV-1a 64 over the canonical JSON
/// of `(version, template)` (object keys sorted).
pub fn revision_hash(template: &PodTemplateSpec, version: &str) -> String {
    let value = serde_json::to_value(template).unwrap_or(serde_json::Value::Null);
    let mut text = String::new();
    canonical_json(&value, &mut text);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in version.as_bytes().iter().chain([0u8].iter()).chain(text.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:016x}", hash)[..10].to_string()
}

fn canonical_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    canonical_json(v, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `(maxSurge, maxUnavailable)` resolved against `replicas` (surge rounds up, unavailable
/// down; both zero → surge 1).
pub fn budgets(strategy: &RolloutStrategy, replicas: i32) -> (i32, i32) {
    let surge = scaled_value(&strategy.max_surge, replicas, true).unwrap_or(1);
    let unavailable = scaled_value(&strategy.max_unavailable, replicas, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        (1, 0)
    } else {
        (surge, unavailable)
    }
}

/// Cumulative batch counts over `unpinned` slots: ascending, distinct, non-zero, ending at
/// `unpinned` (empty when `unpinned` is 0).
pub fn batch_counts(strategy: &RolloutStrategy, unpinned: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    if unpinned == 0 {
        return out;
    }
    let total = i32::try_from(unpinned).unwrap_or(i32::MAX);
    for batch in &strategy.batches {
        let count = scaled_value(batch, total, true)
            .ok()
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(unpinned)
            .min(unpinned);
        if count == 0 || out.last().is_some_and(|last| *last >= count) {
            continue;
        }
        out.push(count);
    }
    if out.last() != Some(&unpinned) {
        out.push(unpinned);
    }
    out
}

/// Plans one reconcile. Pure and deterministic.
pub fn plan(input: &PlanInput) -> Plan {
    Planner::new(input).run()
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct SlotPods<'a> {
    live: Vec<&'a ObservedPod>,
    /// Terminating (not failed).
    terminating: Vec<&'a ObservedPod>,
    failed: Vec<&'a ObservedPod>,
}

impl SlotPods<'_> {
    fn live_with(&self, hash: &str) -> Option<&ObservedPod> {
        self.live.iter().copied().find(|p| p.revision_hash == hash)
    }
    /// Pods that still take room (everything but failed pods).
    fn occupying(&self) -> usize {
        self.live.len() + self.terminating.len()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Update revision == current revision: every unpinned slot on it.
    Steady,
    /// Batches towards the update revision (also the first rollout, as one batch).
    Rollout,
    /// Every unpinned slot back to the current revision.
    Rollback,
    /// Failed without rollback: only missing pods are recreated.
    Stopped,
}

#[derive(Clone, Debug, PartialEq)]
enum SlotHealth {
    Ok,
    Waiting(String),
    Crashing(String),
}

struct Planner<'a> {
    input: &'a PlanInput,
    spec: &'a RolloutSpec,
    prior: RolloutStatus,
    now: Timestamp,
    slots: BTreeMap<i32, SlotPods<'a>>,
    actions: Vec<Action>,
    events: Vec<PlanEvent>,
    wakeups: Vec<Timestamp>,
}

fn add_secs(ts: Timestamp, secs: i64) -> Timestamp {
    ts.checked_add(SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MAX)
}

fn add_duration(ts: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| ts.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput) -> Self {
        let mut slots: BTreeMap<i32, SlotPods<'a>> = BTreeMap::new();
        let mut pods: Vec<&ObservedPod> = input.pods.iter().collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        for pod in pods {
            let entry = slots.entry(pod.slot).or_default();
            if pod.failed {
                entry.failed.push(pod);
            } else if pod.terminating {
                entry.terminating.push(pod);
            } else {
                entry.live.push(pod);
            }
        }
        Self {
            input,
            spec: &input.spec,
            prior: input.status.clone().unwrap_or_default(),
            now: input.now,
            slots,
            actions: Vec::new(),
            events: Vec::new(),
            wakeups: Vec::new(),
        }
    }

    fn event(&mut self, type_: EventType, reason: &str, message: impl Into<String>) {
        self.events.push(PlanEvent {
            type_,
            reason: reason.to_string(),
            message: message.into(),
        });
    }

    fn replicas(&self) -> i32 {
        self.spec.replicas.max(0)
    }

    fn min_ready(&self) -> i64 {
        i64::from(self.spec.min_ready_seconds.max(0))
    }

    /// Ready for `minReadySeconds` (and not draining).
    fn available(&self, pod: &ObservedPod) -> bool {
        pod.drain_requested_at.is_none() && self.available_if_undrained(pod)
    }

    /// Available once a drain request is withdrawn.
    fn available_if_undrained(&self, pod: &ObservedPod) -> bool {
        pod.live()
            && pod.ready
            && pod
                .ready_since
                .is_none_or(|since| add_secs(since, self.min_ready()) <= self.now)
    }

    fn slot_serving(&self, slot: i32) -> bool {
        self.slots
            .get(&slot)
            .is_some_and(|s| s.live.iter().any(|p| p.serving()))
    }

    fn run(mut self) -> Plan {
        let input = self.input;
        let spec = self.spec;
        let now = self.now;
        let name = input.name.as_str();

        // Target (update) revision.
        let template = effective_template(spec, input.requests.restarted_at.as_deref());
        let hash = revision_hash(&template, &spec.version);
        let existing_target = input.revisions.iter().find(|r| r.hash == hash).cloned();
        let next_number = input.revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
        let target = existing_target.clone().unwrap_or(RevisionInfo {
            name: revision_name(name, &hash),
            revision: next_number,
            hash: hash.clone(),
            version: spec.version.clone(),
        });
        let mut known: Vec<RevisionInfo> = input.revisions.clone();
        if existing_target.is_none() {
            known.push(target.clone());
        }

        // Validation, including what needs the name and the history.
        let mut errors = validate(spec).err().unwrap_or_default();
        let max_ordinal = (self.replicas() - 1).max(0);
        if slot_name(name, max_ordinal).len() > 63 {
            errors.push(format!(
                "instance names like {} exceed 63 characters; use a shorter Rollout name",
                slot_name(name, max_ordinal)
            ));
        }
        let mut pins: BTreeMap<i32, RevisionInfo> = BTreeMap::new();
        for (i, pin) in spec.pins.iter().enumerate() {
            let revision = if pin.version == spec.version {
                Some(target.clone())
            } else {
                input
                    .revisions
                    .iter()
                    .filter(|r| r.version == pin.version)
                    .max_by_key(|r| r.revision)
                    .cloned()
            };
            if revision.is_none() && !pin.version.trim().is_empty() {
                let mut versions: Vec<&str> = input.revisions.iter().map(|r| r.version.as_str()).collect();
                versions.sort();
                versions.dedup();
                errors.push(format!(
                    "spec.pins[{i}].version {:?} is not in the revision history (known: {}); pin one of those",
                    pin.version,
                    if versions.is_empty() {
                        "none".to_string()
                    } else {
                        versions.join(", ")
                    }
                ));
            }
            for instance in &pin.instances {
                match parse_slot(name, instance) {
                    Some(slot) if slot < self.replicas() => {
                        if let Some(rev) = &revision {
                            pins.insert(slot, rev.clone());
                        }
                    }
                    _ => errors.push(format!(
                        "spec.pins[{i}] names instance {instance:?}, which is not one of {name}-0 .. {name}-{}; fix the name or the replicas",
                        self.replicas() - 1
                    )),
                }
            }
        }
        if !errors.is_empty() {
            return self.invalid(errors);
        }

        // Actions requested by annotation.
        let acks = self.prior.actions.clone().unwrap_or_default();
        let requests = &input.requests;
        let fresh = |req: &Option<String>, ack: &Option<String>| req.is_some() && req != ack;
        let mut promote = fresh(&requests.promote, &acks.promote);
        let abort = fresh(&requests.abort, &acks.abort);
        let retry = fresh(&requests.retry, &acks.retry);
        let new_acks = HandledActions {
            promote: requests.promote.clone().or(acks.promote),
            abort: requests.abort.clone().or(acks.abort),
            retry: requests.retry.clone().or(acks.retry),
        };

        // The last healthy revision.
        let mut stable: Option<RevisionInfo> = match &self.prior.current_revision {
            Some(current) => known.iter().find(|r| &r.name == current).cloned(),
            None => None,
        };
        if stable.is_none() && (self.prior.current_revision.is_some() || self.prior.update_revision.is_none()) {
            stable = self.infer_stable(&known);
        }

        // Pinned slots are outside the batches.
        let unpinned: Vec<i32> = (0..self.replicas()).filter(|s| !pins.contains_key(s)).collect();
        let counts = batch_counts(&spec.strategy, unpinned.len());
        let first_rollout = stable.is_none();
        let counts = if first_rollout && !unpinned.is_empty() {
            vec![unpinned.len()]
        } else {
            counts
        };
        let total_batches = i32::try_from(counts.len()).unwrap_or(i32::MAX);

        // Rollout bookkeeping.
        let new_target = self.prior.update_revision.as_deref() != Some(target.name.as_str());
        let mut failed = if new_target {
            None
        } else {
            self.prior.failed_update.clone().filter(|f| f.revision == target.name)
        };
        let mut batch: BatchStatus = if new_target {
            BatchStatus::default()
        } else {
            self.prior.batch.clone().unwrap_or_default()
        };
        let rolling = stable.as_ref().is_none_or(|s| s.name != target.name);
        if rolling && new_target && !unpinned.is_empty() {
            batch = BatchStatus {
                current: 1,
                total: total_batches,
                started_at: Some(Time(now)),
                pause_started_at: None,
            };
            let from = stable
                .as_ref()
                .map(|s| format!(" from {}", s.version))
                .unwrap_or_default();
            self.event(
                EventType::Normal,
                "BatchStarted",
                format!(
                    "rolling out {}{from} (revision {}): batch 1/{total_batches}, {} of {} instances",
                    target.version,
                    target.revision,
                    counts.first().copied().unwrap_or(0),
                    unpinned.len()
                ),
            );
        }
        batch.total = total_batches;
        batch.current = batch.current.clamp(1, total_batches.max(1));
        if batch.started_at.is_none() {
            batch.started_at = Some(Time(now));
        }
        let was_spec_paused = self
            .prior
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_PROGRESSING && c.reason == "RolloutPaused");
        if was_spec_paused && !spec.paused {
            batch.started_at = Some(Time(now));
            self.event(EventType::Normal, "Resumed", "rollout resumed (spec.paused is false)");
        }
        if spec.paused && !was_spec_paused {
            self.event(
                EventType::Normal,
                "Paused",
                "rollout paused (spec.paused is true); no instance is replaced",
            );
        }

        if retry {
            if let Some(f) = failed.take() {
                batch.current = if f.rolled_back {
                    1
                } else {
                    f.batch.clamp(1, total_batches.max(1))
                };
                batch.started_at = Some(Time(now));
                batch.pause_started_at = None;
                self.event(
                    EventType::Normal,
                    "RetryRequested",
                    format!(
                        "retrying {} (revision {}) from batch {}/{total_batches}",
                        target.version, target.revision, batch.current
                    ),
                );
            }
        }
        if abort && rolling {
            if let Some(s) = &stable {
                if failed.as_ref().is_none_or(|f| !f.rolled_back) {
                    let message = format!(
                        "rollout of {} aborted (baton.dev/abort) at batch {}/{}",
                        target.version, batch.current, total_batches
                    );
                    self.event(
                        EventType::Warning,
                        "RolloutAborted",
                        format!("{message}; returning every instance to {}", s.version),
                    );
                    failed = Some(FailedUpdate {
                        revision: target.name.clone(),
                        version: target.version.clone(),
                        reason: "Aborted".into(),
                        message,
                        rolled_back: true,
                        batch: batch.current,
                        at: Some(Time(now)),
                    });
                }
            }
        }

        let mut mode = if !rolling {
            Mode::Steady
        } else {
            match &failed {
                Some(f) if f.rolled_back && stable.is_some() => Mode::Rollback,
                Some(_) => Mode::Stopped,
                None => Mode::Rollout,
            }
        };
        if unpinned.is_empty() && mode == Mode::Rollout {
            mode = Mode::Steady;
        }

        // Batch progression.
        let pause = spec
            .strategy
            .pause
            .as_ref()
            .map(|p| p.duration.as_deref().and_then(|d| parse_duration(d).ok()));
        let mut waiting_promotion = false;
        let mut pause_until: Option<Timestamp> = None;
        let mut holdups: Vec<String> = Vec::new();
        let mut completed_now = false;
        if mode == Mode::Rollout && !spec.paused {
            loop {
                let k = usize::try_from(batch.current).unwrap_or(1).max(1);
                let count = counts.get(k - 1).copied().unwrap_or(unpinned.len());
                let chosen = self.choose(&unpinned, count, &target, stable.as_ref());
                let (crashing, waiting) = self.batch_health(&chosen, &target);
                holdups = crashing.iter().chain(waiting.iter()).cloned().collect();
                if !crashing.is_empty() {
                    failed = Some(self.fail(
                        "PodCrashLooping",
                        format!(
                            "batch {k}/{total_batches} of {}: {}",
                            target.version,
                            crashing.join(", ")
                        ),
                        &target,
                        stable.as_ref(),
                        batch.current,
                    ));
                    break;
                }
                if waiting.is_empty() {
                    if batch.current >= total_batches {
                        completed_now = true;
                        break;
                    }
                    if batch.pause_started_at.is_none() {
                        batch.pause_started_at = Some(Time(now));
                        let what = match pause {
                            None => "starting the next batch".to_string(),
                            Some(Some(d)) => format!("pausing for {}", human(d)),
                            Some(None) => "waiting for promotion (baton promote)".to_string(),
                        };
                        self.event(
                            EventType::Normal,
                            "BatchCompleted",
                            format!("batch {k}/{total_batches} of {} healthy; {what}", target.version),
                        );
                    }
                    let paused_at = batch.pause_started_at.as_ref().map_or(now, |t| t.0);
                    let advance = match pause {
                        None => true,
                        Some(Some(d)) => {
                            let until = add_duration(paused_at, d);
                            if until <= now {
                                true
                            } else {
                                pause_until = Some(until);
                                false
                            }
                        }
                        Some(None) => {
                            waiting_promotion = true;
                            false
                        }
                    };
                    let advance = advance || promote;
                    if promote && pause.is_some() {
                        self.event(
                            EventType::Normal,
                            "Promoted",
                            format!("batch {k}/{total_batches} promoted (baton.dev/promote)"),
                        );
                    }
                    if !advance {
                        if let Some(until) = pause_until {
                            self.wakeups.push(until);
                        }
                        break;
                    }
                    promote = false;
                    waiting_promotion = false;
                    pause_until = None;
                    batch.current += 1;
                    batch.started_at = Some(Time(now));
                    batch.pause_started_at = None;
                    let next = counts
                        .get(usize::try_from(batch.current).unwrap_or(1) - 1)
                        .copied()
                        .unwrap_or(unpinned.len());
                    self.event(
                        EventType::Normal,
                        "BatchStarted",
                        format!(
                            "batch {}/{total_batches} of {}: {next} of {} instances",
                            batch.current,
                            target.version,
                            unpinned.len()
                        ),
                    );
                    continue;
                }
                // Not healthy: the progress deadline.
                let base = match (&batch.pause_started_at, pause) {
                    (Some(t), Some(Some(d))) => Some(add_duration(t.0, d)),
                    (Some(_), Some(None)) => None,
                    (Some(t), None) => Some(t.0),
                    (None, _) => batch.started_at.as_ref().map(|t| t.0),
                };
                if let Some(base) = base {
                    let deadline = add_secs(base, i64::from(spec.progress_deadline_seconds));
                    if deadline <= now {
                        failed = Some(self.fail(
                            "ProgressDeadlineExceeded",
                            format!(
                                "batch {k}/{total_batches} of {} not healthy within {}s: {}",
                                target.version,
                                spec.progress_deadline_seconds,
                                waiting.join(", ")
                            ),
                            &target,
                            stable.as_ref(),
                            batch.current,
                        ));
                    } else {
                        self.wakeups.push(deadline);
                    }
                }
                break;
            }
            if completed_now {
                self.event(
                    EventType::Normal,
                    "RolloutCompleted",
                    format!(
                        "{} (revision {}) is healthy on all {} instances",
                        target.version,
                        target.revision,
                        unpinned.len()
                    ),
                );
                stable = Some(target.clone());
                mode = Mode::Steady;
                batch.pause_started_at = None;
            } else if let Some(f) = &failed {
                mode = if f.rolled_back && stable.is_some() {
                    Mode::Rollback
                } else {
                    Mode::Stopped
                };
            }
        }
        if mode != Mode::Rollout {
            waiting_promotion = false;
            pause_until = None;
        }

        // Desired revision of every slot (None = leave the slot as it is).
        let chosen: BTreeSet<i32> = if mode == Mode::Rollout {
            let k = usize::try_from(batch.current).unwrap_or(1).max(1);
            let count = counts.get(k - 1).copied().unwrap_or(unpinned.len());
            self.choose(&unpinned, count, &target, stable.as_ref())
        } else {
            BTreeSet::new()
        };
        let fallback = stable.clone().unwrap_or_else(|| target.clone());
        let mut desired: BTreeMap<i32, Option<RevisionInfo>> = BTreeMap::new();
        for slot in 0..self.replicas() {
            let has_pods = self.slots.get(&slot).is_some_and(|s| !s.live.is_empty());
            let base = if let Some(pin) = pins.get(&slot) {
                pin.clone()
            } else {
                match mode {
                    Mode::Steady => target.clone(),
                    Mode::Rollout if chosen.contains(&slot) => target.clone(),
                    Mode::Rollout | Mode::Rollback | Mode::Stopped => fallback.clone(),
                }
            };
            let frozen = spec.paused || mode == Mode::Stopped;
            let want = match (frozen, has_pods, pins.contains_key(&slot)) {
                (true, true, _) => None,
                // Frozen: a missing pod comes back on the current revision, not the new one.
                (true, false, false) => Some(fallback.clone()),
                _ => Some(base),
            };
            desired.insert(slot, want);
        }

        // Pod actions.
        if existing_target.is_none() {
            self.actions.push(Action::CreateRevision {
                name: target.name.clone(),
                hash: target.hash.clone(),
                revision: target.revision,
                version: target.version.clone(),
                template: Box::new(template),
            });
        }
        self.pod_actions(&desired);

        // Prune old revisions.
        let mut in_use: BTreeSet<&str> = BTreeSet::new();
        in_use.insert(target.hash.as_str());
        if let Some(s) = &stable {
            in_use.insert(s.hash.as_str());
        }
        for rev in pins.values() {
            in_use.insert(rev.hash.as_str());
        }
        for pod in input.pods.iter().filter(|p| !p.failed) {
            in_use.insert(pod.revision_hash.as_str());
        }
        let mut prunable: Vec<&RevisionInfo> = input
            .revisions
            .iter()
            .filter(|r| !in_use.contains(r.hash.as_str()))
            .collect();
        prunable.sort_by(|a, b| b.revision.cmp(&a.revision).then(a.name.cmp(&b.name)));
        let keep = usize::try_from(spec.revision_history_limit.max(0)).unwrap_or(0);
        for rev in prunable.into_iter().skip(keep) {
            self.actions.push(Action::DeleteRevision { name: rev.name.clone() });
        }

        // Status.
        let all_settled = self.all_settled(&desired);
        let rollback_done = mode == Mode::Rollback
            && unpinned.iter().all(|s| {
                desired
                    .get(s)
                    .and_then(|d| d.as_ref())
                    .is_none_or(|d| self.slot_health(*s, d) == SlotHealth::Ok)
            });
        let any_broken = self.any_broken();

        let (phase, progressing, message) = if spec.paused {
            (
                RolloutPhase::Paused,
                (
                    "Unknown",
                    "RolloutPaused",
                    "rollout paused (spec.paused); no instance is replaced".to_string(),
                ),
                format!(
                    "paused (spec.paused) at batch {}/{} of {}",
                    batch.current, total_batches, target.version
                ),
            )
        } else {
            match mode {
                Mode::Steady => {
                    let msg = format!(
                        "{} of {} instances available on {}{}",
                        self.count_available(),
                        self.replicas(),
                        target.version,
                        if pins.is_empty() {
                            String::new()
                        } else {
                            format!("; {} pinned", pins.len())
                        }
                    );
                    if all_settled {
                        (
                            RolloutPhase::Healthy,
                            ("True", "NewRevisionAvailable", msg.clone()),
                            msg,
                        )
                    } else if any_broken {
                        (
                            RolloutPhase::Degraded,
                            ("True", "ReplicaSetUpdated", msg.clone()),
                            format!("{msg}; failing: {}", self.broken_list().join(", ")),
                        )
                    } else {
                        (
                            RolloutPhase::Progressing,
                            ("True", "ReplicaSetUpdated", msg.clone()),
                            msg,
                        )
                    }
                }
                Mode::Rollout => {
                    let k = batch.current;
                    if waiting_promotion {
                        let msg = format!(
                            "batch {k}/{total_batches} of {} healthy; waiting for promotion (baton promote)",
                            target.version
                        );
                        (RolloutPhase::Paused, ("True", "BatchPaused", msg.clone()), msg)
                    } else if let Some(until) = pause_until {
                        let left = until.duration_since(now).as_secs().max(0);
                        let msg = format!(
                            "batch {k}/{total_batches} of {} healthy; paused for {left}s",
                            target.version
                        );
                        (RolloutPhase::Progressing, ("True", "BatchPaused", msg.clone()), msg)
                    } else {
                        let mut msg = format!(
                            "batch {k}/{total_batches}: rolling out {} to {} of {} instances",
                            target.version,
                            counts
                                .get(usize::try_from(k).unwrap_or(1).max(1) - 1)
                                .copied()
                                .unwrap_or(0),
                            unpinned.len()
                        );
                        if !holdups.is_empty() {
                            msg = format!("{msg}; waiting for {}", holdups.join(", "));
                        }
                        (
                            RolloutPhase::Progressing,
                            ("True", "ReplicaSetUpdated", msg.clone()),
                            msg,
                        )
                    }
                }
                Mode::Rollback => {
                    let f = failed.clone().unwrap_or_default();
                    let back = stable.as_ref().map(|s| s.version.clone()).unwrap_or_default();
                    let reason = if f.reason == "Aborted" {
                        "RolloutAborted"
                    } else {
                        "RolledBack"
                    };
                    if rollback_done {
                        let msg = format!(
                            "rolled back to {back}: {} failed ({}); fix it and change the spec, or run `baton rollout retry {}`",
                            f.version, f.message, self.input.name
                        );
                        if !self
                            .prior
                            .conditions
                            .iter()
                            .any(|c| c.type_ == CONDITION_PROGRESSING && c.reason == reason)
                        {
                            self.event(EventType::Normal, "RolledBack", msg.clone());
                        }
                        let phase = if all_settled {
                            RolloutPhase::Healthy
                        } else if any_broken {
                            RolloutPhase::Degraded
                        } else {
                            RolloutPhase::Progressing
                        };
                        (phase, ("False", reason, msg.clone()), msg)
                    } else {
                        let msg = format!("rolling back to {back}: {} failed ({})", f.version, f.message);
                        (RolloutPhase::RollingBack, ("True", "RollingBack", msg.clone()), msg)
                    }
                }
                Mode::Stopped => {
                    let f = failed.clone().unwrap_or_default();
                    let reason = if f.reason == "PodCrashLooping" {
                        "PodCrashLooping"
                    } else {
                        "ProgressDeadlineExceeded"
                    };
                    let why = if stable.is_none() {
                        "no healthy revision to roll back to"
                    } else {
                        "autoRollback is off"
                    };
                    let msg = format!(
                        "rollout of {} stopped at batch {}/{total_batches}: {}; {why}: fix it and change the spec, run `baton rollout retry {name}`, or `baton rollout abort {name}`",
                        f.version, f.batch, f.message, name = self.input.name
                    );
                    (RolloutPhase::Degraded, ("False", reason, msg.clone()), msg)
                }
            }
        };

        let (_, max_unavailable) = budgets(&spec.strategy, self.replicas());
        let available = self.count_available();
        let needed = (self.replicas() - max_unavailable).max(0);
        let available_cond = if available >= needed {
            (
                "True",
                "MinimumReplicasAvailable",
                format!("{available} of {} instances available", self.replicas()),
            )
        } else {
            (
                "False",
                "MinimumReplicasUnavailable",
                format!(
                    "{available} of {} instances available, {needed} needed",
                    self.replicas()
                ),
            )
        };

        let mut status = self.observe(&target, &pins, &known);
        status.observed_generation = Some(input.generation);
        status.phase = Some(phase);
        status.current_revision = stable.as_ref().map(|s| s.name.clone());
        status.update_revision = Some(target.name.clone());
        status.version = Some(match (mode, &stable) {
            (Mode::Rollback, Some(s)) => s.version.clone(),
            _ => target.version.clone(),
        });
        if total_batches > 0 {
            let mut b = batch.clone();
            if mode != Mode::Rollout {
                b.pause_started_at = None;
            }
            if mode == Mode::Steady {
                b.current = total_batches;
                b.started_at = None;
            }
            status.batch_label = Some(format!("{}/{}", b.current, b.total));
            status.batch = Some(b);
        }
        status.failed_update = failed.clone();
        status.actions = Some(new_acks);
        status.message = Some(message);
        status.conditions = self.conditions(vec![
            (CONDITION_AVAILABLE, available_cond),
            (CONDITION_PROGRESSING, (progressing.0, progressing.1, progressing.2)),
            (
                CONDITION_INVALID_SPEC,
                ("False", "SpecValid", "spec is valid".to_string()),
            ),
        ]);

        // Phase change events.
        if self.prior.phase != Some(phase) {
            let from = self
                .prior
                .phase
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".to_string());
            let type_ = if phase == RolloutPhase::Degraded {
                EventType::Warning
            } else {
                EventType::Normal
            };
            let message = format!("phase {from} -> {phase}");
            self.event(type_, "PhaseChanged", message);
        }

        self.finish(status)
    }

    /// The plan for an invalid spec: report, move nothing.
    fn invalid(mut self, errors: Vec<String>) -> Plan {
        let message = errors.join("; ");
        let already = self
            .prior
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_INVALID_SPEC && c.status == "True" && c.message == message);
        if !already {
            self.event(EventType::Warning, "InvalidSpec", message.clone());
        }
        let mut status = self.prior.clone();
        status.observed_generation = Some(self.input.generation);
        status.phase = Some(RolloutPhase::Degraded);
        status.message = Some(format!("invalid spec, nothing is changed: {message}"));
        status.selector = Some(selector_string(&self.spec.selector));
        let mut changes: Vec<(&str, (&str, &str, String))> = self
            .prior
            .conditions
            .iter()
            .filter(|c| c.type_ != CONDITION_INVALID_SPEC)
            .map(|c| {
                (
                    c.type_.as_str(),
                    (c.status.as_str(), c.reason.as_str(), c.message.clone()),
                )
            })
            .collect();
        changes.push((CONDITION_INVALID_SPEC, ("True", "InvalidSpec", message)));
        status.conditions = self.conditions(changes);
        if self.prior.phase != Some(RolloutPhase::Degraded) {
            let from = self
                .prior
                .phase
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".to_string());
            self.event(EventType::Warning, "PhaseChanged", format!("phase {from} -> Degraded"));
        }
        self.actions.clear();
        self.wakeups.clear();
        self.finish(status)
    }

    fn finish(self, status: RolloutStatus) -> Plan {
        let now = self.now;
        let requeue_after = self
            .wakeups
            .iter()
            .filter(|t| **t > now)
            .min()
            .and_then(|t| Duration::try_from(t.duration_since(now)).ok());
        Plan {
            actions: self.actions,
            status,
            events: self.events,
            requeue_after,
        }
    }

    fn conditions(&self, wanted: Vec<(&str, (&str, &str, String))>) -> Vec<Condition> {
        wanted
            .into_iter()
            .map(|(type_, (status, reason, message))| {
                let prior = self.prior.conditions.iter().find(|c| c.type_ == type_);
                let last_transition_time = match prior {
                    Some(p) if p.status == status => p.last_transition_time.clone(),
                    _ => Time(self.now),
                };
                Condition {
                    type_: type_.to_string(),
                    status: status.to_string(),
                    reason: reason.to_string(),
                    message,
                    last_transition_time,
                    observed_generation: Some(self.input.generation),
                }
            })
            .collect()
    }

    fn fail(
        &mut self,
        reason: &str,
        message: String,
        target: &RevisionInfo,
        stable: Option<&RevisionInfo>,
        batch: i32,
    ) -> FailedUpdate {
        let rolled_back = self.spec.auto_rollback && stable.is_some();
        self.event(EventType::Warning, "BatchFailed", message.clone());
        if let (true, Some(s)) = (rolled_back, stable) {
            self.event(
                EventType::Warning,
                "RollingBack",
                format!(
                    "rolling every instance back to {} (revision {}): {message}",
                    s.version, s.revision
                ),
            );
        }
        FailedUpdate {
            revision: target.name.clone(),
            version: target.version.clone(),
            reason: reason.to_string(),
            message,
            rolled_back,
            batch,
            at: Some(Time(self.now)),
        }
    }

    /// Without a recorded current revision: the revision most Ready pods run.
    fn infer_stable(&self, known: &[RevisionInfo]) -> Option<RevisionInfo> {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for pod in self.input.pods.iter().filter(|p| p.serving()) {
            *votes.entry(pod.revision_hash.as_str()).or_default() += 1;
        }
        known
            .iter()
            .filter_map(|r| votes.get(r.hash.as_str()).map(|v| (*v, r.revision, r)))
            .max_by_key(|(v, n, _)| (*v, *n))
            .map(|(_, _, r)| r.clone())
    }

    /// The `count` unpinned slots that make up the current batch.
    fn choose(
        &self,
        unpinned: &[i32],
        count: usize,
        target: &RevisionInfo,
        stable: Option<&RevisionInfo>,
    ) -> BTreeSet<i32> {
        let mut ranked: Vec<(u8, i32)> = unpinned
            .iter()
            .map(|slot| {
                let pods = self.slots.get(slot);
                let live = pods.map(|p| p.live.as_slice()).unwrap_or(&[]);
                let class = if live.iter().any(|p| p.revision_hash == target.hash) {
                    0
                } else if live
                    .iter()
                    .any(|p| p.serving() && stable.is_some_and(|s| p.revision_hash == s.hash))
                {
                    // Serving on the current revision: replacing it costs something.
                    2
                } else {
                    // Empty, not serving, or on some other revision: cheapest to move first.
                    1
                };
                (class, *slot)
            })
            .collect();
        ranked.sort();
        ranked.into_iter().take(count).map(|(_, s)| s).collect()
    }

    fn slot_health(&mut self, slot: i32, want: &RevisionInfo) -> SlotHealth {
        let instance = slot_name(&self.input.name, slot);
        let Some(pods) = self.slots.get(&slot) else {
            return SlotHealth::Waiting(format!("{instance} (no pod)"));
        };
        let Some(pod) = pods.live_with(&want.hash) else {
            return SlotHealth::Waiting(format!("{instance} (no {} pod yet)", want.version));
        };
        if pod.crash_looping {
            return SlotHealth::Crashing(format!("{instance} crash-looping ({} restarts)", pod.restarts));
        }
        if !pod.ready {
            return SlotHealth::Waiting(format!("{instance} (not ready)"));
        }
        if pod.drain_requested_at.is_some() {
            return SlotHealth::Waiting(format!("{instance} (draining)"));
        }
        if !self.available(pod) {
            if let Some(since) = pod.ready_since {
                self.wakeups.push(add_secs(since, self.min_ready()));
            }
            return SlotHealth::Waiting(format!("{instance} (ready, minReadySeconds not reached)"));
        }
        if pods.live.len() > 1 {
            return SlotHealth::Waiting(format!("{instance} (old pod still running)"));
        }
        SlotHealth::Ok
    }

    /// (crashing, waiting) instance descriptions of a batch.
    fn batch_health(&mut self, chosen: &BTreeSet<i32>, target: &RevisionInfo) -> (Vec<String>, Vec<String>) {
        let mut crashing = Vec::new();
        let mut waiting = Vec::new();
        for slot in chosen {
            match self.slot_health(*slot, target) {
                SlotHealth::Ok => {}
                SlotHealth::Waiting(w) => waiting.push(w),
                SlotHealth::Crashing(c) => crashing.push(c),
            }
        }
        (crashing, waiting)
    }

    fn all_settled(&mut self, desired: &BTreeMap<i32, Option<RevisionInfo>>) -> bool {
        let extra_slots = self
            .slots
            .iter()
            .any(|(slot, pods)| (*slot < 0 || *slot >= self.replicas()) && pods.occupying() > 0);
        if extra_slots {
            return false;
        }
        let mut ok = true;
        for (slot, want) in desired {
            let healthy = match want {
                Some(want) => self.slot_health(*slot, want) == SlotHealth::Ok,
                None => self
                    .slots
                    .get(slot)
                    .is_some_and(|p| p.live.len() == 1 && self.available(p.live[0])),
            };
            ok &= healthy;
        }
        ok
    }

    fn any_broken(&self) -> bool {
        !self.broken_list().is_empty()
    }

    fn broken_list(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|(slot, _)| **slot >= 0 && **slot < self.replicas())
            .filter(|(_, pods)| pods.live.iter().any(|p| p.crash_looping))
            .map(|(slot, _)| format!("{} crash-looping", slot_name(&self.input.name, *slot)))
            .collect()
    }

    fn count_available(&self) -> i32 {
        let n = (0..self.replicas())
            .filter(|slot| {
                self.slots
                    .get(slot)
                    .is_some_and(|p| p.live.iter().any(|pod| self.available(pod)))
            })
            .count();
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    fn delete_or_drain(&mut self, pod: &ObservedPod) {
        if pod.holds_listeners {
            match pod.drain_requested_at {
                None => {
                    self.actions.push(Action::DrainPod { name: pod.name.clone() });
                    self.wakeups.push(add_duration(self.now, self.input.drain_timeout));
                    return;
                }
                Some(at) => {
                    let until = add_duration(at, self.input.drain_timeout);
                    if until > self.now {
                        self.wakeups.push(until);
                        return;
                    }
                }
            }
        }
        self.actions.push(Action::DeletePod { name: pod.name.clone() });
    }

    fn pod_actions(&mut self, desired: &BTreeMap<i32, Option<RevisionInfo>>) {
        let replicas = self.replicas();
        let (max_surge, max_unavailable) = budgets(&self.spec.strategy, replicas);
        let mut extra: i64 = 0;
        for (slot, pods) in &self.slots {
            let n = i64::try_from(pods.occupying()).unwrap_or(i64::MAX);
            extra += if *slot < 0 || *slot >= replicas {
                n
            } else {
                (n - 1).max(0)
            };
        }
        let mut surge_left = i64::from(max_surge) - extra;
        // Slots whose wanted pod is drained but Ready serve again once it is undrained below.
        let undrained: BTreeSet<i32> = desired
            .iter()
            .filter_map(|(slot, want)| {
                let want = want.as_ref()?;
                let pod = self.slots.get(slot)?.live_with(&want.hash)?;
                (pod.ready && pod.drain_requested_at.is_some()).then_some(*slot)
            })
            .collect();
        let unavailable_now = (0..replicas)
            .filter(|s| !self.slot_serving(*s) && !undrained.contains(s))
            .count();
        let mut unavailable_left = i64::from(max_unavailable) - i64::try_from(unavailable_now).unwrap_or(i64::MAX);

        // Dead pods go first; they hold nothing.
        let failed: Vec<&ObservedPod> = self
            .slots
            .values()
            .flat_map(|p| p.failed.iter().copied())
            .filter(|p| !p.terminating)
            .collect();
        for pod in failed {
            self.actions.push(Action::DeletePod { name: pod.name.clone() });
        }

        // Scale down: slots outside 0..replicas, highest ordinal first.
        let removed: Vec<&ObservedPod> = self
            .slots
            .iter()
            .rev()
            .filter(|(slot, _)| **slot < 0 || **slot >= replicas)
            .flat_map(|(_, p)| p.live.iter().copied())
            .collect();
        for pod in removed {
            self.delete_or_drain(pod);
        }

        for (slot, want) in desired {
            let Some(want) = want else { continue };
            let slot = *slot;
            let (live, occupying, name_taken) = match self.slots.get(&slot) {
                Some(p) => (
                    p.live.clone(),
                    p.occupying(),
                    p.terminating
                        .iter()
                        .chain(p.failed.iter())
                        .any(|t| t.name == pod_name(&self.input.name, slot, &want.hash)),
                ),
                None => (Vec::new(), 0, false),
            };
            let current = live.iter().copied().find(|p| p.revision_hash == want.hash);
            let others: Vec<&ObservedPod> = live.iter().copied().filter(|p| p.revision_hash != want.hash).collect();
            match current {
                Some(pod) => {
                    if pod.drain_requested_at.is_some() {
                        self.actions.push(Action::UndrainPod { name: pod.name.clone() });
                    }
                    let pod_available = self.available_if_undrained(pod);
                    if !pod_available && pod.ready {
                        if let Some(since) = pod.ready_since {
                            self.wakeups.push(add_secs(since, self.min_ready()));
                        }
                    }
                    for other in others {
                        if pod_available || !other.serving() {
                            self.delete_or_drain(other);
                        }
                    }
                }
                None => {
                    // Pods that serve nothing go at once.
                    let mut serving_others: Vec<&ObservedPod> = Vec::new();
                    for other in &others {
                        if other.serving() {
                            serving_others.push(other);
                        } else {
                            self.delete_or_drain(other);
                        }
                    }
                    if name_taken {
                        continue;
                    }
                    let cost = i64::from(occupying > 0);
                    if cost == 0 || cost <= surge_left {
                        surge_left -= cost;
                        self.actions.push(Action::CreatePod {
                            name: pod_name(&self.input.name, slot, &want.hash),
                            slot,
                            revision: want.name.clone(),
                            hash: want.hash.clone(),
                            version: want.version.clone(),
                        });
                    } else {
                        // No room to surge: replace in place. All but the last serving pod go
                        // for free; the last only if the slot may go unavailable.
                        let n = serving_others.len();
                        for (i, victim) in serving_others.into_iter().enumerate() {
                            if i + 1 < n {
                                self.delete_or_drain(victim);
                            } else if unavailable_left >= 1 {
                                unavailable_left -= 1;
                                self.delete_or_drain(victim);
                            }
                        }
                    }
                }
            }
        }
    }

    fn observe(
        &self,
        target: &RevisionInfo,
        pins: &BTreeMap<i32, RevisionInfo>,
        known: &[RevisionInfo],
    ) -> RolloutStatus {
        let number = |hash: &str| known.iter().find(|r| r.hash == hash).map_or(0, |r| r.revision);
        let mut status = RolloutStatus {
            selector: Some(selector_string(&self.spec.selector)),
            ..Default::default()
        };
        let mut max_slot = self.replicas() - 1;
        if let Some((slot, _)) = self.slots.iter().rev().find(|(_, p)| !p.live.is_empty()) {
            max_slot = max_slot.max(*slot);
        }
        let mut completed = 0;
        let mut failed = 0;
        for slot in 0..=max_slot {
            let pods = self.slots.get(&slot);
            let live = pods.map(|p| p.live.as_slice()).unwrap_or(&[]);
            if slot >= self.replicas() && live.is_empty() {
                continue;
            }
            let want_hash = pins.get(&slot).map_or(target.hash.as_str(), |p| p.hash.as_str());
            let primary = live
                .iter()
                .copied()
                .max_by_key(|p| (p.ready, p.revision_hash == want_hash, std::cmp::Reverse(p.name.clone())));
            if !live.is_empty() {
                status.replicas += 1;
            }
            if live.iter().any(|p| p.ready) {
                status.ready_replicas += 1;
            }
            if live.iter().any(|p| self.available(p)) {
                status.available_replicas += 1;
            }
            if live.iter().any(|p| p.revision_hash == target.hash) {
                status.updated_replicas += 1;
            }
            if slot < self.replicas() && !pins.contains_key(&slot) {
                let on_target = live.iter().find(|p| p.revision_hash == target.hash);
                match on_target {
                    Some(p) if p.crash_looping => failed += 1,
                    Some(p) if self.available(p) => completed += 1,
                    _ => {}
                }
            }
            if let Some(p) = primary {
                *status.versions.entry(p.version.clone()).or_default() += 1;
            }
            status.instances.push(InstanceStatus {
                name: slot_name(&self.input.name, slot),
                pod: primary.map(|p| p.name.clone()),
                version: primary.map(|p| p.version.clone()),
                revision: primary.map_or(0, |p| number(&p.revision_hash)),
                ready: primary.is_some_and(|p| p.ready),
                since: primary.and_then(|p| {
                    if p.ready {
                        p.ready_since.or(p.created)
                    } else {
                        p.created
                    }
                    .map(Time)
                }),
                pinned: pins.contains_key(&slot),
            });
        }
        let total = i32::try_from((0..self.replicas()).filter(|s| !pins.contains_key(s)).count()).unwrap_or(i32::MAX);
        status.progress = Some(ProgressStatus {
            total,
            completed,
            failed,
            pending: (total - completed - failed).max(0),
        });
        status
    }
}

#[cfg(test)]
mod tests;
