//! Checks per batch and bake window (`spec.checks`), as facts and wishes: the planner says which
//! check runs it wants ([`CheckRun`], in [`super::Plan::checks`]) and reads how the runs it
//! wanted are doing ([`CheckProgress`], in [`super::PlanInput::checks`]). The shell makes the
//! requests, in tasks of their own, and keeps their progress in memory only: a run it does not
//! know (after a restart) starts again from its first attempt.
//!
//! A run is keyed by the update revision, the phase (`b<k>` for batch k, `bake<r>` for round r
//! of the bake window), the check and the pod it targets (`-` for a check that runs once per
//! batch): a replaced pod, a new batch or a new bake round is a new run.
//!
//! The bake window runs each `http` and `prometheus` check again and again: once round r of a
//! run has passed, round r + 1 is wanted (its first attempt `intervalSeconds` later, at least a
//! second), until the window ends. The round is read from the shell's memory (the highest round
//! it reports), so after a restart the rounds start again from the first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::batches::RolloutState;
use super::hooks::JobVerdict;
use super::{slot_name, Planner, RevisionInfo};
use crate::api::rollout::checks::placeholders;
use crate::api::rollout::{Check, JobTemplate};

/// A check run the planner wants: the shell starts it when it has no run under `key`, and
/// cancels the runs no plan wants any more.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRun {
    pub key: String,
    /// The check's name.
    pub name: String,
    /// The instance it targets, for a check that runs per pod.
    pub target: Option<String>,
    /// The check's template (an `http` URL, a `prometheus` query) with its placeholders filled
    /// in.
    pub rendered: String,
    pub check: Check,
    /// Wait this long before the first attempt (a bake round after the first).
    pub delay: Duration,
}

/// Whose runs: a batch's (1-based) or the bake window's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Batch(usize),
    Bake,
}

/// The phase part of a bake round's key.
fn bake_phase(round: u32) -> String {
    format!("bake{round}")
}

/// The pause before the first attempt of bake round `round`: none for the first, then the
/// check's interval (at least a second: a check that passes at once must not spin).
fn round_delay(check: &Check, round: u32) -> Duration {
    if round <= 1 {
        return Duration::ZERO;
    }
    Duration::from_secs(u64::try_from(check.interval_seconds.max(1)).unwrap_or(1))
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Running,
    Passed,
    Failed,
}

/// How a run is doing, as the shell reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckProgress {
    pub attempts: i32,
    pub failures: i32,
    /// The last attempt's result, for people (`HTTP 200`, `HTTP 503 (expected 200)`).
    pub last: Option<String>,
    pub outcome: CheckOutcome,
}

/// The outcome after `attempts` attempts of which `failures` failed: passed once
/// `count - failureLimit` succeeded, failed once more than `failureLimit` failed.
pub fn check_outcome(check: &Check, attempts: i32, failures: i32) -> CheckOutcome {
    let limit = check.failure_limit.max(0);
    let needed = (check.count.max(1) - limit).max(1);
    if failures > limit {
        CheckOutcome::Failed
    } else if attempts - failures >= needed {
        CheckOutcome::Passed
    } else if attempts >= check.count.max(1) {
        // Cannot happen with failureLimit < count, but never run past `count`.
        CheckOutcome::Failed
    } else {
        CheckOutcome::Running
    }
}

/// What the checks of a batch (or the bake) say.
pub(super) enum CheckVerdict {
    Passed,
    /// Runs not finished, described.
    Waiting(Vec<String>),
    /// A run failed: its description, and the slot it targeted, if any.
    Failed(String, Option<i32>),
}

fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(template.to_string(), |u, (k, v)| u.replace(k, v))
}

