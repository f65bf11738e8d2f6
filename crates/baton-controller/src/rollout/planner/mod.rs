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
//!   its pause ended, when it turned unhealthy while pausing). Durations are measured below the
//!   second: batch and pause starts are stored to the microsecond, and a pod's Ready time,
//!   which the API server truncates to the second, counts from the end of its second.
//! * Targeted batches (`strategy.targets`, `targets`): a batch includes the slots it names (its
//!   size raised to cover them); slots named by a later batch are chosen last.
//! * Checks (`checks`): once a batch's pods are available, its check runs are wanted
//!   ([`Plan::checks`], keyed by revision, batch, check and pod) until each has passed, as the
//!   shell reports ([`PlanInput::checks`]); a failed run fails the batch (`CheckFailed`), an
//!   unfinished one holds it within the progress deadline. Not re-run once the batch is declared
//!   healthy (its pause started).
//! * Bake (`bakeSeconds`, `checks`): after the last batch, `status.batch.bakeStartedAt` is set and
//!   the revision is not current until `bakeSeconds` later; an instance not available meanwhile
//!   (`BakeFailed`), a crash loop, or a failed bake check run fails it like a batch. The
//!   checks run round after round through the window (keys `bake1`, `bake2`, …; a round starts
//!   once the previous one passed, `intervalSeconds` later), `job` checks once per window.
//!   `promote --full` ends it.
//! * After a failure with `autoRollback` (and a healthy revision to return to) every unpinned
//!   slot returns to `status.currentRevision` at once (no batches, no pauses): phase
//!   `RollingBack`, then `RolledBack` with `Progressing=False/RolledBack` and `Stalled=True`
//!   while `Available` stays True. Without `autoRollback` the rollout stops (`Degraded`, the
//!   message names the instances holding it up); only missing pods are recreated. The failed
//!   revision and its failed instances are recorded in `status.failedUpdate` and not rolled
//!   out again until the spec changes (a new revision supersedes any rollout in progress) or a
//!   retry is requested.
//! * What status claims is what the pods show: phase `Healthy` and `Ready=True` only when every
//!   unpinned slot serves the update revision of this generation; `status.version` (the VERSION
//!   column) is the version of `status.currentRevision`, the last fully healthy one; progress
//!   counts add up to the unpinned slots (`completed + failed + pending + rolledBack`).
//! * Pins put named slots on the newest revision with the pinned version (or on the update
//!   revision when the version is `spec.version`) and keep them there, outside the batches and
//!   rollbacks. An unknown instance or version makes the spec invalid: `InvalidSpec=True`, a
//!   Warning event, and no action at all until it is fixed (never half-applied).
//! * `spec.paused`: no slot that has a pod is touched (missing pods are still recreated and
//!   scale-down still removes slots); phase `Paused`, `Progressing=Unknown/RolloutPaused`; the
//!   progress deadline restarts on resume.
//! * Pods holding listeners (`ObservedPod::holds_listeners`) are drained before deletion:
//!   [`Action::DrainPod`] first (the reconciler sets annotation `baton.dev/drain`), then
//!   [`Action::DeletePod`] once the pod holds no listener or `drain_timeout` has passed since the
//!   time the drain was asked. A draining pod (whoever asked) is not serving; the planner
//!   withdraws only its own drains ([`Action::UndrainPod`]), never one set by hand (see
//!   [`crate::api::pod::DRAIN_ANNOTATION`]).
//! * Old revisions beyond `revisionHistoryLimit` are pruned oldest first, never one that the
//!   update revision, the current revision, a pin or any pod uses.
//!
//! The runtime-action annotation protocol is described in `planner/requests.rs`, the status
//! conditions in `planner/conditions.rs` and `api::rollout::reasons`.
//!
//! # Layout
//!
//! [`plan`] runs the steps of `Planner::run` in order; each step lives with its concept:
//! `names` (object names and labels), `observed` (the pods as seen, per slot), `revisions`
//! (hashing, the update and last healthy revisions, pruning), `strategy` (budgets and batch
//! sizes), `validation` (an invalid spec), `requests` (runtime actions), `batches` (batch
//! bookkeeping), `progress` (batch progression, pauses, promotion, the deadline), `pods`
//! (desired revision per slot and pod actions), `status` (phase, conditions, events of
//! phase and pin changes), `counts` (observed counts, instances, progress) and `workload`
//! (`spec.workloadRef`: the Deployment's template, and its scale-down).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::rollout::origin::{RevisionFields, SpecOrigin, SpecOwners};
use crate::api::rollout::{annotations, reasons, MAX_REPLICAS};
use crate::api::rollout::{ConditionType, EventReason, Reason, RolloutSpec, RolloutStatus};

mod batches;
mod checks;
mod conditions;
mod counts;
mod hooks;
mod names;
mod observed;
mod pods;
mod progress;
mod records;
mod requests;
mod revisions;
mod strategy;
mod targets;
mod validation;
mod workload;

