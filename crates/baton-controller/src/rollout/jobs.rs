//! The shell of hooks and `job` checks: the planner's view of a Job of the Rollout
//! ([`observe_job`]: running, succeeded, or failed with its failed pod and how that pod's
//! container ended), and the Job a [`planner::Action::CreateJob`] makes ([`build_job`]).
//!
//! A Job's pods carry the Job's template labels, not the Rollout's, so they are not in the
//! operator's pod cache (which holds pods with the Rollout label only). They are read only when
//! a Job is seen failed, by one LIST of the pods its selector names, after the Job's failure
//! (a consistent read, so the failed pod's final state shows); the answer is kept per Job
//! ([`FailedJobPods`]), since a failed Job stays failed: nothing is read at rest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::Selector;
use kube::runtime::reflector::Store;
use kube::ResourceExt;

use crate::api::rollout::{labels, ConditionStatus, JobTemplate};
use crate::cache::owners::OwnerIndex;
use crate::error::{is_status, Result};
use crate::rollout::expectations::Expected;
use crate::rollout::planner::{Action, JobState, ObservedJob};

/// What reading a Rollout's Jobs takes: the Job cache and its owner index, the failed pods
/// already told, and a client for the one read of a failed Job's pods.
pub struct JobReads<'a> {
    pub client: &'a kube::Client,
    pub jobs: &'a Store<Job>,
    pub owners: &'a OwnerIndex<Job>,
    pub failed_pods: &'a FailedJobPods,
}

/// The planner's view of the Jobs of the Rollout of uid `uid` in `ns` (a failed one with its
/// failed pod, read from the API server the first time it is seen failed).
pub async fn own_jobs(reads: &JobReads<'_>, ns: &str, uid: &str) -> Result<Vec<ObservedJob>> {
    let mut jobs = reads.owners.owned_by(reads.jobs, uid);
    jobs.retain(|j| j.metadata.namespace.as_deref() == Some(ns));
    let mut observed = Vec::with_capacity(jobs.len());
    for job in jobs {
        let failed = job.metadata.deletion_timestamp.is_none() && failed_condition(&job).is_some();
        let failed_pod = match failed {
            true => Some(reads.failed_pods.describe(reads.client, reads.jobs, &job).await?),
            false => None,
        };
        observed.extend(observe_job(&job, failed_pod.as_deref()));
    }
    Ok(observed)
}

/// The failed pod of each failed Job, by Job uid, as [`failed_pod`] tells it.
#[derive(Default)]
pub struct FailedJobPods {
    by_job: Mutex<HashMap<String, String>>,
}

/// Past this many entries, those of Jobs no longer cached are dropped.
const FAILED_JOBS_KEPT: usize = 256;

impl FailedJobPods {
    /// How Job `job` (failed) failed, from its pods: read once, then remembered.
    async fn describe(
        &self,
        client: &kube::Client,
        cached: &kube::runtime::reflector::Store<Job>,
        job: &Job,
    ) -> Result<String> {
        let uid = job.uid().unwrap_or_default();
        if let Some(known) = self.lock().get(&uid) {
            return Ok(known.clone());
        }
        let ns = job.namespace().unwrap_or_default();
        let pods = job_pods(client, &ns, job).await?;
        let told = failed_pod(&pods);
        let mut by_job = self.lock();
        if by_job.len() >= FAILED_JOBS_KEPT {
            let live: std::collections::HashSet<String> = cached.state().iter().filter_map(|j| j.uid()).collect();
            by_job.retain(|k, _| live.contains(k));
        }
        by_job.insert(uid, told.clone());
        Ok(told)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.by_job.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pods of Job `job` in `ns`: those its selector names (what the Job controller counts)
/// and it owns.
async fn job_pods(client: &kube::Client, ns: &str, job: &Job) -> Result<Vec<Pod>> {
    let uid = job.uid().unwrap_or_default();
    // The API server fills the selector (`batch.kubernetes.io/controller-uid`, or
    // `controller-uid` before Kubernetes 1.27); the label is the fallback.
    let selector = job
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .and_then(|s| Selector::try_from(s).ok())
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("batch.kubernetes.io/controller-uid={uid}"));
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.owner_references().iter().any(|o| o.uid == uid))
        .collect())
}