impl<'a> Planner<'a> {
    /// The latest bake round the shell reports for each (check, target) of revision `hash`:
    /// its number and progress.
    fn bake_rounds(&self, hash: &str) -> BTreeMap<(&'a str, &'a str), (u32, &'a CheckProgress)> {
        let input: &'a super::PlanInput = self.input;
        let mut latest: BTreeMap<(&'a str, &'a str), (u32, &'a CheckProgress)> = BTreeMap::new();
        for (key, progress) in &input.checks {
            let mut parts = key.splitn(4, '/');
            let (Some(h), Some(phase), Some(check), Some(target)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(round) = phase.strip_prefix("bake").and_then(|r| r.parse::<u32>().ok()) else {
                continue;
            };
            if h != hash {
                continue;
            }
            let entry = latest.entry((check, target)).or_insert((round, progress));
            if round > entry.0 {
                *entry = (round, progress);
            }
        }
        latest
    }

    /// The checks of `phase` over `slots` (their pods of the update revision): the runs wanted
    /// (recorded in `self.check_runs`) and what they say.
    pub(super) fn checks_verdict(
        &mut self,
        rollout: &RolloutState,
        slots: &BTreeSet<i32>,
        phase: Phase,
    ) -> CheckVerdict {
        let target = &rollout.target;
        let mut tally = Tally::default();
        let rounds = match phase {
            Phase::Bake => self.bake_rounds(&target.hash),
            Phase::Batch(_) => BTreeMap::new(),
        };
        let spec = self.spec;
        for check in &spec.checks {
            if let Some(job) = &check.job {
                self.job_check(target, check, job, phase, &mut tally);
                continue;
            }
            let Some(template) = check.template() else { continue };
            for (slot, on_pod, rendered) in self.rendered_runs(target, check, template, slots, &mut tally) {
                let (key, delay, progress) = self.run_key(&target.hash, check, &on_pod, phase, &rounds);
                let on = slot
                    .map(|s| format!(" on {}", slot_name(&self.input.name, s)))
                    .unwrap_or_default();
                tally.judge(check, &on, slot, progress);
                self.check_runs.push(CheckRun {
                    key,
                    name: check.name.clone(),
                    target: slot.map(|s| slot_name(&self.input.name, s)),
                    rendered,
                    check: check.clone(),
                    delay,
                });
            }
        }
        match (tally.failed, tally.waiting.is_empty()) {
            (Some((message, slot)), _) => CheckVerdict::Failed(message, slot),
            (None, true) => CheckVerdict::Passed,
            (None, false) => CheckVerdict::Waiting(tally.waiting),
        }
    }

    /// A `job` check: one Job per batch, and one for the whole bake window (a Job per round
    /// would pile up until the revision is pruned).
    fn job_check(&mut self, target: &RevisionInfo, check: &Check, job: &JobTemplate, phase: Phase, tally: &mut Tally) {
        let job_phase = match phase {
            Phase::Batch(k) => k.to_string(),
            Phase::Bake => "bake".to_string(),
        };
        match self.check_job_verdict(target, &check.name, &job_phase, job) {
            JobVerdict::Passed => {}
            JobVerdict::Waiting(j) => tally.waiting.push(format!("check {} (Job {j})", check.name)),
            JobVerdict::Failed(why) => {
                tally
                    .failed
                    .get_or_insert((format!("check {} failed: {why}", check.name), None));
            }
        }
    }

    /// The runs of an `http` or `prometheus` check: (slot, pod or `-`, template filled in),
    /// one per pod of `slots` for a per-pod check (a pod without an IP yet waits), else one.
    fn rendered_runs(
        &self,
        target: &RevisionInfo,
        check: &Check,
        template: &str,
        slots: &BTreeSet<i32>,
        tally: &mut Tally,
    ) -> Vec<(Option<i32>, String, String)> {
        let name = self.input.name.as_str();
        let common = [
            (placeholders::VERSION, target.version.as_str()),
            (placeholders::NAMESPACE, self.input.namespace.as_str()),
            (placeholders::ROLLOUT, name),
        ];
        if !check.per_pod() {
            return vec![(None, "-".to_string(), fill(template, &common))];
        }
        let mut runs = Vec::new();
        for slot in slots {
            let instance = slot_name(name, *slot);
            let Some(pod) = self.slots.get(slot).and_then(|p| p.live_with(&target.hash)) else {
                tally
                    .waiting
                    .push(format!("check {} on {instance} (no pod)", check.name));
                continue;
            };
            let Some(ip) = pod.ip.as_deref() else {
                tally
                    .waiting
                    .push(format!("check {} on {instance} (pod has no IP yet)", check.name));
                continue;
            };
            let mut vars = vec![
                (placeholders::POD_IP, ip),
                (placeholders::POD, pod.name.as_str()),
                (placeholders::INSTANCE, instance.as_str()),
            ];
            vars.extend(common);
            runs.push((Some(*slot), pod.name.clone(), fill(template, &vars)));
        }
        runs
    }

    /// The key of the run of `check` on `on_pod` in `phase`, the pause before its first
    /// attempt, and its progress: a batch's run has one key; in the bake, the latest round
    /// reported, or the next one once that passed.
    fn run_key(
        &self,
        hash: &str,
        check: &Check,
        on_pod: &str,
        phase: Phase,
        rounds: &BTreeMap<(&'a str, &'a str), (u32, &'a CheckProgress)>,
    ) -> (String, Duration, Option<&'a CheckProgress>) {
        let input: &'a super::PlanInput = self.input;
        let key = |phase_key: &str| format!("{hash}/{phase_key}/{}/{on_pod}", check.name);
        match phase {
            Phase::Batch(k) => {
                let key = key(&format!("b{k}"));
                let progress = input.checks.get(&key);
                (key, Duration::ZERO, progress)
            }
            Phase::Bake => {
                let (round, progress) = match rounds.get(&(check.name.as_str(), on_pod)) {
                    None => (1, None),
                    Some((r, p)) if p.outcome == CheckOutcome::Passed => (r + 1, None),
                    Some((r, p)) => (*r, Some(*p)),
                };
                (key(&bake_phase(round)), round_delay(check, round), progress)
            }
        }
    }
}

/// What the runs of a phase said so far: those not finished (described) and the first failure.
#[derive(Default)]
struct Tally {
    waiting: Vec<String>,
    failed: Option<(String, Option<i32>)>,
}

impl Tally {
    /// A run of `check` (` on <instance>`, on `slot`) as its `progress` says.
    fn judge(&mut self, check: &Check, on: &str, slot: Option<i32>, progress: Option<&CheckProgress>) {
        match progress {
            Some(p) if p.outcome == CheckOutcome::Failed => {
                let last = p.last.as_deref().unwrap_or("no result");
                self.failed.get_or_insert((
                    format!(
                        "check {}{on} failed: {} of {} attempts failed, last: {last}",
                        check.name, p.failures, p.attempts
                    ),
                    slot,
                ));
            }
            Some(p) if p.outcome == CheckOutcome::Passed => {}
            progress => {
                let attempt = progress.map_or(0, |p| p.attempts);
                let last = progress
                    .and_then(|p| p.last.as_deref())
                    .map(|l| format!(", last: {l}"))
                    .unwrap_or_default();
                self.waiting.push(format!(
                    "check {}{on} (attempt {attempt}/{}{last})",
                    check.name, check.count
                ));
            }
        }
    }
}
