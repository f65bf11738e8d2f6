//! Batches: where the rollout stands (update and last healthy revision, batch, failure, mode),
//! how a batch progresses (health, pauses, promotion, the progress deadline) and how it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observed::SlotHealth;
use super::requests::RequestedActions;
use super::status::CONDITION_PROGRESSING;
use super::{add_duration, add_secs, batch_counts, EventType, Planner, RevisionInfo};
use crate::api::rollout::{parse_duration, BatchStatus, FailedUpdate};

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

        if requests.retry {
            self.retry_failed(&mut failed, &mut batch, &target, total_batches);
        }
        if requests.abort && rolling {
            self.abort_rollout(&mut failed, &batch, &target, stable.as_ref(), total_batches);
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
        let pause = spec
            .strategy
            .pause
            .as_ref()
            .map(|p| p.duration.as_deref().and_then(|d| parse_duration(d).ok()));
        let mut completed_now = false;
        if *mode == Mode::Rollout && !spec.paused {
            loop {
                let k = usize::try_from(batch.current).unwrap_or(1).max(1);
                let count = counts.get(k - 1).copied().unwrap_or(unpinned.len());
                let chosen = self.choose(unpinned, count, target, stable.as_ref());
                let (crashing, waiting) = self.batch_health(&chosen, target);
                *holdups = crashing.iter().chain(waiting.iter()).cloned().collect();
                if !crashing.is_empty() {
                    *failed = Some(self.fail(
                        "PodCrashLooping",
                        format!(
                            "batch {k}/{total_batches} of {}: {}",
                            target.version,
                            crashing.join(", ")
                        ),
                        target,
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
                                *pause_until = Some(until);
                                false
                            }
                        }
                        Some(None) => {
                            *waiting_promotion = true;
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
                        if let Some(until) = *pause_until {
                            self.wakeups.push(until);
                        }
                        break;
                    }
                    promote = false;
                    *waiting_promotion = false;
                    *pause_until = None;
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
                        *failed = Some(self.fail(
                            "ProgressDeadlineExceeded",
                            format!(
                                "batch {k}/{total_batches} of {} not healthy within {}s: {}",
                                target.version,
                                spec.progress_deadline_seconds,
                                waiting.join(", ")
                            ),
                            target,
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
}
