//! Checks per batch and bake window (`spec.checks`), as facts and wishes: the planner says which
//! check runs it wants ([`CheckRun`], in [`super::Plan::checks`]) and reads how the runs it
//! wanted are doing ([`CheckProgress`], in [`super::PlanInput::checks`]). The shell makes the
//! requests, in tasks of their own, and keeps their progress in memory only: a run it does not
//! know (after a restart) starts again from its first attempt.
//!
//! A run is keyed by the update revision, the phase (`b<k>` for batch k, `bake`), the check and
//! the pod it targets (`-` for a check that runs once per batch): a replaced pod or a new batch
//! is a new run.

use std::collections::BTreeSet;

use super::batches::RolloutState;
use super::hooks::JobVerdict;
use super::{slot_name, Planner};
use crate::api::rollout::checks::placeholders;
use crate::api::rollout::Check;

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
pub(super) enum Verdict {
    Passed,
    /// Runs not finished, described.
    Waiting(Vec<String>),
    /// A run failed: its description, and the slot it targeted, if any.
    Failed(String, Option<i32>),
}

fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(template.to_string(), |u, (k, v)| u.replace(k, v))
}

impl Planner<'_> {
    /// The checks of `phase` over `slots` (their pods of the update revision): the runs wanted
    /// (recorded in `self.check_runs`) and what they say.
    pub(super) fn checks_verdict(&mut self, rollout: &RolloutState, slots: &BTreeSet<i32>, phase: &str) -> Verdict {
        let target = &rollout.target;
        let name = self.input.name.clone();
        let mut waiting = Vec::new();
        let mut failed = None;
        let spec = self.spec;
        for check in &spec.checks {
            if let Some(job) = &check.job {
                let phase = phase.strip_prefix('b').unwrap_or(phase);
                match self.check_job_verdict(target, &check.name, phase, job) {
                    JobVerdict::Passed => {}
                    JobVerdict::Waiting(j) => waiting.push(format!("check {} (Job {j})", check.name)),
                    JobVerdict::Failed(why) => {
                        failed.get_or_insert((format!("check {} failed: {why}", check.name), None));
                    }
                }
                continue;
            }
            let Some(template) = check.template() else { continue };
            let common = [
                (placeholders::VERSION, target.version.as_str()),
                (placeholders::NAMESPACE, self.input.namespace.as_str()),
                (placeholders::ROLLOUT, name.as_str()),
            ];
            let mut runs: Vec<(Option<i32>, String, String)> = Vec::new();
            if check.per_pod() {
                for slot in slots {
                    let instance = slot_name(&name, *slot);
                    let pod = self.slots.get(slot).and_then(|p| p.live_with(&target.hash));
                    let Some(pod) = pod else {
                        waiting.push(format!("check {} on {instance} (no pod)", check.name));
                        continue;
                    };
                    let Some(ip) = pod.ip.as_deref() else {
                        waiting.push(format!("check {} on {instance} (pod has no IP yet)", check.name));
                        continue;
                    };
                    let mut vars = vec![
                        (placeholders::POD_IP, ip),
                        (placeholders::POD, pod.name.as_str()),
                        (placeholders::INSTANCE, instance.as_str()),
                    ];
                    vars.extend(common);
                    let key = format!("{}/{phase}/{}/{}", target.hash, check.name, pod.name);
                    runs.push((Some(*slot), key, fill(template, &vars)));
                }
            } else {
                let key = format!("{}/{phase}/{}/-", target.hash, check.name);
                runs.push((None, key, fill(template, &common)));
            }
            for (slot, key, rendered) in runs {
                let on = slot.map(|s| format!(" on {}", slot_name(&name, s))).unwrap_or_default();
                match self.input.checks.get(&key) {
                    Some(p) if p.outcome == CheckOutcome::Failed => {
                        let last = p.last.as_deref().unwrap_or("no result");
                        failed.get_or_insert((
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
                        waiting.push(format!(
                            "check {}{on} (attempt {attempt}/{}{last})",
                            check.name, check.count
                        ));
                    }
                }
                self.check_runs.push(CheckRun {
                    key,
                    name: check.name.clone(),
                    target: slot.map(|s| slot_name(&name, s)),
                    rendered,
                    check: check.clone(),
                });
            }
        }
        match (failed, waiting.is_empty()) {
            (Some((message, slot)), _) => Verdict::Failed(message, slot),
            (None, true) => Verdict::Passed,
            (None, false) => Verdict::Waiting(waiting),
        }
    }
}
