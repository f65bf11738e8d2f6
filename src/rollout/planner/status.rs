//! Status: the phase, message and conditions of a plan, and the counts and instances observed.
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

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::batches::{Mode, RolloutState};
use super::observed::SlotHealth;
use super::{budgets, slot_name, EventType, Planner, RevisionInfo};
use crate::api::rollout::{
    selector_string, HandledActions, InstanceStatus, ProgressStatus, RolloutPhase, RolloutStatus,
};

/// Condition type `Available`.
pub const CONDITION_AVAILABLE: &str = "Available";
/// Condition type `Progressing`.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type `InvalidSpec`.
pub const CONDITION_INVALID_SPEC: &str = "InvalidSpec";

/// A condition's `(status, reason, message)`.
type ConditionValue = (&'static str, &'static str, String);

impl Planner<'_> {
    /// The status this plan writes; `handled` are the runtime-action nonces to record.
    pub(super) fn status(
        &mut self,
        rollout: &RolloutState,
        desired: &BTreeMap<i32, Option<RevisionInfo>>,
        handled: HandledActions,
    ) -> RolloutStatus {
        let (phase, progressing, message) = self.phase(rollout, desired);
        let available_cond = self.available_condition();

        let RolloutState {
            target,
            stable,
            known,
            pins,
            total_batches,
            batch,
            failed,
            mode,
            ..
        } = rollout;
        let mut status = self.observe(target, pins, known);
        status.observed_generation = Some(self.input.generation);
        status.phase = Some(phase);
        status.current_revision = stable.as_ref().map(|s| s.name.clone());
        status.update_revision = Some(target.name.clone());
        status.version = Some(match (mode, stable) {
            (Mode::Rollback, Some(s)) => s.version.clone(),
            _ => target.version.clone(),
        });
        if *total_batches > 0 {
            let mut b = batch.clone();
            if *mode != Mode::Rollout {
                b.pause_started_at = None;
            }
            if *mode == Mode::Steady {
                b.current = *total_batches;
                b.started_at = None;
            }
            status.batch_label = Some(format!("{}/{}", b.current, b.total));
            status.batch = Some(b);
        }
        status.failed_update = failed.clone();
        status.actions = Some(handled);
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
        status
    }

    /// `(phase, Progressing condition, message)` for the mode the rollout is in.
    fn phase(
        &mut self,
        rollout: &RolloutState,
        desired: &BTreeMap<i32, Option<RevisionInfo>>,
    ) -> (RolloutPhase, ConditionValue, String) {
        let spec = self.spec;
        let now = self.now;
        let RolloutState {
            target,
            stable,
            pins,
            unpinned,
            counts,
            total_batches,
            batch,
            failed,
            mode,
            waiting_promotion,
            pause_until,
            holdups,
            ..
        } = rollout;
        let all_settled = self.all_settled(desired);
        let rollback_done = *mode == Mode::Rollback
            && unpinned.iter().all(|s| {
                desired
                    .get(s)
                    .and_then(|d| d.as_ref())
                    .is_none_or(|d| self.slot_health(*s, d) == SlotHealth::Ok)
            });
        let any_broken = self.any_broken();

        if spec.paused {
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
                    if *waiting_promotion {
                        let msg = format!(
                            "batch {k}/{total_batches} of {} healthy; waiting for promotion (baton promote)",
                            target.version
                        );
                        (RolloutPhase::Paused, ("True", "BatchPaused", msg.clone()), msg)
                    } else if let Some(until) = *pause_until {
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
        }
    }

    /// The `Available` condition: at least `replicas - maxUnavailable` instances available.
    fn available_condition(&self) -> ConditionValue {
        let (_, max_unavailable) = budgets(&self.spec.strategy, self.replicas());
        let available = self.count_available();
        let needed = (self.replicas() - max_unavailable).max(0);
        if available >= needed {
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
        }
    }

    pub(super) fn conditions(&self, wanted: Vec<(&str, (&str, &str, String))>) -> Vec<Condition> {
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