pub use checks::{check_outcome, CheckOutcome, CheckProgress, CheckRun};
pub use hooks::{check_job_name, hook_job_name, job_labels, JobState, ObservedJob};
pub use names::{parse_slot, pod_labels, pod_labels_from, pod_name, revision_labels, revision_name, slot_name};
pub use observed::ObservedPod;
pub use requests::ActionRequests;
pub use revisions::{effective_template, revision_data, revision_hash, RevisionInfo};
pub use strategy::{batch_counts, budgets};
pub use targets::target_slots;
pub use validation::{long_instance_names, pin_slots, plan_undecodable, undecodable};
pub use workload::{scale_down_target, ObservedWorkload, WorkloadRead};

use observed::SlotPods;

/// Default bound on how long a pod holding listeners is given to hand them over before it is
/// deleted anyway.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Everything [`plan`] looks at.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// Rollout name.
    pub name: String,
    /// Rollout namespace (for check URLs).
    pub namespace: String,
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
    /// The API server's answer when it refused (422) an object made from this generation's
    /// spec (a pod or revision): the spec is invalid, with that message.
    pub rejected: Option<String>,
    /// Who owns what of the fields a revision is made of, and the change cause
    /// ([`crate::api::rollout::origin`]): who changed the spec and why is decided from them and
    /// the revision the spec named before, and recorded on a new revision and on the deploy
    /// record it starts.
    pub origin: SpecOwners,
    /// How the check runs of the last plans are doing, by [`CheckRun::key`] (the shell's
    /// memory: empty after a restart).
    pub checks: BTreeMap<String, CheckProgress>,
    /// The notification sinks as the shell resolved them: `None` without
    /// `spec.notifications`, else what is wrong with them (empty: all usable). Sets condition
    /// `NotificationsReady`.
    pub sink_problems: Option<Vec<String>>,
    /// The Jobs of the Rollout (hooks and `job` checks), terminating ones left out.
    pub jobs: Vec<ObservedJob>,
    /// With `spec.workloadRef` (of a supported kind): its Deployment, as read (see
    /// `planner/workload.rs`).
    pub workload: Option<WorkloadRead>,
}

/// What revision `r` is made of.
fn revision_fields(r: &RevisionInfo) -> RevisionFields<'_> {
    RevisionFields {
        version: &r.version,
        template: &r.template,
    }
}

/// Something the reconciler must do. Apply in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create ControllerRevision `name` with `labels` ([`revision_labels`]) and data
    /// [`revision_data`] of `template` and `version`.
    CreateRevision {
        name: String,
        hash: String,
        revision: i64,
        version: String,
        labels: BTreeMap<String, String>,
        /// [`annotations::CHANGE_CAUSE`] and [`annotations::CHANGED_BY`] of the change.
        annotations: BTreeMap<String, String>,
        template: Arc<PodTemplateSpec>,
    },
    /// Prune ControllerRevision `name`.
    DeleteRevision { name: String },
    /// Create pod `name` for `slot` from `template` (that of ControllerRevision `revision`),
    /// with `labels`: the template's labels and [`pod_labels`], which win. The pod needs nothing
    /// else: the reconciler does not read the revision back.
    CreatePod {
        name: String,
        slot: i32,
        revision: String,
        hash: String,
        version: String,
        labels: BTreeMap<String, String>,
        template: Arc<PodTemplateSpec>,
    },
    /// Delete pod `name`.
    DeletePod { name: String },
    /// Create Job `name` with `labels` from `job` (a hook's or a `job` check's), owned by the
    /// Rollout.
    CreateJob {
        name: String,
        labels: BTreeMap<String, String>,
        job: Arc<crate::api::rollout::JobTemplate>,
    },
    /// Delete Job `name` and its pods (a retried failure, or its revision was pruned).
    DeleteJob { name: String },
    /// Ask pod `name` to hand its listeners over: set annotation `baton.dev/drain` to now.
    DrainPod { name: String },
    /// Set the `spec.replicas` of Deployment `name` (of `spec.workloadRef`) through its scale
    /// subresource.
    ScaleWorkload { name: String, replicas: i32 },
    /// Pod `name` is wanted again: remove annotation `baton.dev/drain` (one this controller
    /// set).
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
    pub reason: EventReason,
    pub message: String,
    /// The message as first planned, before a phase change was added to it: the same for
    /// every plan that reports this occurrence (a transition's Event is published once).
    pub identity: String,
    /// The batch (1-based) the event is about, for the events about one.
    pub batch: Option<i32>,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub status: RolloutStatus,
    pub events: Vec<PlanEvent>,
    /// Reconcile again after this long even if nothing changes (time is the trigger).
    pub requeue_after: Option<Duration>,
    /// The check runs wanted now: the shell starts those it does not have and cancels the rest.
    pub checks: Vec<CheckRun>,
}

