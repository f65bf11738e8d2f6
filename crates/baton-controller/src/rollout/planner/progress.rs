//! Batch progression: health of the current batch, pauses and promotion, the progress deadline,
//! failing a batch and completing the rollout.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

use super::batches::{Mode, RolloutState};
use super::checks::{CheckVerdict, Phase};
use super::hooks::JobVerdict;
use super::observed::SlotHealth;
use super::{add_duration, add_secs, slot_name, EventType, Planner, RevisionInfo};
use crate::api::rollout::hooks::hook_names;
use crate::api::rollout::{BatchStatus, EventReason, FailedUpdate, FailureReason, PauseMode};

/// Slots with a description of how each stands.
type SlotList = Vec<(i32, String)>;

fn describe(slots: &[(i32, String)]) -> String {
    slots.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>().join(", ")
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

/// What became of the current batch in one step of [`Planner::progress_batches`].
enum Step {
    /// The next batch started: look at it too.
    Next,
    /// Waiting (for health, a pause or promotion); why a promotion could not be used, if so.
    Wait(Option<String>),
    /// The last batch is healthy.
    Completed,
    /// The batch failed (recorded in `failed`).
    Failed,
}

impl Planner<'_> {
    /// Moves the batches on as far as health, pauses and `promote` allow; fails the batch on a
    /// crash loop or at the progress deadline, and completes the rollout after the last batch.
    pub(super) fn progress_batches(&mut self, rollout: &mut RolloutState, promote: bool) {
        let mut promote = promote;
        let mut refused = None;
        if rollout.mode == Mode::Rollout && !self.spec.paused {
            loop {
                match self.step_batch(rollout, &mut promote) {
                    Step::Next => continue,
                    Step::Wait(why) => refused = why,
                    Step::Completed => self.complete(rollout),
                    Step::Failed => {
                        let rolled_back = rollout.failed.as_ref().is_some_and(|f| f.rolled_back);
                        rollout.mode = if rolled_back && rollout.stable.is_some() {
                            Mode::Rollback
                        } else {
                            Mode::Stopped
                        };
                    }
                }
                break;
            }
        }
        if rollout.mode != Mode::Rollout {
            rollout.waiting_promotion = false;
            rollout.pause_until = None;
            rollout.bake_until = None;
            rollout.batch.bake_started_at = None;
            self.check_runs.clear();
        }
        if promote && !self.spec.paused {
            let why = refused.unwrap_or_else(|| self.promote_refusal(rollout));
            self.ignored("promote", &why);
        }
    }

    /// Why a promotion had nothing to end, when no batch said.
    fn promote_refusal(&self, rollout: &RolloutState) -> String {
        let version = &rollout.target.version;
        match (rollout.mode, self.spec.strategy.pause_mode()) {
            (Mode::Rollout, PauseMode::None) => {
                "the strategy has no pauses between batches; `baton rollout promote --full` skips the remaining batches"
                    .into()
            }
            (Mode::Rollout, _) => "no pause to end".into(),
            (Mode::Steady, _) => format!("no rollout in progress: {version} is rolled out"),
            (Mode::Rollback | Mode::Stopped, _) => {
                format!("the rollout of {version} failed; `baton rollout retry` rolls it out again")
            }
        }
    }

    /// One look at the current batch.
    fn step_batch(&mut self, rollout: &mut RolloutState, promote: &mut bool) -> Step {
        if let Some(step) = self.hook_step(rollout, hook_names::PRE_ROLLOUT) {
            return step;
        }
        let k = usize::try_from(rollout.batch.current).unwrap_or(1).max(1);
        let count = rollout.counts.get(k - 1).copied().unwrap_or(rollout.unpinned.len());
        let chosen = self.choose(rollout, k, count);
        let (crashing, waiting) = self.batch_health(&chosen, &rollout.target);
        rollout.holdups = crashing.iter().chain(waiting.iter()).map(|(_, d)| d.clone()).collect();
        self.check_runs.clear();
        let total = rollout.total_batches;
        let last = rollout.batch.current >= total;
        if !crashing.is_empty() {
            let during = if rollout.batch.bake_started_at.is_some() {
                ", during the bake window"
            } else {
                ""
            };
            let message = format!(
                "batch {k}/{total} of {}{during}: {}",
                rollout.target.version,
                describe(&crashing)
            );
            rollout.failed = Some(self.fail(FailureReason::PodCrashLooping, message, rollout, &crashing));
            return Step::Failed;
        }
        if last && rollout.batch.bake_started_at.is_some() && !waiting.is_empty() {
            let message = format!(
                "{} not available during the bake window: {}",
                rollout.target.version,
                describe(&waiting)
            );
            rollout.failed = Some(self.fail(FailureReason::BakeFailed, message, rollout, &waiting));
            return Step::Failed;
        }
        // Checks run once the pods are available, until the batch is declared healthy (its
        // pause or bake started).
        let declared = rollout.batch.pause_started_at.is_some() || rollout.batch.bake_started_at.is_some();
        let mut checks_waiting = Vec::new();
        if waiting.is_empty() && !declared {
            match self.checks_verdict(rollout, &chosen, Phase::Batch(k)) {
                CheckVerdict::Passed => {}
                CheckVerdict::Waiting(w) => checks_waiting = w,
                CheckVerdict::Failed(why, slot) => {
                    let message = format!("batch {k}/{total} of {}: {why}", rollout.target.version);
                    return self.check_failed(rollout, message, slot);
                }
            }
            rollout.holdups.extend(checks_waiting.iter().cloned());
        }
        if waiting.is_empty() && checks_waiting.is_empty() {
            if last {
                // The postRollout hook runs once the last batch is healthy, before the bake.
                if rollout.batch.bake_started_at.is_none() {
                    if let Some(step) = self.hook_step(rollout, hook_names::POST_ROLLOUT) {
                        return step;
                    }
                }
                return self.bake(rollout, &chosen);
            }
            return self.after_healthy_batch(rollout, promote);
        }
        if self.deadline_passed(rollout) {
            let holdups: Vec<String> = waiting.iter().map(|(_, d)| d.clone()).chain(checks_waiting).collect();
            let message = format!(
                "batch {k}/{total} of {} not healthy within {}s: {}",
                rollout.target.version,
                self.spec.progress_deadline_seconds,
                holdups.join(", ")
            );
            rollout.failed = Some(self.fail(FailureReason::ProgressDeadlineExceeded, message, rollout, &waiting));
            return Step::Failed;
        }
        Step::Wait(promote.then(|| {
            format!(
                "batch {k}/{total} of {} is not healthy yet, so there is no pause to end; `baton rollout promote --full` skips the remaining batches",
                rollout.target.version
            )
        }))
    }

    /// A healthy batch that is not the last: pause (for a duration or until promoted), then
    /// start the next one.
    fn after_healthy_batch(&mut self, rollout: &mut RolloutState, promote: &mut bool) -> Step {
        let now = self.now;
        let pause = self.spec.strategy.pause_mode();
        let (k, total) = (rollout.batch.current, rollout.total_batches);
        let version = rollout.target.version.clone();
        if rollout.batch.pause_started_at.is_none() {
            rollout.batch.pause_started_at = Some(MicroTime(now));
            let what = match pause {
                PauseMode::None => "starting the next batch".to_string(),
                PauseMode::Timed(d) => format!("pausing for {}", human(d)),
                PauseMode::Manual => "waiting for promotion (baton rollout promote)".to_string(),
            };
            self.batch_event(
                EventType::Normal,
                EventReason::BatchCompleted,
                format!("batch {k}/{total} of {version} healthy; {what}"),
                Some(k),
            );
        }
        let paused_at = rollout.batch.pause_started_at.as_ref().map_or(now, |t| t.0);
        let wait_until = match pause {
            PauseMode::None => None,
            PauseMode::Timed(d) => Some(add_duration(paused_at, d)).filter(|until| *until > now),
            PauseMode::Manual => Some(jiff::Timestamp::MAX),
        };
        if let Some(until) = wait_until {
            if !*promote {
                if pause == PauseMode::Manual {
                    rollout.waiting_promotion = true;
                } else {
                    rollout.pause_until = Some(until);
                    self.wakeups.push(until);
                }
                return Step::Wait(None);
            }
            // A promotion is used up by the pause it ends.
            *promote = false;
            self.batch_event(
                EventType::Normal,
                EventReason::Promoted,
                format!(
                    "batch {k}/{total} promoted ({})",
                    crate::api::rollout::annotations::PROMOTE
                ),
                Some(k),
            );
        }
        self.next_batch(rollout);
        Step::Next
    }

    fn next_batch(&mut self, rollout: &mut RolloutState) {
        let batch = &mut rollout.batch;
        batch.current += 1;
        batch.started_at = Some(MicroTime(self.now));
        batch.pause_started_at = None;
        let next = rollout
            .counts
            .get(usize::try_from(batch.current).unwrap_or(1) - 1)
            .copied()
            .unwrap_or(rollout.unpinned.len());
        let message = format!(
            "batch {}/{} of {} (revision {}): {next} of {} instances",
            batch.current,
            rollout.total_batches,
            rollout.target.version,
            rollout.target.revision,
            rollout.unpinned.len()
        );
        let current = Some(batch.current);
        self.batch_event(EventType::Normal, EventReason::BatchStarted, message, current);
    }

    /// Has the current (unhealthy) batch run out of time? Measured from the batch start, or
    /// from the end of the pause when it turned unhealthy while pausing; while waiting for
    /// promotion there is no deadline. Schedules a wake-up at the deadline otherwise.
    fn deadline_passed(&mut self, rollout: &RolloutState) -> bool {
        let batch = &rollout.batch;
        let base = match (&batch.pause_started_at, self.spec.strategy.pause_mode()) {
            (Some(t), PauseMode::Timed(d)) => Some(add_duration(t.0, d)),
            (Some(_), PauseMode::Manual) => None,
            (Some(t), PauseMode::None) => Some(t.0),
            (None, _) => batch.started_at.as_ref().map(|t| t.0),
        };
        let Some(mut base) = base else { return false };
        // Batch 1 starts when the preRollout hook has succeeded.
        if let (_, Some(hook_done)) = self.pre_hook_done(&rollout.target) {
            base = base.max(hook_done);
        }
        let deadline = add_secs(base, i64::from(self.spec.progress_deadline_seconds));
        if deadline <= self.now {
            return true;
        }
        self.wakeups.push(deadline);
        false
    }

    /// The hook `hook`: None once it passed (or there is none); otherwise the rollout waits for
    /// its Job, or fails with it (`HookFailed`, and a `HookFailed` event): a failed preRollout
    /// hook has replaced nothing, so nothing is rolled back.
    fn hook_step(&mut self, rollout: &mut RolloutState, hook: &'static str) -> Option<Step> {
        let target = rollout.target.clone();
        match self.hook_verdict(&target, hook) {
            JobVerdict::Passed => None,
            JobVerdict::Waiting(job) => {
                rollout.holdups = vec![format!("hook {hook} (Job {job})")];
                rollout.hook = Some((hook, job));
                self.check_runs.clear();
                Some(Step::Wait(None))
            }
            JobVerdict::Failed(why) => {
                let message = format!("hook {hook} of {} failed: {why}", target.version);
                self.event(EventType::Warning, EventReason::HookFailed, message.clone());
                let may_roll_back = hook != hook_names::PRE_ROLLOUT;
                rollout.failed = Some(self.fail_as(FailureReason::HookFailed, message, rollout, &[], may_roll_back));
                Some(Step::Failed)
            }
        }
    }

    /// A batch failed by a check: a `CheckFailed` event besides the batch's.
    fn check_failed(&mut self, rollout: &mut RolloutState, message: String, slot: Option<i32>) -> Step {
        let batch = Some(rollout.batch.current);
        self.batch_event(EventType::Warning, EventReason::CheckFailed, message.clone(), batch);
        let instances: SlotList = slot.map(|s| (s, String::new())).into_iter().collect();
        rollout.failed = Some(self.fail(FailureReason::CheckFailed, message, rollout, &instances));
        Step::Failed
    }

    /// The last batch is healthy: bake for `bakeSeconds` (pod health is watched by
    /// [`Self::step_batch`], the checks run round after round until the window ends: see
    /// `checks`), then complete. A round still running when the window ends holds nothing.
    fn bake(&mut self, rollout: &mut RolloutState, slots: &BTreeSet<i32>) -> Step {
        let secs = i64::from(self.spec.bake_seconds.max(0));
        if secs == 0 || rollout.skip_bake {
            return Step::Completed;
        }
        let version = rollout.target.version.clone();
        let started = match &rollout.batch.bake_started_at {
            Some(t) => t.0,
            None => {
                rollout.batch.bake_started_at = Some(MicroTime(self.now));
                self.event(
                    EventType::Normal,
                    EventReason::BakeStarted,
                    format!(
                        "all {} instances of {version} healthy; baking for {}s before it counts as healthy",
                        slots.len(),
                        secs
                    ),
                );
                self.now
            }
        };
        let until = add_secs(started, secs);
        if until <= self.now {
            return Step::Completed;
        }
        if let CheckVerdict::Failed(why, slot) = self.checks_verdict(rollout, slots, Phase::Bake) {
            let message = format!("{version} during the bake window: {why}");
            return self.check_failed(rollout, message, slot);
        }
        rollout.bake_until = Some(until);
        self.wakeups.push(until);
        Step::Wait(None)
    }

    /// The last batch is healthy: the update revision becomes the current one.
    fn complete(&mut self, rollout: &mut RolloutState) {
        let target = &rollout.target;
        self.event(
            EventType::Normal,
            EventReason::RolloutCompleted,
            format!(
                "{} (revision {}) is healthy on all {} instances",
                target.version,
                target.revision,
                rollout.unpinned.len()
            ),
        );
        rollout.stable = Some(target.clone());
        rollout.mode = Mode::Steady;
        rollout.batch.pause_started_at = None;
        rollout.batch.bake_started_at = None;
    }

    /// A runtime action that had nothing to act on: a Warning event saying why.
    pub(super) fn ignored(&mut self, action: &str, why: &str) {
        self.event(
            EventType::Warning,
            EventReason::ActionIgnored,
            format!("{action} requested, nothing done: {why}"),
        );
    }

    /// `baton.dev/promote-full`: the rest of the instances move in one last batch, with no
    /// more pauses.
    /// Returns whether it ended a bake window.
    pub(super) fn promote_full(&mut self, mode: Mode, batch: &mut BatchStatus, target: &RevisionInfo) -> bool {
        if mode != Mode::Rollout {
            let why = match mode {
                Mode::Steady => format!("no rollout in progress: {} is rolled out", target.version),
                _ => format!(
                    "the rollout of {} failed; `baton rollout retry` rolls it out again",
                    target.version
                ),
            };
            self.ignored("full promotion", &why);
            return false;
        }
        if batch.bake_started_at.is_some() {
            self.event(
                EventType::Normal,
                EventReason::Promoted,
                format!(
                    "{} fully promoted ({}): the bake window ends early",
                    target.version,
                    crate::api::rollout::annotations::PROMOTE_FULL
                ),
            );
            return true;
        }
        let (from, total) = (batch.current, batch.total);
        if from < total || batch.pause_started_at.is_some() {
            batch.current = total;
            batch.started_at = Some(MicroTime(self.now));
            batch.pause_started_at = None;
        }
        self.event(
            EventType::Normal,
            EventReason::Promoted,
            format!(
                "{} fully promoted ({}) at batch {from}/{total}: every remaining instance moves now, with no more pauses",
                target.version,
                crate::api::rollout::annotations::PROMOTE_FULL
            ),
        );
        false
    }

    /// Records a failed batch (and whether it is rolled back), with its events.
    fn fail(
        &mut self,
        reason: FailureReason,
        message: String,
        rollout: &RolloutState,
        instances: &[(i32, String)],
    ) -> FailedUpdate {
        self.fail_as(reason, message, rollout, instances, true)
    }

    /// [`Self::fail`], rolled back only when `may_roll_back` (and `autoRollback`).
    fn fail_as(
        &mut self,
        reason: FailureReason,
        message: String,
        rollout: &RolloutState,
        instances: &[(i32, String)],
        may_roll_back: bool,
    ) -> FailedUpdate {
        let stable = rollout.stable.as_ref();
        let rolled_back = may_roll_back && self.spec.auto_rollback && stable.is_some();
        let batch = Some(rollout.batch.current);
        self.batch_event(EventType::Warning, EventReason::BatchFailed, message.clone(), batch);
        if let (true, Some(s)) = (rolled_back, stable) {
            self.event(
                EventType::Warning,
                EventReason::RollingBack,
                format!(
                    "rolling every instance back to {} (revision {}): {message}",
                    s.version, s.revision
                ),
            );
        }
        FailedUpdate {
            revision: rollout.target.name.clone(),
            version: rollout.target.version.clone(),
            reason,
            message,
            instances: instances
                .iter()
                .map(|(slot, _)| slot_name(&self.input.name, *slot))
                .collect(),
            rolled_back,
            batch: rollout.batch.current,
            at: Some(Time(self.now)),
        }
    }

    /// The `count` unpinned slots that make up batch `k`: the slots it names, then the
    /// cheapest others, slots named by a later batch last.
    pub(super) fn choose(&self, rollout: &RolloutState, k: usize, count: usize) -> BTreeSet<i32> {
        let (unpinned, target, stable) = (&rollout.unpinned, &rollout.target, rollout.stable.as_ref());
        let named = rollout.batches.named_in(k);
        let later = rollout.batches.named_later(k);
        let mut ranked: Vec<(u8, i32)> = unpinned
            .iter()
            .filter(|slot| !named.contains(slot))
            .map(|slot| {
                let pods = self.slots.get(slot);
                let live = pods.map(|p| p.live.as_slice()).unwrap_or(&[]);
                let class = if later.contains(slot) {
                    3
                } else if live.iter().any(|p| p.revision_hash == target.hash) {
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
        let rest = count.saturating_sub(named.len());
        named
            .iter()
            .copied()
            .chain(ranked.into_iter().take(rest).map(|(_, s)| s))
            .collect()
    }

    /// The (crashing, waiting) slots of a batch, each with a description.
    fn batch_health(&mut self, chosen: &BTreeSet<i32>, target: &RevisionInfo) -> (SlotList, SlotList) {
        let mut crashing = Vec::new();
        let mut waiting = Vec::new();
        for slot in chosen {
            match self.slot_health(*slot, target) {
                SlotHealth::Ok => {}
                SlotHealth::Waiting(w) => waiting.push((*slot, w)),
                SlotHealth::Crashing(c) => crashing.push((*slot, c)),
            }
        }
        (crashing, waiting)
    }
}
