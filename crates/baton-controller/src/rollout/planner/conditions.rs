//! Status: the phase, message and conditions of a plan, and the events of phase and pin
//! changes. The counts and instances are in `counts`.
//!
//! # Status conditions
//!
//! * `Ready`, `Reconciling`, `Stalled` (kstatus): follow the phase, see
//!   [`crate::api::rollout::reasons`]. `Ready` is True only in phase `Healthy`.
//! * `Available`: True when at least `replicas - maxUnavailable` instances are available
//!   (`MinimumReplicasAvailable` / `MinimumReplicasUnavailable`).
//! * `Progressing`: True with `ReplicaSetUpdated` (rolling out, repairing), `BatchPaused`,
//!   `Baking`, `RollingBack`, `NewRevisionAvailable` (done); False with
//!   `ProgressDeadlineExceeded`, `PodCrashLooping`, `CheckFailed` or `BakeFailed` (stopped),
//!   `RolledBack` or `RolloutAborted` (returned to the current revision); Unknown with
//!   `RolloutPaused`.
//! * `InvalidSpec`: True with the problems (`InvalidSpec`), else False (`SpecValid`).
//!
//! Every condition carries the generation it describes (`observedGeneration`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::batches::{Mode, RolloutState};
use super::counts::pinned_versions;
use super::observed::SlotHealth;
use super::{budgets, EventType, PlanEvent, Planner, RevisionInfo};
use crate::api::rollout::hooks::hook_names;
use crate::api::rollout::{
    reasons, ConditionStatus, ConditionType, EventReason, FailedUpdate, HandledActions, InstanceStatus, Reason,
    RolloutPhase, RolloutStatus,
};

/// A condition's status, reason and message.
#[derive(Clone, Debug)]
pub(super) struct Cond {
    pub(super) status: ConditionStatus,
    pub(super) reason: Reason,
    pub(super) message: String,
}

fn cond(status: ConditionStatus, reason: Reason, message: impl Into<String>) -> Cond {
    Cond {
        status,
        reason,
        message: message.into(),
    }
}

/// What a plan says about the rollout as a whole.
struct Outcome {
    phase: RolloutPhase,
    progressing: Cond,
    /// Reason of `Ready`, `Reconciling` and `Stalled`.
    reason: Reason,
    message: String,
}

impl Outcome {
    fn new(phase: RolloutPhase, progressing: Cond, message: String) -> Self {
        Outcome {
            phase,
            reason: progressing.reason,
            progressing,
            message,
        }
    }
}

/// `Ready`, `Reconciling` and `Stalled` for a phase: exactly one is True, all with `reason`.
pub(super) fn gate_conditions(phase: RolloutPhase, reason: Reason, message: &str) -> [(ConditionType, Cond); 3] {
    use ConditionStatus::{False, True};
    let (ready, reconciling, stalled) = match phase {
        RolloutPhase::Healthy => (True, False, False),
        RolloutPhase::Progressing | RolloutPhase::Paused | RolloutPhase::RollingBack => (False, True, False),
        RolloutPhase::Degraded | RolloutPhase::RolledBack => (False, False, True),
    };
    [
        (ConditionType::Ready, cond(ready, reason, message)),
        (ConditionType::Reconciling, cond(reconciling, reason, message)),
        (ConditionType::Stalled, cond(stalled, reason, message)),
    ]
}

/// `PhaseChanged` from the stored phase to `phase`, if it changed.
pub(super) fn phase_change_event(prior: Option<RolloutPhase>, phase: RolloutPhase) -> Option<PlanEvent> {
    if prior == Some(phase) {
        return None;
    }
    let type_ = match phase {
        RolloutPhase::Degraded | RolloutPhase::RolledBack => EventType::Warning,
        _ => EventType::Normal,
    };
    let message = match prior {
        Some(from) => format!("phase {from} -> {phase}"),
        None => format!("phase set to {phase}"),
    };
    Some(PlanEvent {
        type_,
        reason: EventReason::PhaseChanged,
        identity: message.clone(),
        message,
        batch: None,
    })
}

/// The `wanted` conditions for `generation`, keeping a stored condition's transition time when
/// its status did not change.
pub(super) fn conditions_at(
    prior: &RolloutStatus,
    now: Timestamp,
    generation: i64,
    wanted: Vec<(ConditionType, Cond)>,
) -> Vec<Condition> {
    wanted
        .into_iter()
        .map(|(type_, c)| {
            let last_transition_time = match reasons::find(&prior.conditions, type_) {
                Some(p) if p.status == c.status.as_str() => p.last_transition_time.clone(),
                _ => Time(now),
            };
            Condition {
                type_: type_.to_string(),
                status: c.status.to_string(),
                reason: c.reason.to_string(),
                message: c.message,
                last_transition_time,
                observed_generation: Some(generation),
            }
        })
        .collect()
}

