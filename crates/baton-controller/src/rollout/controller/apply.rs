//! The writes of a reconcile: the plan's actions (revisions, pods, Jobs, drains, the Deployment
//! of `spec.workloadRef`) and the status.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Resource;
use serde_json::json;

use super::{owner_ref, Context, MANAGER};
use crate::api::pod::{drain_value, DRAIN_ANNOTATION};
use crate::api::rollout::{Rollout, RolloutStatus};
use crate::error::{is_status, Error, Result};
use crate::rollout::expectations::Expected;
use crate::rollout::planner::{self, Action};

/// Apply the plan's actions: revisions first, one by one, then the pod deletions and drains,
/// concurrently, then the pod creations, concurrently.
/// Returns the writes made (for [`Expectations`]) whatever the outcome, and the first error
/// (a refusal first).
pub(super) async fn apply_actions(
    rollout: &Rollout,
    ns: &str,
    actions: &[Action],
    ctx: &Context,
) -> (Vec<Expected>, Result<()>) {
    let mut done = Vec::new();
    let owner = match owner_ref(rollout) {
        Ok(o) => o,
        Err(e) => return (done, Err(e)),
    };
    let is_revision = |a: &&Action| matches!(a, Action::CreateRevision { .. } | Action::DeleteRevision { .. });
    for action in actions.iter().filter(is_revision) {
        match apply_one(ctx, ns, &owner, action).await.map_err(refusal) {
            Ok(e) => done.extend(e),
            Err(e) => return (done, Err(e)),
        }
    }
    // Deletions (and drains) land before creations: the planner fitted a replacement into
    // maxSurge by counting its old pod as terminating, so a create that reached the API server
    // before its paired delete put one pod too many up (seen under load: 5 live pods with
    // replicas 4 and maxSurge 0). If a deletion failed, nothing is created this time.
    let is_create = |a: &&Action| matches!(a, Action::CreatePod { .. });
    let first_phase: Vec<&Action> = actions.iter().filter(|a| !is_revision(a) && !is_create(a)).collect();
    let (expected, mut first) = apply_concurrently(ctx, ns, &owner, first_phase).await;
    done.extend(expected);
    if first.is_none() {
        let (expected, error) = apply_concurrently(ctx, ns, &owner, actions.iter().filter(is_create).collect()).await;
        done.extend(expected);
        first = error;
    }
    (done, first.map_or(Ok(()), Err))
}

/// Apply `actions` concurrently: what the caches will show of them, and the first error (a
/// refusal first).
async fn apply_concurrently(
    ctx: &Context,
    ns: &str,
    owner: &OwnerReference,
    actions: Vec<&Action>,
) -> (Vec<Expected>, Option<Error>) {
    // A plain loop, not a closure: the futures must stay `Send` for every lifetime (kube-runtime).
    let mut pending = Vec::with_capacity(actions.len());
    for a in actions {
        pending.push(async move { apply_one(ctx, ns, owner, a).await.map_err(refusal) });
    }
    let results: Vec<Result<Option<Expected>>> = futures::stream::iter(pending).buffer_unordered(32).collect().await;
    let mut done = Vec::new();
    let mut first = None;
    for r in results {
        match r {
            Ok(e) => done.extend(e),
            Err(e @ Error::Refused { .. }) => first = Some(e),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    (done, first)
}

/// Apply one action; returns what the caches will show of it.
async fn apply_one(ctx: &Context, ns: &str, owner: &OwnerReference, action: &Action) -> Result<Option<Expected>> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let revs: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    let expected = match action {
        Action::CreateRevision {
            name,
            revision,
            version,
            labels,
            annotations,
            template,
            ..
        } => {
            let rev = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.to_string()),
                    labels: Some(labels.clone()),
                    annotations: (!annotations.is_empty()).then(|| annotations.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    ..ObjectMeta::default()
                },
                data: Some(RawExtension(planner::revision_data(template, version))),
                revision: *revision,
            };
            ignore_already_exists(revs.create(&PostParams::default(), &rev).await.map(|_| ()))?;
            ctx.stats.revision_writes.fetch_add(1, Ordering::Relaxed);
            Some(Expected::RevisionCreated(name.clone()))
        }
        Action::DeleteRevision { name } => {
            ignore_code(revs.delete(name, &DeleteParams::default()).await.map(|_| ()), 404)?;
            ctx.stats.revision_writes.fetch_add(1, Ordering::Relaxed);
            None
        }
        Action::CreatePod {
            name, labels, template, ..
        } => {
            let pod = build_pod(ns, name, labels, template, owner);
            ignore_already_exists(create_unread(&ctx.client, ns, &pod).await)?;
            ctx.stats.pod_creates.fetch_add(1, Ordering::Relaxed);
            Some(Expected::PodCreated(name.clone()))
        }
        Action::DeletePod { name } => {
            ignore_code(delete_unread::<Pod>(&ctx.client, ns, name).await, 404)?;
            ctx.stats.pod_deletes.fetch_add(1, Ordering::Relaxed);
            Some(Expected::PodDeleted(name.clone()))
        }
        Action::CreateJob { .. } | Action::DeleteJob { .. } => {
            crate::rollout::jobs::apply(&ctx.client, ns, owner, action).await?
        }
        Action::DrainPod { name } => {
            let patch = json!({"metadata": {"annotations": {DRAIN_ANNOTATION: drain_value(Timestamp::now())}}});
            patch_pod(ctx, &pods, name, &patch).await?;
            None
        }
        Action::UndrainPod { name } => {
            let patch = json!({"metadata": {"annotations": {DRAIN_ANNOTATION: null}}});
            patch_pod(ctx, &pods, name, &patch).await?;
            None
        }
        Action::ScaleWorkload { name, replicas } => {
            crate::rollout::workload::scale(&ctx.client, ns, name, *replicas).await?;
            None
        }
    };
    Ok(expected)
}

