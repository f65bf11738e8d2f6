//! Batches: where the rollout stands (update and last healthy revision, batch, failure, mode),
//! picked up from the recorded status. How a batch progresses is in `progress`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::requests::RequestedActions;
use super::targets::{self, Batches};
use super::{EventType, Planner, RevisionInfo};
use crate::api::rollout::{BatchStatus, ConditionType, EventReason, FailedUpdate, Reason};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Update revision == current revision: every unpinned slot on it.
    Steady,
    /// Batches towards the update revision (also the first rollout, as one batch).
    Rollout,
    /// Every unpinned slot back to the current revision.
    Rollback,
    /// Failed without rollback: only missing pods are recreated.
    Stopped,
}

impl Mode {
    /// The mode of a rollout: `rolling` when the update revision is not the last healthy one,
    /// with the update revision's recorded failure, whether there is a revision to roll back
    /// to, and whether every slot is pinned (nothing for batches to do).
    fn of(rolling: bool, failed: Option<&FailedUpdate>, has_stable: bool, all_pinned: bool) -> Mode {
        if !rolling {
            return Mode::Steady;
        }
        match failed {
            Some(f) if f.rolled_back && has_stable => Mode::Rollback,
            Some(_) => Mode::Stopped,
            None if all_pinned => Mode::Steady,
            None => Mode::Rollout,
        }
    }
}

/// Where the rollout stands, as worked out by the steps of `Planner::run` and read by the later
/// ones (desired revisions, pruning, status).
pub(super) struct RolloutState {
    /// The update revision (`status.updateRevision`).
    pub(super) target: RevisionInfo,
    /// The last healthy revision (`status.currentRevision`), the rollback target.
    pub(super) stable: Option<RevisionInfo>,
    /// The stored revisions plus the update revision.
    pub(super) known: Vec<RevisionInfo>,
    /// Pinned slots and their revisions.
    pub(super) pins: BTreeMap<i32, RevisionInfo>,
    /// Slots outside the pins, which the batches cover.
    pub(super) unpinned: Vec<i32>,
    /// Cumulative batch sizes (as [`super::batch_counts`], raised to cover the instances the
    /// batches name; one batch on a first rollout).
    pub(super) counts: Vec<usize>,
    /// The batches with the slots each must include.
    pub(super) batches: Batches,
    pub(super) total_batches: i32,
    pub(super) batch: BatchStatus,
    /// The update revision's recorded failure, if any.
    pub(super) failed: Option<FailedUpdate>,
    pub(super) mode: Mode,
    /// A healthy batch waits for `baton rollout promote`.
    pub(super) waiting_promotion: bool,
    /// A healthy batch pauses until then.
    pub(super) pause_until: Option<Timestamp>,
    /// The current batch's instances (and checks) that are not healthy yet, described.
    pub(super) holdups: Vec<String>,
    /// Every instance is on the update revision, baking until then.
    pub(super) bake_until: Option<Timestamp>,
    /// `promote --full` ended the bake window.
    pub(super) skip_bake: bool,
    /// The preRollout hook has not succeeded: no instance moves to the update revision.
    pub(super) hold: bool,
    /// The hook whose Job the rollout waits for, and the Job.
    pub(super) hook: Option<(&'static str, String)>,
}

impl Planner<'_> {
    /// Picks up the rollout from the recorded status: a new update revision starts at batch 1,
    /// spec pauses and resumes are noticed, requested retries and aborts are applied, and the
    /// mode follows.
    pub(super) fn rollout_state(
        &mut self,
        target: RevisionInfo,
        known: Vec<RevisionInfo>,
        stable: Option<RevisionInfo>,
        pins: BTreeMap<i32, RevisionInfo>,
        requests: &RequestedActions,
    ) -> RolloutState {
        let now = self.now;

        // Pinned slots are outside the batches.
        let unpinned: Vec<i32> = (0..self.replicas()).filter(|s| !pins.contains_key(s)).collect();
        let batches = self.batches_of(stable.is_none(), &unpinned, &pins);
        let counts = batches.counts.clone();
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
        if requests.restart {
            self.restart_event(&target);
        }
        // Batch 1 starts once the preRollout hook has succeeded: until then it has no start
        // time, and its BatchStarted Event waits for the plan that sees the hook done.
        let pre_pending = rolling && !self.pre_hook_done(&target).0;
        if rolling && new_target && !unpinned.is_empty() {
            batch = BatchStatus {
                current: 1,
                ..BatchStatus::default()
            };
        }
        batch.total = total_batches;
        batch.current = batch.current.clamp(1, total_batches.max(1));
        self.spec_pause_changes(&mut batch);
        if batch.started_at.is_none() && !pre_pending {
            batch.started_at = Some(MicroTime(now));
            if rolling && batch.current == 1 && failed.is_none() && !unpinned.is_empty() {
                self.announce_batch_one(&target, stable.as_ref(), &counts, unpinned.len());
            }
        }

        if requests.retry {
            if failed.is_some() {
                self.delete_failed_jobs(&target);
            }
            self.retry_failed(&mut failed, &mut batch, &target, total_batches);
        }
        if requests.abort {
            self.abort_rollout(&mut failed, &batch, &target, stable.as_ref(), rolling);
        }

        let mode = Mode::of(rolling, failed.as_ref(), stable.is_some(), unpinned.is_empty());
        let skip_bake = requests.promote_full && self.promote_full(mode, &mut batch, &target);
        let hold = matches!(mode, Mode::Rollout | Mode::Stopped) && !self.pre_hook_done(&target).0;
        RolloutState {
            target,
            stable,
            known,
            pins,
            unpinned,
            counts,
            batches,
            total_batches,
            batch,
            failed,
            mode,
            waiting_promotion: false,
            pause_until: None,
            holdups: Vec::new(),
            bake_until: None,
            skip_bake,
            hold,
            hook: None,
        }
    }