impl Planner<'_> {
    /// The status this plan writes; `handled` are the runtime-action nonces to record.
    pub(super) fn status(
        &mut self,
        rollout: &RolloutState,
        desired: &BTreeMap<i32, Option<RevisionInfo>>,
        handled: HandledActions,
    ) -> RolloutStatus {
        let outcome = self.outcome(rollout, desired);
        let available = self.available_condition();

        let RolloutState {
            target,
            stable,
            total_batches,
            batch,
            failed,
            mode,
            ..
        } = rollout;
        let mut status = self.observe(rollout);
        status.observed_generation = Some(self.input.generation);
        status.phase = Some(outcome.phase);
        status.current_revision = stable.as_ref().map(|s| s.name.clone());
        status.update_revision = Some(target.name.clone());
        // The version that serves: the last fully healthy one.
        status.version = stable.as_ref().map(|s| s.version.clone());
        if *total_batches > 0 {
            let mut b = batch.clone();
            if *mode != Mode::Rollout {
                b.pause_started_at = None;
                b.bake_started_at = None;
            }
            if *mode == Mode::Steady {
                // Finished: the batches the rollout finished with, as stored. The plan that
                // completes a first rollout counts one batch (no healthy revision yet); the plans
                // after it, with one, would count the strategy's and write the status again.
                let done = self
                    .prior
                    .batch
                    .as_ref()
                    .filter(|p| p.total > 0 && self.prior.update_revision.as_deref() == Some(target.name.as_str()));
                if let Some(done) = done {
                    b.total = done.total;
                }
                b.current = b.total;
                b.started_at = None;
            }
            status.batch_label = Some(format!("{}/{}", b.current, b.total));
            status.batch = Some(b);
        }
        status.failed_update = failed.clone();
        status.actions = Some(handled);
        let mut wanted: Vec<(ConditionType, Cond)> =
            gate_conditions(outcome.phase, outcome.reason, &outcome.message).into();
        wanted.push((ConditionType::Available, available));
        wanted.push((ConditionType::Progressing, outcome.progressing));
        wanted.push((
            ConditionType::InvalidSpec,
            cond(ConditionStatus::False, Reason::SpecValid, "spec is valid"),
        ));
        wanted.extend(self.sinks_condition());
        status.conditions = self.conditions(wanted);
        status.message = Some(outcome.message);

        self.pin_events(&status.instances);
        self.phase_event(outcome.phase);
        status
    }

    /// The phase change, when the phase is not the stored one: said by the plan's last
    /// transition event of the same type (a batch started, the rollout completed, a batch
    /// failed, a spec pause), which the
    /// change follows from — one Event per transition —, else its own `PhaseChanged`.
    pub(super) fn phase_event(&mut self, phase: RolloutPhase) {
        let Some(ev) = phase_change_event(self.prior.phase, phase) else {
            return;
        };
        use EventReason::*;
        let carries = |e: &PlanEvent| {
            e.type_ == ev.type_
                && matches!(
                    e.reason,
                    BatchStarted
                        | BatchCompleted
                        | RolloutCompleted
                        | BatchFailed
                        | RollingBack
                        | RolledBack
                        | Paused
                        | Resumed
                )
        };
        // The last transition of the plan is the one the phase results from.
        match self.events.iter_mut().rev().find(|e| carries(e)) {
            Some(carrier) => carrier.message = format!("{} ({})", carrier.message, ev.message),
            None => self.events.push(ev),
        }
    }

    /// `Pinned` and `Unpinned` events for instances whose pin differs from the stored status.
    fn pin_events(&mut self, instances: &[InstanceStatus]) {
        let before = pinned_versions(&self.prior.instances);
        let after = pinned_versions(instances);
        let mut pinned: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, version) in &after {
            let unchanged = match before.get(name) {
                Some(None) => true,
                Some(Some(v)) => Some(*v) == *version,
                None => false,
            };
            if !unchanged {
                pinned.entry(version.unwrap_or("?")).or_default().push(name);
            }
        }
        let unpinned: Vec<&str> = before
            .keys()
            .filter(|name| !after.contains_key(*name) && instances.iter().any(|i| i.name == **name))
            .copied()
            .collect();
        let mut events = Vec::new();
        for (version, names) in pinned {
            events.push((
                EventReason::Pinned,
                format!("{} pinned to {version} (spec.pins)", names.join(", ")),
            ));
        }
        if !unpinned.is_empty() {
            events.push((
                EventReason::Unpinned,
                format!(
                    "{} unpinned: back to {} with the other instances",
                    unpinned.join(", "),
                    self.spec.version
                ),
            ));
        }
        for (reason, message) in events {
            self.event(EventType::Normal, reason, message);
        }
    }

    /// Phase, `Progressing` and message for the mode the rollout is in.
    fn outcome(&mut self, rollout: &RolloutState, desired: &BTreeMap<i32, Option<RevisionInfo>>) -> Outcome {
        let RolloutState {
            target,
            total_batches,
            batch,
            mode,
            ..
        } = rollout;
        let all_settled = self.all_settled(desired);
        if self.spec.paused {
            return Outcome::new(
                RolloutPhase::Paused,
                cond(
                    ConditionStatus::Unknown,
                    Reason::RolloutPaused,
                    "rollout paused (spec.paused); no instance is replaced",
                ),
                format!(
                    "paused (spec.paused) at batch {}/{} of {}",
                    batch.current, total_batches, target.version
                ),
            );
        }
        match mode {
            Mode::Steady => self.steady_outcome(rollout, all_settled),
            Mode::Rollout => self.rollout_outcome(rollout),
            Mode::Rollback => self.rollback_outcome(rollout, desired, all_settled),
            Mode::Stopped => self.stopped_outcome(rollout),
        }
    }

    fn steady_outcome(&self, rollout: &RolloutState, all_settled: bool) -> Outcome {
        let (available, replicas, target) = (self.count_available(), self.replicas(), &rollout.target.version);
        let msg = if rollout.pins.is_empty() {
            format!("{available} of {replicas} instances available on {target}")
        } else {
            // Say where each instance is meant to run: pinned ones do not run the target.
            let mut pinned: BTreeMap<&str, usize> = BTreeMap::new();
            for rev in rollout.pins.values() {
                *pinned.entry(rev.version.as_str()).or_default() += 1;
            }
            let pinned: Vec<String> = pinned.iter().map(|(v, n)| format!("{n} pinned to {v}")).collect();
            format!(
                "{available} of {replicas} instances available: {} on {target}, {}",
                rollout.unpinned.len(),
                pinned.join(", ")
            )
        };
        if all_settled {
            let progressing = cond(ConditionStatus::True, Reason::NewRevisionAvailable, msg.clone());
            return Outcome::new(RolloutPhase::Healthy, progressing, msg);
        }
        let progressing = cond(ConditionStatus::True, Reason::ReplicaSetUpdated, msg.clone());
        if self.any_broken() {
            let message = format!("{msg}; failing: {}", self.broken_list().join(", "));
            return Outcome {
                phase: RolloutPhase::Degraded,
                progressing,
                reason: Reason::PodCrashLooping,
                message,
            };
        }
        Outcome::new(RolloutPhase::Progressing, progressing, msg)
    }

    fn rollout_outcome(&self, rollout: &RolloutState) -> Outcome {
        let RolloutState {
            target,
            unpinned,
            counts,
            total_batches,
            batch,
            waiting_promotion,
            pause_until,
            holdups,
            ..
        } = rollout;
        let k = batch.current;
        if let Some((hook, job)) = &rollout.hook {
            let msg = if *hook == hook_names::PRE_ROLLOUT {
                format!(
                    "waiting for hook {hook} (Job {job}) before batch {k}/{total_batches} of {}",
                    target.version
                )
            } else {
                format!(
                    "all {} instances of {} healthy; waiting for hook {hook} (Job {job})",
                    unpinned.len(),
                    target.version
                )
            };
            let progressing = cond(ConditionStatus::True, Reason::HookRunning, msg.clone());
            return Outcome::new(RolloutPhase::Progressing, progressing, msg);
        }
        if *waiting_promotion {
            let msg = format!(
                "batch {k}/{total_batches} of {} healthy; waiting for promotion (baton rollout promote {})",
                target.version, self.input.name
            );
            let progressing = cond(ConditionStatus::True, Reason::BatchPaused, msg.clone());
            return Outcome::new(RolloutPhase::Paused, progressing, msg);
        }
        if let Some(until) = rollout.bake_until {
            // The end, not the time left: a message is rewritten only with other changes, and
            // a count of seconds would be stale the moment it was stored.
            let msg = format!(
                "all {} instances of {} healthy; baking until {}",
                unpinned.len(),
                target.version,
                until_text(until)
            );
            let progressing = cond(ConditionStatus::True, Reason::Baking, msg.clone());
            return Outcome::new(RolloutPhase::Progressing, progressing, msg);
        }
        if let Some(until) = *pause_until {
            let msg = format!(
                "batch {k}/{total_batches} of {} healthy; paused until {}",
                target.version,
                until_text(until)
            );
            let progressing = cond(ConditionStatus::True, Reason::BatchPaused, msg.clone());
            return Outcome::new(RolloutPhase::Progressing, progressing, msg);
        }
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
        let progressing = cond(ConditionStatus::True, Reason::ReplicaSetUpdated, msg.clone());
        Outcome::new(RolloutPhase::Progressing, progressing, msg)
    }

    fn rollback_outcome(
        &mut self,
        rollout: &RolloutState,
        desired: &BTreeMap<i32, Option<RevisionInfo>>,
        all_settled: bool,
    ) -> Outcome {
        let f = rollout.failed.clone().unwrap_or_default();
        let back = rollout.stable.as_ref().map(|s| s.version.clone()).unwrap_or_default();
        let reason = f.reason.condition_reason(true);
        let rollback_done = rollout.unpinned.iter().all(|s| {
            desired
                .get(s)
                .and_then(|d| d.as_ref())
                .is_none_or(|d| self.slot_health(*s, d) == SlotHealth::Ok)
        });
        if !rollback_done {
            let msg = format!("rolling back to {back}: {}", failure_text(&f));
            let progressing = cond(ConditionStatus::True, Reason::RollingBack, msg.clone());
            return Outcome {
                phase: RolloutPhase::RollingBack,
                progressing,
                reason,
                message: msg,
            };
        }
        let msg = format!(
            "rolled back to {back}: {}; fix it and change the spec, or run `baton rollout retry {}`",
            failure_text(&f),
            self.input.name
        );
        if self.prior_reason(ConditionType::Progressing) != Some(reason) {
            self.event(EventType::Normal, EventReason::RolledBack, msg.clone());
        }
        let phase = if !all_settled && self.any_broken() {
            RolloutPhase::Degraded
        } else {
            RolloutPhase::RolledBack
        };
        Outcome::new(phase, cond(ConditionStatus::False, reason, msg.clone()), msg)
    }

    fn stopped_outcome(&self, rollout: &RolloutState) -> Outcome {
        let f = rollout.failed.clone().unwrap_or_default();
        let why = if rollout.hold {
            "nothing was replaced"
        } else if rollout.stable.is_none() {
            "no healthy revision to roll back to"
        } else {
            "autoRollback is off"
        };
        let msg = format!(
            "rollout of {} stopped at batch {}/{}: {}; {why}: fix it and change the spec, run `baton rollout retry {name}`, or `baton rollout abort {name}`",
            f.version,
            f.batch,
            rollout.total_batches,
            f.message,
            name = self.input.name
        );
        let progressing = cond(ConditionStatus::False, f.reason.condition_reason(false), msg.clone());
        Outcome::new(RolloutPhase::Degraded, progressing, msg)
    }

    /// The `Available` condition: at least `replicas - maxUnavailable` instances available.
    fn available_condition(&self) -> Cond {
        let (_, max_unavailable) = budgets(&self.spec.strategy, self.replicas());
        let available = self.count_available();
        let needed = (self.replicas() - max_unavailable).max(0);
        if available >= needed {
            cond(
                ConditionStatus::True,
                Reason::MinimumReplicasAvailable,
                format!("{available} of {} instances available", self.replicas()),
            )
        } else {
            cond(
                ConditionStatus::False,
                Reason::MinimumReplicasUnavailable,
                format!(
                    "{available} of {} instances available, {needed} needed",
                    self.replicas()
                ),
            )
        }
    }

    /// Conditions for this generation; a condition keeps its stored transition time while its
    /// status stays the same.
    /// `NotificationsReady`, with `spec.notifications` only: False names every sink problem.
    fn sinks_condition(&self) -> Option<(ConditionType, Cond)> {
        let problems = self.input.sink_problems.as_ref()?;
        let c = if problems.is_empty() {
            let n = self.spec.notifications.len();
            let s = if n == 1 { "" } else { "s" };
            cond(
                ConditionStatus::True,
                Reason::SinksReady,
                format!("{n} notification sink{s} ready"),
            )
        } else {
            cond(ConditionStatus::False, Reason::SinkInvalid, problems.join("; "))
        };
        Some((ConditionType::NotificationsReady, c))
    }

    pub(super) fn conditions(&self, wanted: Vec<(ConditionType, Cond)>) -> Vec<Condition> {
        conditions_at(&self.prior, self.now, self.input.generation, wanted)
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
}

/// What happened to a failed update, for messages.
fn failure_text(f: &FailedUpdate) -> String {
    match f.reason {
        crate::api::rollout::FailureReason::Aborted => f.message.clone(),
        _ => format!("{} failed ({})", f.version, f.message),
    }
}

/// A pause's or bake's end as the message says it: RFC 3339 in UTC, to the second, rounded up
/// (never earlier than the end).
fn until_text(until: jiff::Timestamp) -> String {
    let up = until
        .checked_add(jiff::SignedDuration::from_nanos(999_999_999))
        .unwrap_or(until);
    up.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