/// Plans one reconcile. Pure and deterministic.
pub fn plan(input: &PlanInput) -> Plan {
    Planner::new(input).run()
}

// ---------------------------------------------------------------------------------------------

/// One reconcile's planning: the input, the pods grouped by slot, and what has been decided so
/// far (actions, events, times to wake up at). The steps of [`Planner::run`] are methods
/// defined in the submodules.
struct Planner<'a> {
    input: &'a PlanInput,
    spec: &'a RolloutSpec,
    /// The stored status, borrowed from the input (none stored: the default).
    prior: std::borrow::Cow<'a, RolloutStatus>,
    now: Timestamp,
    slots: BTreeMap<i32, SlotPods<'a>>,
    actions: Vec<Action>,
    events: Vec<PlanEvent>,
    wakeups: Vec<Timestamp>,
    check_runs: Vec<CheckRun>,
    /// Jobs this plan deletes: absent for the rest of the plan, not created again before the
    /// caches show them gone.
    deleting_jobs: std::collections::BTreeSet<String>,
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
            prior: input
                .status
                .as_ref()
                .map_or_else(Default::default, std::borrow::Cow::Borrowed),
            now: input.now,
            slots,
            actions: Vec::new(),
            events: Vec::new(),
            wakeups: Vec::new(),
            check_runs: Vec::new(),
            deleting_jobs: Default::default(),
        }
    }

    fn event(&mut self, type_: EventType, reason: EventReason, message: impl Into<String>) {
        self.batch_event(type_, reason, message, None);
    }

    /// An event about batch `batch` (1-based).
    fn batch_event(&mut self, type_: EventType, reason: EventReason, message: impl Into<String>, batch: Option<i32>) {
        let message = message.into();
        self.events.push(PlanEvent {
            type_,
            reason,
            identity: message.clone(),
            message,
            batch,
        });
    }

    /// The reason of the stored condition of type `type_`, when it is one of ours.
    fn prior_reason(&self, type_: ConditionType) -> Option<Reason> {
        reasons::find(&self.prior.conditions, type_).and_then(|c| Reason::parse(&c.reason))
    }

    /// `spec.replicas`, within 0..=[`MAX_REPLICAS`] even before validation rejects a spec
    /// beyond it: no step may cost time or memory proportional to a larger number.
    fn replicas(&self) -> i32 {
        self.spec.replicas.clamp(0, MAX_REPLICAS)
    }

    /// The steps of one plan, in order. Each step only uses what the earlier ones decided.
    fn run(mut self) -> Plan {
        let update = self.update_revision();
        let pins = match self.validate(&update.info) {
            Ok(pins) => pins,
            Err(errors) => return self.invalid(errors),
        };
        let requests = self.requested_actions();
        let stable = self.last_healthy_revision(&update.known);
        let mut rollout = self.rollout_state(update.info, update.known, stable, pins, &requests);
        self.progress_batches(&mut rollout, requests.promote);
        let desired = self.desired_revisions(&rollout);

        let origin = self.origin(&rollout.target, update.exists);
        // Pod actions.
        if !update.exists {
            let target = &rollout.target;
            let annotations: BTreeMap<String, String> = [
                (annotations::CHANGE_CAUSE, origin.change_cause.clone()),
                (annotations::CHANGED_BY, origin.changed_by.clone()),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect();
            self.actions.push(Action::CreateRevision {
                name: target.name.clone(),
                hash: target.hash.clone(),
                revision: target.revision,
                version: target.version.clone(),
                labels: revision_labels(&self.input.name, &target.hash, &target.version),
                annotations,
                template: target.template.clone(),
            });
        }
        self.pod_actions(&desired);
        self.prune_revisions(&rollout);

        let mut status = self.status(&rollout, &desired, requests.handled);
        let facts = records::HistoryFacts {
            target: &rollout.target,
            target_existed: update.exists,
            known: &rollout.known,
            origin: &origin,
            now: self.now,
        };
        status.history = records::records(&self.prior, &status, &facts);
        self.scale_workload(&mut status);
        self.finish(status)
    }

    /// Who made update revision `target` and why, when it is new or the spec names another
    /// revision than before (else nothing reads it): decided by who owns the fields that differ
    /// from the revision named before.
    fn origin(&self, target: &RevisionInfo, exists: bool) -> SpecOrigin {
        let before = self.prior.update_revision.as_deref();
        if exists && before == Some(target.name.as_str()) {
            return SpecOrigin::default();
        }
        let before = self.input.revisions.iter().find(|r| Some(r.name.as_str()) == before);
        self.input
            .origin
            .origin(before.map(revision_fields), revision_fields(target))
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
            checks: self.check_runs,
        }
    }
}

#[cfg(test)]
mod tests;
