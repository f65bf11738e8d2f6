//! The shell of hooks and `job` checks: the planner's view of a Job of the Rollout
//! ([`observe_job`]: running, succeeded, or failed with its failed pod and how that pod's
//! container ended), and the Job a [`planner::Action::CreateJob`] makes ([`build_job`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;

use crate::api::rollout::{labels, ConditionStatus, JobTemplate};
use crate::error::{is_status, Result};
use crate::rollout::controller::Context;
use crate::rollout::expectations::Expected;
use crate::rollout::planner::{Action, JobState, ObservedJob};

/// The planner's view of the Jobs of the Rollout of uid `uid` in `ns` (each with its pods).
pub fn own_jobs(ctx: &Context, ns: &str, uid: &str) -> Vec<ObservedJob> {
    let mut jobs = ctx.owners.jobs.owned_by(&ctx.jobs, uid);
    jobs.retain(|j| j.metadata.namespace.as_deref() == Some(ns));
    jobs.iter()
        .filter_map(|j| {
            let pods = j
                .uid()
                .map(|juid| ctx.owners.pods.owned_by(&ctx.pods, &juid))
                .unwrap_or_default();
            observe_job(j, &pods)
        })
        .collect()
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

/// The planner's view of Job `job`, whose pods are `pods`; None for one being deleted or
/// without its revision label.
pub fn observe_job(job: &Job, pods: &[Arc<Pod>]) -> Option<ObservedJob> {
    let meta = &job.metadata;
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let status = job.status.as_ref();
    let condition = |type_: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == ConditionStatus::True.as_str())
    };
    let state = if condition("Complete").is_some() {
        JobState::Succeeded {
            at: status.and_then(|s| s.completion_time.as_ref()).map(|t| t.0),
        }
    } else if let Some(c) = condition("Failed") {
        let reason = c.reason.as_deref().unwrap_or("Failed");
        let message = c.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        JobState::Failed {
            why: format!("Job {} {reason}{message}; {}", job.name_any(), failed_pod(pods)),
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
fn failed_pod(pods: &[Arc<Pod>]) -> String {
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
    let mut failed: Vec<&Arc<Pod>> = pods
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