async fn patch_pod(ctx: &Context, pods: &Api<Pod>, name: &str, patch: &serde_json::Value) -> Result<()> {
    let r = pods.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await;
    ignore_code(r.map(|_| ()), 404)?;
    ctx.stats.pod_patches.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A create the API server refused as invalid (422) is a problem of the spec it was made from.
fn refusal(e: Error) -> Error {
    match e {
        Error::Kube(kube::Error::Api(s)) if s.code == 422 => Error::Refused { message: s.message },
        other => other,
    }
}

/// A create that finds its object already there is done (deterministic names); any other 409 is
/// an error to retry.
fn ignore_already_exists(r: Result<(), kube::Error>) -> Result<()> {
    match r {
        Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => Ok(()),
        other => other.map_err(Error::from),
    }
}

fn ignore_code(r: Result<(), kube::Error>, code: u16) -> Result<()> {
    match r {
        Err(e) if is_status(&e, code) => Ok(()),
        other => other.map_err(Error::from),
    }
}

/// Pod `pod_name` from the planner's template and labels, owned by the Rollout.
pub fn build_pod(
    ns: &str,
    pod_name: &str,
    labels: &BTreeMap<String, String>,
    template: &PodTemplateSpec,
    owner: &OwnerReference,
) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(labels.clone()),
            annotations: template.metadata.as_ref().and_then(|m| m.annotations.clone()),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// What a reconcile reads of a create or delete's answer: nothing. The watch brings the object
/// into the caches; decoding the whole Pod the API server sends back (spec, status, managed
/// fields) cost more CPU than anything else of a replacement's writes.
async fn create_unread<K>(client: &kube::Client, ns: &str, obj: &K) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + serde::Serialize,
{
    let body = serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?;
    let mut req = kube::core::Request::new(K::url_path(&(), Some(ns)))
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    req.extensions_mut().insert("create");
    client.request_text(req).await.map(|_| ())
}

/// Delete `name` (foreground default, as [`Api::delete`]), not reading the answer.
async fn delete_unread<K>(client: &kube::Client, ns: &str, name: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()>,
{
    let mut req = kube::core::Request::new(K::url_path(&(), Some(ns)))
        .delete(name, &DeleteParams::default())
        .map_err(kube::Error::BuildRequest)?;
    req.extensions_mut().insert("delete");
    client.request_text(req).await.map(|_| ())
}

/// What a status write's answer is read for: the version and status the API server stored
/// (not the spec, its template or the managed fields).
#[derive(serde::Deserialize)]
pub(super) struct Written {
    pub(super) metadata: WrittenMeta,
    pub(super) status: Option<RolloutStatus>,
}

#[derive(serde::Deserialize)]
pub(super) struct WrittenMeta {
    #[serde(rename = "resourceVersion")]
    pub(super) resource_version: Option<String>,
}

pub(super) async fn write_status(
    client: &kube::Client,
    ns: &str,
    name: &str,
    status: &RolloutStatus,
) -> Result<Written> {
    let body = json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": "Rollout",
        "status": status,
    });
    let mut req = kube::core::Request::new(Rollout::url_path(&(), Some(ns)))
        .patch_subresource(
            "status",
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .map_err(kube::Error::BuildRequest)?;
    req.extensions_mut().insert("patch_status");
    Ok(client.request::<Written>(req).await?)
}