    /// The batches over the `unpinned` slots: all at once for a first rollout (nothing to
    /// compare with), else the strategy's with its targets.
    fn batches_of(&self, first_rollout: bool, unpinned: &[i32], pins: &BTreeMap<i32, RevisionInfo>) -> Batches {
        if first_rollout && !unpinned.is_empty() {
            return Batches {
                counts: vec![unpinned.len()],
                named: vec![Default::default()],
            };
        }
        let (named, _) = self.target_slots(pins);
        targets::resolve(&self.spec.strategy, unpinned, &named)
    }

    /// `baton.dev/restartedAt` was set: every instance moves to `target`, a new revision.
    fn restart_event(&mut self, target: &RevisionInfo) {
        self.event(
            EventType::Normal,
            EventReason::Restarted,
            format!(
                "restart requested ({}): every instance moves to revision {} of {}",
                crate::api::rollout::annotations::RESTARTED_AT,
                target.revision,
                target.version
            ),
        );
    }

    /// Batch 1 of the update revision started: the `BatchStarted` Event.
    fn announce_batch_one(
        &mut self,
        target: &RevisionInfo,
        stable: Option<&RevisionInfo>,
        counts: &[usize],
        unpinned: usize,
    ) {
        let total = counts.len();
        let from = stable.map(|s| format!(" from {}", s.version)).unwrap_or_default();
        self.batch_event(
            EventType::Normal,
            EventReason::BatchStarted,
            format!(
                "rolling out {}{from} (revision {}): batch 1/{total}, {} of {unpinned} instances",
                target.version,
                target.revision,
                counts.first().copied().unwrap_or(0),
            ),
            Some(1),
        );
    }

    /// Events for `spec.paused` set or cleared; the progress deadline restarts on resume.
    fn spec_pause_changes(&mut self, batch: &mut BatchStatus) {
        let was_spec_paused = self.prior_reason(ConditionType::Progressing) == Some(Reason::RolloutPaused);
        if was_spec_paused && !self.spec.paused {
            // A batch not started yet (its preRollout hook runs) starts when the hook is done.
            if let Some(t) = batch.started_at.as_mut() {
                *t = MicroTime(self.now);
            }
            self.event(
                EventType::Normal,
                EventReason::Resumed,
                "rollout resumed (spec.paused is false)",
            );
        }
        if self.spec.paused && !was_spec_paused {
            self.event(
                EventType::Normal,
                EventReason::Paused,
                "rollout paused (spec.paused is true); no instance is replaced",
            );
        }
    }
}
