//! Batches: where the rollout stands (update and last healthy revision, batch, failure, mode),
//! how a batch progresses (health, pauses, promotion, the progress deadline) and how it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

use super::observed::SlotHealth;
use super::requests::RequestedActions;
use super::{add_duration, add_secs, batch_counts, slot_name, EventType, Planner, RevisionInfo};
use crate::api::rollout::{BatchStatus, ConditionType, EventReason, FailedUpdate, FailureReason, PauseMode, Reason};

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
    /// Cumulative batch sizes ([`batch_counts`]; one batch on a first rollout).
    pub(super) counts: Vec<usize>,
    pub(super) total_batches: i32,
    pub(super) batch: BatchStatus,
    /// The update revision's recorded failure, if any.
    pub(super) failed: Option<FailedUpdate>,
    pub(super) mode: Mode,
    /// A healthy batch waits for `baton promote`.
    pub(super) waiting_promotion: bool,
    /// A healthy batch pauses until then.
    pub(super) pause_until: Option<Timestamp>,
    /// The current batch's instances that are not healthy yet, described.
    pub(super) holdups: Vec<String>,
}

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
        let spec = self.spec;
        let now = self.now;

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
        if requests.restart {
            self.event(
                EventType::Normal,
                EventReason::Restarted,
                format!(
                    "restart requested (baton.dev/restartedAt): every instance moves to revision {} of {}",
                    target.revision, target.version
                ),
            );
        }
        if rolling && new_target && !unpinned.is_empty() {
            batch = BatchStatus {
                current: 1,
                total: total_batches,
                started_at: Some(MicroTime(now)),
                pause_started_at: None,
            };
            let from = stable
                .as_ref()
                .map(|s| format!(" from {}", s.version))
                .unwrap_or_default();
            self.event(
                EventType::Normal,
                EventReason::BatchStarted,
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
            batch.started_at = Some(MicroTime(now));
        }
        let was_spec_paused = self.prior_reason(ConditionType::Progressing) == Some(Reason::RolloutPaused);
        if was_spec_paused && !spec.paused {
            batch.started_at = Some(MicroTime(now));
            self.event(
                EventType::Normal,
                EventReason::Resumed,
                "rollout resumed (spec.paused is false)",
            );
        }
        if spec.paused && !was_spec_paused {
            self.event(
                EventType::Normal,
                EventReason::Paused,
                "rollout paused (spec.paused is true); no instance is replaced",
            );
        }

        if requests.retry {
            self.retry_failed(&mut failed, &mut batch, &target, total_batches);
        }
        if requests.abort {
            self.abort_rollout(&mut failed, &batch, &target, stable.as_ref(), rolling);
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
        if requests.promote_full {
            self.promote_full(mode, &mut batch, &target, total_batches);
        }
        RolloutState {
            target,
            stable,
            known,
            pins,
            unpinned,
            counts,
            total_batches,
            batch,
            failed,
            mode,
            waiting_promotion: false,
            pause_until: None,
            holdups: Vec::new(),
        }
    }

    /// Moves the batches on as far as health, pauses and `promote` allow; fails the batch on a
    /// crash loop or at the progress deadline, and completes the rollout after the last batch.
    pub(super) fn progress_batches(&mut self, rollout: &mut RolloutState, promote: bool) {
        let spec = self.spec;
        let now = self.now;
        let mut promote = promote;
        let total_batches = rollout.total_batches;
        let RolloutState {
            target,
            stable,
            unpinned,
            counts,
            batch,
            failed,
            mode,
            waiting_promotion,
            pause_until,
            holdups,
            ..
        } = rollout;

        // Batch progression.
        let pause = spec.strategy.pause_mode();
        let mut completed_now = false;
        let mut promote_refused = None;
        if *mode == Mode::Rollout && !spec.paused {
            loop {
                let k = usize::try_from(batch.current).unwrap_or(1).max(1);
                let count = counts.get(k - 1).copied().unwrap_or(unpinned.len());
                let chosen = self.choose(unpinned, count, target, stable.as_ref());
                let (crashing, waiting) = self.batch_health(&chosen, target);
                *holdups = crashing.iter().chain(waiting.iter()).map(|(_, d)| d.clone()).collect();
                if !crashing.is_empty() {
                    *failed = Some(self.fail(
                        FailureReason::PodCrashLooping,
                        format!(
                            "batch {k}/{total_batches} of {}: {}",
                            target.version,
                            describe(&crashing)
                        ),
                        target,
                        stable.as_ref(),
                        (batch.current, &crashing),
                    ));
                    break;
                }
                if waiting.is_empty() {
                    if batch.current >= total_batches {
                        completed_now = true;
                        break;
                    }
                    if batch.pause_started_at.is_none() {
                        batch.pause_started_at = Some(MicroTime(now));
                        let what = match pause {
                            PauseMode::None => "starting the next batch".to_string(),
                            PauseMode::Timed(d) => format!("pausing for {}", human(d)),
                            PauseMode::Manual => "waiting for promotion (baton rollout promote)".to_string(),
                        };
                        self.event(
                            EventType::Normal,
                            EventReason::BatchCompleted,
                            format!("batch {k}/{total_batches} of {} healthy; {what}", target.version),
                        );
                    }
                    let paused_at = batch.pause_started_at.as_ref().map_or(now, |t| t.0);
                    let mut advance = match pause {
                        PauseMode::None => true,
                        PauseMode::Timed(d) => {
                            let until = add_duration(paused_at, d);
                            if until <= now {
                                true
                            } else {
                                *pause_until = Some(until);
                                false
                            }
                        }
                        PauseMode::Manual => {
                            *waiting_promotion = true;
                            false
                        }
                    };
                    if !advance && promote {
                        // A promotion is used up by the pause it ends.
                        promote = false;
                        advance = true;
                        self.event(
                            EventType::Normal,
                            EventReason::Promoted,
                            format!("batch {k}/{total_batches} promoted (baton.dev/promote)"),
                        );
                    }
                    if !advance {
                        if let Some(until) = *pause_until {
                            self.wakeups.push(until);
                        }
                        break;
                    }
                    *waiting_promotion = false;
                    *pause_until = None;
                    batch.current += 1;
                    batch.started_at = Some(MicroTime(now));
                    batch.pause_started_at = None;
                    let next = counts
                        .get(usize::try_from(batch.current).unwrap_or(1) - 1)
                        .copied()
                        .unwrap_or(unpinned.len());
                    self.event(
                        EventType::Normal,
                        EventReason::BatchStarted,
                        format!(
                            "batch {}/{total_batches} of {} (revision {}): {next} of {} instances",
                            batch.current,
                            target.version,
                            target.revision,
                            unpinned.len()
                        ),
                    );
                    continue;
                }
                // Not healthy: the progress deadline.
                let base = match (&batch.pause_started_at, pause) {
                    (Some(t), PauseMode::Timed(d)) => Some(add_duration(t.0, d)),
                    (Some(_), PauseMode::Manual) => None,
                    (Some(t), PauseMode::None) => Some(t.0),
                    (None, _) => batch.started_at.as_ref().map(|t| t.0),
                };
                if let Some(base) = base {
                    let deadline = add_secs(base, i64::from(spec.progress_deadline_seconds));
                    if deadline <= now {
                        *failed = Some(self.fail(
                            FailureReason::ProgressDeadlineExceeded,
                            format!(
                                "batch {k}/{total_batches} of {} not healthy within {}s: {}",
                                target.version,
                                spec.progress_deadline_seconds,
                                describe(&waiting)
                            ),
                            target,
                            stable.as_ref(),
                            (batch.current, &waiting),
                        ));
                    } else {
                        self.wakeups.push(deadline);
                    }
                }
                if promote {
                    promote_refused = Some(format!(
                        "batch {k}/{total_batches} of {} is not healthy yet, so there is no pause to end; `baton rollout promote --full` skips the remaining batches",
                        target.version
                    ));
                }
                break;
            }
            if completed_now {
                self.event(
                    EventType::Normal,
                    EventReason::RolloutCompleted,
                    format!(
                        "{} (revision {}) is healthy on all {} instances",
                        target.version,
                        target.revision,
                        unpinned.len()
                    ),
                );
                *stable = Some(target.clone());
                *mode = Mode::Steady;
                batch.pause_started_at = None;
            } else if let Some(f) = failed {
                *mode = if f.rolled_back && stable.is_some() {
                    Mode::Rollback
                } else {
                    Mode::Stopped
                };
            }
        }
        if *mode != Mode::Rollout {
            *waiting_promotion = false;
            *pause_until = None;
        }
        if promote && !spec.paused {
            let why = promote_refused.unwrap_or_else(|| match (*mode, pause) {
                (Mode::Rollout, PauseMode::None) => {
                    "the strategy has no pauses between batches; `baton rollout promote --full` skips the remaining batches".into()
                }
                (Mode::Rollout, _) => "no pause to end".into(),
                (Mode::Steady, _) => format!("no rollout in progress: {} is rolled out", target.version),
                (Mode::Rollback | Mode::Stopped, _) => format!(
                    "the rollout of {} failed; `baton rollout retry` rolls it out again",
                    target.version
                ),
            });
            self.ignored("promote", &why);
        }
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
    fn promote_full(&mut self, mode: Mode, batch: &mut BatchStatus, target: &RevisionInfo, total_batches: i32) {
        if mode != Mode::Rollout {
            let why = match mode {
                Mode::Steady => format!("no rollout in progress: {} is rolled out", target.version),
                _ => format!(
                    "the rollout of {} failed; `baton rollout retry` rolls it out again",
                    target.version
                ),
            };
            self.ignored("full promotion", &why);
            return;
        }
        let from = batch.current;
        if from < total_batches || batch.pause_started_at.is_some() {
            batch.current = total_batches;
            batch.started_at = Some(MicroTime(self.now));
            batch.pause_started_at = None;
        }
        self.event(
            EventType::Normal,
            EventReason::Promoted,
            format!(
                "{} fully promoted (baton.dev/promote-full) at batch {from}/{total_batches}: every remaining instance moves now, with no more pauses",
                target.version
            ),
        );
    }

    fn fail(
        &mut self,
        reason: FailureReason,
        message: String,
        target: &RevisionInfo,
        stable: Option<&RevisionInfo>,
        (batch, instances): (i32, &[(i32, String)]),
    ) -> FailedUpdate {
        let rolled_back = self.spec.auto_rollback && stable.is_some();
        self.event(EventType::Warning, EventReason::BatchFailed, message.clone());
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
            revision: target.name.clone(),
            version: target.version.clone(),
            reason,
            message,
            instances: instances
                .iter()
                .map(|(slot, _)| slot_name(&self.input.name, *slot))
                .collect(),
            rolled_back,
            batch,
            at: Some(Time(self.now)),
        }
    }

    /// The `count` unpinned slots that make up the current batch.
    pub(super) fn choose(
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
