//! Hooks (`spec.hooks`) and `job` checks as facts and actions: a Job of the Rollout is an
//! observed fact ([`ObservedJob`]: running, succeeded, or failed with why), creating or deleting
//! one is an action ([`super::Action::CreateJob`], [`super::Action::DeleteJob`]). The shell
//! creates the Jobs and reads them back from its watch cache.
//!
//! A hook's Job is found by its labels (revision hash and hook), a check's by its name: a Job
//! that exists (whatever its state) is never created again for the same revision, across
//! restarts and failovers. A failed Job is deleted only by a retry (`baton rollout retry`),
//! which runs it again, and every Job goes with its revision when that is pruned.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::{Action, EventType, Planner, RevisionInfo};
use crate::api::rollout::hooks::hook_names;
use crate::api::rollout::{labels, EventReason, JobTemplate};

/// One Job of the Rollout (selected by label `baton.dev/rollout`, owned by the Rollout).
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedJob {
    pub name: String,
    /// Label `baton.dev/revision-hash`.
    pub revision_hash: String,
    /// Label `baton.dev/hook`, on a hook's Job.
    pub hook: Option<String>,
    pub state: JobState,
}

/// Where a Job stands.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    /// Neither complete nor failed yet.
    Running,
    /// Condition `Complete`; `completionTime`.
    Succeeded { at: Option<Timestamp> },
    /// Condition `Failed`: why, for people (the Job's reason, its failed pod and how that
    /// pod's container ended).
    Failed { why: String },
}

/// Name of a hook's Job: `<rollout>-<hash>-pre` or `<rollout>-<hash>-post`.
pub fn hook_job_name(rollout: &str, hash: &str, hook: &str) -> String {
    let suffix = if hook == hook_names::PRE_ROLLOUT { "pre" } else { "post" };
    format!("{rollout}-{hash}-{suffix}")
}

/// Name of a `job` check's Job for a phase (`1`, `2`, … for a batch, `bake`):
/// `<rollout>-<hash>-<check>-<phase>`.
pub fn check_job_name(rollout: &str, hash: &str, check: &str, phase: &str) -> String {
    format!("{rollout}-{hash}-{check}-{phase}")
}

/// Labels of a Job of the Rollout, for revision `hash`, plus `(key, value)`.
pub fn job_labels(rollout: &str, hash: &str, (key, value): (&str, &str)) -> BTreeMap<String, String> {
    [
        (labels::ROLLOUT, rollout),
        (labels::REVISION_HASH, hash),
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
        (key, value),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// What a Job says.
pub(super) enum JobVerdict {
    Passed,
    /// Running (or about to be created or recreated): its name.
    Waiting(String),
    /// Failed: why.
    Failed(String),
}

impl Planner<'_> {
    /// The Job found by `find`, created (as `name` with `labels`) when there is none.
    fn job_verdict(
        &mut self,
        name: String,
        find: impl Fn(&ObservedJob) -> bool,
        labels: BTreeMap<String, String>,
        job: &JobTemplate,
    ) -> JobVerdict {
        if self.deleting_jobs.contains(&name) {
            return JobVerdict::Waiting(name);
        }
        match self.input.jobs.iter().find(|j| find(j)) {
            Some(j) => match &j.state {
                JobState::Running => JobVerdict::Waiting(j.name.clone()),
                JobState::Succeeded { .. } => JobVerdict::Passed,
                JobState::Failed { why } => JobVerdict::Failed(why.clone()),
            },
            None => {
                self.actions.push(Action::CreateJob {
                    name: name.clone(),
                    labels,
                    job: std::sync::Arc::new(job.clone()),
                });
                JobVerdict::Waiting(name)
            }
        }
    }

    /// The hook `hook` of `target` (Passed when the spec has none); creates its Job when absent,
    /// with a `HookStarted` event.
    pub(super) fn hook_verdict(&mut self, target: &RevisionInfo, hook: &'static str) -> JobVerdict {
        let spec = self.spec;
        let template = match hook {
            hook_names::PRE_ROLLOUT => spec.hooks.pre_rollout.as_ref(),
            _ => spec.hooks.post_rollout.as_ref(),
        };
        let Some(template) = template else {
            return JobVerdict::Passed;
        };
        let rollout = &self.input.name;
        let name = hook_job_name(rollout, &target.hash, hook);
        let labels = job_labels(rollout, &target.hash, (labels::HOOK, hook));
        let hash = target.hash.clone();
        let creates = self.actions.len();
        let verdict = self.job_verdict(
            name.clone(),
            |j| j.revision_hash == hash && j.hook.as_deref() == Some(hook),
            labels,
            template,
        );
        if self.actions.len() > creates {
            self.event(
                EventType::Normal,
                EventReason::HookStarted,
                format!("hook {hook} of {} started: Job {name}", target.version),
            );
        }
        verdict
    }

    /// The `job` check `check` of `target` in `phase`.
    pub(super) fn check_job_verdict(
        &mut self,
        target: &RevisionInfo,
        check: &str,
        phase: &str,
        job: &JobTemplate,
    ) -> JobVerdict {
        let rollout = &self.input.name;
        let name = check_job_name(rollout, &target.hash, check, phase);
        let labels = job_labels(rollout, &target.hash, (labels::CHECK, check));
        let wanted = name.clone();
        self.job_verdict(name, |j| j.name == wanted, labels, job)
    }

    /// Has the preRollout hook of `target` succeeded (or is there none)? And when.
    pub(super) fn pre_hook_done(&self, target: &RevisionInfo) -> (bool, Option<Timestamp>) {
        if self.spec.hooks.pre_rollout.is_none() {
            return (true, None);
        }
        let job = self
            .input
            .jobs
            .iter()
            .find(|j| j.revision_hash == target.hash && j.hook.as_deref() == Some(hook_names::PRE_ROLLOUT));
        match job {
            Some(j) if !self.deleting_jobs.contains(&j.name) => match j.state {
                JobState::Succeeded { at } => (true, at),
                _ => (false, None),
            },
            _ => (false, None),
        }
    }

    /// A retry: the failed Jobs of `target` are deleted, to run again once they are gone.
    pub(super) fn delete_failed_jobs(&mut self, target: &RevisionInfo) {
        let failed: Vec<String> = self
            .input
            .jobs
            .iter()
            .filter(|j| j.revision_hash == target.hash && matches!(j.state, JobState::Failed { .. }))
            .map(|j| j.name.clone())
            .collect();
        for name in failed {
            self.actions.push(Action::DeleteJob { name: name.clone() });
            self.deleting_jobs.insert(name);
        }
    }

    /// Jobs of revisions that are gone (or pruned by this plan, `pruned`) go with them; the
    /// update revision's never do.
    pub(super) fn prune_jobs(&mut self, target: &RevisionInfo, pruned: &BTreeSet<String>) {
        let mut kept: BTreeSet<&str> = self
            .input
            .revisions
            .iter()
            .filter(|r| !pruned.contains(&r.name))
            .map(|r| r.hash.as_str())
            .collect();
        kept.insert(target.hash.as_str());
        let gone: Vec<String> = self
            .input
            .jobs
            .iter()
            .filter(|j| !kept.contains(j.revision_hash.as_str()) && !self.deleting_jobs.contains(&j.name))
            .map(|j| j.name.clone())
            .collect();
        for name in gone {
            self.actions.push(Action::DeleteJob { name: name.clone() });
            self.deleting_jobs.insert(name);
        }
    }
}