/// Apply a [`Action::CreateJob`] or [`Action::DeleteJob`]; returns what the Job cache will
/// show of it.
pub async fn apply(
    client: &kube::Client,
    ns: &str,
    owner: &OwnerReference,
    action: &Action,
) -> Result<Option<Expected>> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    match action {
        Action::CreateJob { name, labels, job } => {
            let built = build_job(ns, name, labels, job, owner);
            match jobs.create(&PostParams::default(), &built).await {
                // Another reconcile (or controller) made it: found by its labels next time.
                Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => Ok(None),
                r => {
                    r?;
                    Ok(Some(Expected::JobCreated(name.clone())))
                }
            }
        }
        Action::DeleteJob { name } => {
            // A Job's pods go with it (the REST default for batch/v1 Jobs orphans them).
            match jobs.delete(name, &DeleteParams::background()).await {
                Err(e) if is_status(&e, 404) => {}
                r => {
                    r?;
                }
            }
            Ok(Some(Expected::JobDeleted(name.clone())))
        }
        _ => Ok(None),
    }
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
}

/// Job `job`'s condition `type_` when it is `True`.
fn true_condition<'a>(job: &'a Job, type_: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == ConditionStatus::True.as_str())
}

/// Job `job` has failed (and has not also completed): its `Failed` condition.
fn failed_condition(job: &Job) -> Option<&k8s_openapi::api::batch::v1::JobCondition> {
    if true_condition(job, "Complete").is_some() {
        return None;
    }
    true_condition(job, "Failed")
}

/// The planner's view of Job `job`, with how it failed (`failed_pod`, see [`failed_pod`]) when
/// it has; None for one being deleted or without its revision label.
pub fn observe_job(job: &Job, failed_pod: Option<&str>) -> Option<ObservedJob> {
    let meta = &job.metadata;
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let state = if true_condition(job, "Complete").is_some() {
        JobState::Succeeded {
            at: job
                .status
                .as_ref()
                .and_then(|s| s.completion_time.as_ref())
                .map(|t| t.0),
        }
    } else if let Some(c) = failed_condition(job) {
        let reason = c.reason.as_deref().unwrap_or("Failed");
        let message = c.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        let pod = failed_pod.unwrap_or("no failed pod left");
        JobState::Failed {
            why: format!("Job {} {reason}{message}; {pod}", job.name_any()),
        }
    } else {
        JobState::Running
    };
    Some(ObservedJob {
        name: job.name_any(),
        revision_hash: label(meta, labels::REVISION_HASH)?.to_string(),
        hook: label(meta, labels::HOOK).map(str::to_string),
        state,
    })
}

/// The Job's last failed pod and how its container ended, for people.
fn failed_pod(pods: &[Pod]) -> String {
    let ended = |p: &Pod| -> Option<(String, String)> {
        let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
        statuses.iter().find_map(|c| {
            let t = c
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .filter(|t| t.exit_code != 0)
                .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()))?;
            let reason = t.reason.as_deref().unwrap_or("terminated");
            Some((
                p.name_any(),
                format!("container {} ended with exit code {} ({reason})", c.name, t.exit_code),
            ))
        })
    };
    let mut failed: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") || ended(p).is_some())
        .collect();
    failed.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    match failed.last() {
        Some(p) => match ended(p) {
            Some((name, how)) => format!("failed pod {name}: {how}"),
            None => format!("failed pod {}", p.name_any()),
        },
        None => "no failed pod left".to_string(),
    }
}

/// Job `name` in `ns` from `job`, labelled `labels` and owned by the Rollout (`owner`): its pod
/// runs with `restartPolicy: Never` unless the template says otherwise. The pod keeps the
/// template's labels only (and the Job controller's): with the Rollout's, tools that list a
/// Rollout's pods by label would count it as an instance.
pub fn build_job(
    ns: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    job: &JobTemplate,
    owner: &OwnerReference,
) -> Job {
    let mut template = job.template.clone();
    if let Some(spec) = template.spec.as_mut() {
        spec.restart_policy.get_or_insert_with(|| "Never".to_string());
    }
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            template,
            backoff_limit: Some(job.backoff_limit()),
            active_deadline_seconds: Some(job.active_deadline_seconds()),
            ..JobSpec::default()
        }),
        status: None,
    }
}
