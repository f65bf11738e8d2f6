//! The Rollout reconciler: read caches → [`planner::plan`] → apply actions → write status.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::api::rollout::{annotations, labels, ConditionStatus, Rollout, RolloutStatus};
use crate::backoff::Backoff;
use crate::cache::tolerant::Bad;
use crate::cache::Synced;
use crate::error::{is_status, Error, Result};
use crate::events::{Publisher, Severity};
use crate::rollout::planner::{self, Action, ActionRequests, ObservedPod, PlanInput, RevisionInfo};

/// Does pod `name` in namespace `ns` hold a listener Lease? (From the ListenerSet side.)
pub type HoldsListeners = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Field manager of the Rollout controller's writes.
pub const MANAGER: &str = "baton-rollout";

/// Counters a benchmark or the metrics endpoint can read.
#[derive(Debug, Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    pub pod_creates: AtomicU64,
    pub pod_deletes: AtomicU64,
    pub pod_patches: AtomicU64,
    pub revision_writes: AtomicU64,
    pub status_writes: AtomicU64,
}

/// What a reconcile needs: a client, caches of the Rollouts' pods and revisions, an event recorder.
pub struct Context {
    /// Readiness of the pod and revision caches: no plan is made from a cache still loading.
    pub synced: Vec<Synced>,
    /// Consecutive failures per Rollout (see [`error_policy`]).
    pub backoff: Backoff,
    /// Rollouts whose objects the API server refused (422): uid → (generation, its message).
    pub rejections: Mutex<HashMap<String, (i64, String)>>,
    pub client: kube::Client,
    pub events: Publisher,
    pub pods: Store<Pod>,
    pub revisions: Store<ControllerRevision>,
    /// The Rollouts the controller reconciles (after a status write, the next plan waits for
    /// it to show the write).
    pub rollouts: Store<Rollout>,
    /// Pods holding listener Leases (from the ListenerSet side); None when unknown.
    pub listener_holders: Option<HoldsListeners>,
    pub drain_timeout: Duration,
    pub stats: Arc<Stats>,
}

fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.uid == uid))
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
}

/// The planner's view of a pod.
pub fn observe_pod(pod: &Pod, holds_listeners: bool) -> Option<ObservedPod> {
    let meta = &pod.metadata;
    let slot: i32 = label(meta, labels::SLOT)?.parse().ok()?;
    let hash = label(meta, labels::REVISION_HASH)?;
    let mut o = ObservedPod::new(pod.name_any(), slot, hash);
    o.version = label(meta, labels::VERSION).unwrap_or("").to_string();
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    o.ready = ready.is_some_and(|c| c.status == ConditionStatus::True.as_str());
    o.ready_since = ready
        .filter(|c| c.status == ConditionStatus::True.as_str())
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0);
    let containers = status.and_then(|s| s.container_statuses.as_ref());
    o.restarts = containers
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0);
    o.crash_looping = containers.is_some_and(|cs| {
        cs.iter().any(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("CrashLoopBackOff")
        })
    });
    o.failed = matches!(status.and_then(|s| s.phase.as_deref()), Some("Failed" | "Succeeded"));
    o.terminating = meta.deletion_timestamp.is_some();
    o.created = meta.creation_timestamp.as_ref().map(|t| t.0);
    o.drain_requested_at = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::DRAIN))
        .and_then(|v| v.parse::<Timestamp>().ok());
    o.holds_listeners = holds_listeners;
    Some(o)
}

fn revision_info(rev: &ControllerRevision) -> Option<RevisionInfo> {
    Some(RevisionInfo {
        name: rev.name_any(),
        revision: rev.revision,
        hash: label(&rev.metadata, labels::REVISION_HASH)?.to_string(),
        version: label(&rev.metadata, labels::VERSION).unwrap_or("").to_string(),
    })
}

fn owner_ref(rollout: &Rollout) -> Result<OwnerReference> {
    rollout
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))
}

/// One reconcile of one Rollout. A success resets its backoff.
pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Requeue> {
    let out = reconcile_once(&rollout, &ctx).await;
    if out.is_ok() {
        ctx.backoff.on_success(rollout.as_ref());
    }
    out
}

async fn reconcile_once(rollout: &Rollout, ctx: &Context) -> Result<Requeue> {
    ctx.stats.reconciles.fetch_add(1, Ordering::Relaxed);
    let uid = rollout.uid().ok_or(Error::MissingField("metadata.uid"))?;
    if rollout.metadata.deletion_timestamp.is_some() {
        // Pods and revisions are owned: the garbage collector removes them.
        return Ok(Requeue::await_change());
    }
    // The first reconciles after a start must not plan from caches still loading: an empty pod
    // cache looks like a rollout with no pods and would take every slot at once.
    if tokio::time::timeout(Duration::from_secs(10), crate::cache::wait_all(&ctx.synced))
        .await
        .is_err()
    {
        return Ok(Requeue::requeue(Duration::from_millis(500)));
    }
    let generation = rollout.metadata.generation.unwrap_or(0);
    let rejected = ctx.rejected(&uid, generation);
    match plan_and_apply(rollout, ctx, rollout.status.clone(), rejected.clone()).await {
        // The API server refused an object made from this spec: the spec is invalid, and the
        // status and an Event say so with the server's message.
        Err(Error::Refused { message, written }) if rejected.is_none() => {
            ctx.reject(&uid, generation, &message);
            let prior = written.map_or_else(|| rollout.status.clone(), |r| r.status);
            plan_and_apply(rollout, ctx, prior, Some(message)).await
        }
        other => other,
    }
}

/// Plan from the caches (with `prior` as the stored status), apply the actions, write the
/// status and publish the plan's events.
async fn plan_and_apply(
    rollout: &Rollout,
    ctx: &Context,
    prior: Option<RolloutStatus>,
    rejected: Option<String>,
) -> Result<Requeue> {
    let ns = rollout.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = rollout.name_any();
    let uid = rollout.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let holders = ctx.listener_holders.clone();
    let pods: Vec<ObservedPod> = ctx
        .pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()) && owned_by(&p.metadata, &uid))
        .filter_map(|p| observe_pod(p, holders.as_ref().is_some_and(|h| h(&ns, &p.name_any()))))
        .collect();
    let revisions: Vec<RevisionInfo> = ctx
        .revisions
        .state()
        .iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some(ns.as_str()) && owned_by(&r.metadata, &uid))
        .filter_map(|r| revision_info(r))
        .collect();
    let input = PlanInput {
        name: name.clone(),
        generation: rollout.metadata.generation.unwrap_or(0),
        spec: rollout.spec.clone(),
        requests: ActionRequests::from_annotations(rollout.annotations()),
        status: prior.clone(),
        pods,
        revisions,
        now: Timestamp::now(),
        drain_timeout: ctx.drain_timeout,
        rejected,
    };
    let plan = planner::plan(&input);
    debug!(namespace = %ns, rollout = %name, actions = plan.actions.len(), "planned");
    // The status describes what the plan saw and decided, not the actions' outcome, so it is
    // written alongside them: on a large Rollout it is the slowest write of the reconcile.
    let status_write = async {
        if prior.as_ref() == Some(&plan.status) {
            return Ok(None);
        }
        let written = write_status(&ctx.client, &ns, &name, &plan.status).await?;
        ctx.stats.status_writes.fetch_add(1, Ordering::Relaxed);
        Ok::<_, Error>(Some(written))
    };
    let (applied, written) = tokio::join!(apply_actions(rollout, &ns, &plan.actions, ctx), status_write);
    // The events describe the plan's decisions, recorded by its status: published once that
    // status is written, even when an action failed (the next plan will not repeat them).
    let written = written?;
    publish_events(ctx, rollout, &ns, &plan.events);
    let applied = match applied {
        Err(Error::Refused { message, .. }) => {
            return Err(Error::Refused {
                message,
                written: written.map(Box::new),
            })
        }
        other => other?,
    };
    wait_for_cache(ctx, &ns, &applied).await;
    if let Some(written) = written {
        wait_for_status(ctx, &written).await;
    }
    Ok(match plan.requeue_after {
        Some(d) => Requeue::requeue(d.max(Duration::from_millis(50))),
        None if !applied.is_empty() => Requeue::requeue(Duration::from_secs(30)),
        None => Requeue::await_change(),
    })
}

fn publish_events(ctx: &Context, rollout: &Rollout, ns: &str, events: &[planner::PlanEvent]) {
    for ev in events {
        info!(namespace = %ns, rollout = %rollout.name_any(), reason = %ev.reason, "{}", ev.message);
    }
    if events.is_empty() {
        return;
    }
    // Events are informative: published in order, off the reconcile's critical path.
    ctx.events.publish_in_background(
        rollout.object_ref(&()),
        events
            .iter()
            .map(|ev| (severity(ev.type_), ev.reason.to_string(), ev.message.clone()))
            .collect(),
    );
}

fn severity(t: planner::EventType) -> Severity {
    match t {
        planner::EventType::Normal => Severity::Normal,
        planner::EventType::Warning => Severity::Warning,
    }
}

impl Context {
    /// The refusal recorded for this generation of Rollout `uid`, if any.
    fn rejected(&self, uid: &str, generation: i64) -> Option<String> {
        let mut r = self.rejections.lock().unwrap_or_else(|p| p.into_inner());
        match r.get(uid) {
            Some((g, message)) if *g == generation => Some(message.clone()),
            Some(_) => {
                r.remove(uid);
                None
            }
            None => None,
        }
    }

    fn reject(&self, uid: &str, generation: i64, message: &str) {
        let mut r = self.rejections.lock().unwrap_or_else(|p| p.into_inner());
        r.insert(uid.to_string(), (generation, message.to_string()));
    }
}

/// Report a Rollout that does not decode (see [`crate::cache::tolerant`]): `InvalidSpec` in its
/// status and a Warning Event, with the decoding error. A failed write is retried a few times.
pub async fn report_undecodable(client: &kube::Client, events: &Publisher, bad: Bad) {
    let Some(ns) = bad.namespace.clone() else { return };
    let prior = bad
        .status
        .clone()
        .and_then(|s| serde_json::from_value::<RolloutStatus>(s).ok());
    let problem = bad.problem(&crate::api::rollout::crd());
    let plan = planner::plan_undecodable(bad.generation.unwrap_or(0), prior.clone(), Timestamp::now(), &problem);
    if prior.as_ref() != Some(&plan.status) {
        // The answer holds the stored spec, which does not decode as a Rollout.
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ApiResource::erase::<Rollout>(&()));
        let body = json!({
            "apiVersion": format!("{}/{}", crate::api::rollout::GROUP, crate::api::rollout::VERSION),
            "kind": "Rollout",
            "status": plan.status,
        });
        for attempt in 1..=3u32 {
            let written = api
                .patch_status(&bad.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
                .await;
            match written {
                Ok(_) => break,
                Err(e) => {
                    warn!(namespace = %ns, rollout = %bad.name, attempt, error = %e, "writing the status of an undecodable Rollout");
                    tokio::time::sleep(crate::backoff::delay(crate::backoff::Retry::Later, attempt)).await;
                }
            }
        }
    }
    let reference = ObjectReference {
        api_version: Some(format!(
            "{}/{}",
            crate::api::rollout::GROUP,
            crate::api::rollout::VERSION
        )),
        kind: Some("Rollout".into()),
        name: Some(bad.name.clone()),
        namespace: Some(ns.clone()),
        uid: bad.uid.clone(),
        resource_version: bad.resource_version.clone(),
        ..ObjectReference::default()
    };
    for ev in &plan.events {
        warn!(namespace = %ns, rollout = %bad.name, reason = %ev.reason, "{}", ev.message);
        if let Err(e) = events
            .publish(&reference, severity(ev.type_), &ev.reason.to_string(), &ev.message)
            .await
        {
            debug!(error = %e, "publishing an event failed");
        }
    }
}

/// The next reconcile must plan from the status this one wrote: planned from the one before, it
/// would start the same batch again (a second `BatchStarted`) or act on a handled nonce. Wait
/// (bounded) until the Rollout cache shows the write, or something newer.
async fn wait_for_status(ctx: &Context, written: &Rollout) {
    let Some(ns) = written.namespace() else { return };
    let key = ObjectRef::new(&written.name_any()).within(&ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = ctx.rollouts.get(&key).is_none_or(|r| {
            r.resource_version() == written.resource_version() || r.status == written.status || r.uid() != written.uid()
        });
        if seen || tokio::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Pod changes this reconcile made, to wait for in the cache before the next plan.
#[derive(Debug, Default)]
pub struct Applied {
    created: Vec<String>,
    deleted: Vec<String>,
}

impl Applied {
    fn is_empty(&self) -> bool {
        self.created.is_empty() && self.deleted.is_empty()
    }
}

/// The next reconcile must plan from a cache that shows this one's writes, or it could count a
/// deleted pod as still serving and take one more down. Wait (bounded) until it does.
async fn wait_for_cache(ctx: &Context, ns: &str, applied: &Applied) {
    if applied.is_empty() {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen_created = applied
            .created
            .iter()
            .all(|n| ctx.pods.get(&ObjectRef::new(n).within(ns)).is_some());
        let seen_deleted = applied.deleted.iter().all(|n| {
            ctx.pods
                .get(&ObjectRef::new(n).within(ns))
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
        });
        if (seen_created && seen_deleted) || tokio::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn apply_actions(rollout: &Rollout, ns: &str, actions: &[Action], ctx: &Context) -> Result<Applied> {
    let owner = owner_ref(rollout)?;
    let name = rollout.name_any();
    // Revisions first (pods are created from them), one by one; then the pod actions, which the
    // planner already fitted into the surge and unavailability budgets as a whole, concurrently.
    for action in actions
        .iter()
        .filter(|a| matches!(a, Action::CreateRevision { .. } | Action::DeleteRevision { .. }))
    {
        apply_one(ctx, ns, &name, &owner, action).await.map_err(refusal)?;
    }
    let pod_actions: Vec<&Action> = actions
        .iter()
        .filter(|a| !matches!(a, Action::CreateRevision { .. } | Action::DeleteRevision { .. }))
        .collect();
    // A plain loop, not a closure: the futures must stay `Send` for every lifetime (kube-runtime).
    let mut pending = Vec::with_capacity(pod_actions.len());
    for a in &pod_actions {
        pending.push(async { apply_one(ctx, ns, &name, &owner, a).await.map_err(refusal) });
    }
    let results: Vec<Result<()>> = futures::stream::iter(pending).buffer_unordered(32).collect().await;
    let mut applied = Applied::default();
    for a in &pod_actions {
        match a {
            Action::CreatePod { name, .. } => applied.created.push(name.clone()),
            Action::DeletePod { name } => applied.deleted.push(name.clone()),
            _ => {}
        }
    }
    let mut first = None;
    for e in results.into_iter().filter_map(Result::err) {
        if matches!(e, Error::Refused { .. }) {
            return Err(e);
        }
        first.get_or_insert(e);
    }
    match first {
        Some(e) => Err(e),
        None => Ok(applied),
    }
}

async fn apply_one(ctx: &Context, ns: &str, name: &str, owner: &OwnerReference, action: &Action) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let revs: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    match action {
        Action::CreateRevision {
            name: rev_name,
            hash,
            revision,
            version,
            template,
        } => {
            let rev = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(rev_name.clone()),
                    namespace: Some(ns.to_string()),
                    labels: Some(BTreeMap::from([
                        (labels::ROLLOUT.to_string(), name.to_string()),
                        (labels::REVISION_HASH.to_string(), hash.clone()),
                        (labels::VERSION.to_string(), version.clone()),
                        (labels::MANAGED_BY.to_string(), labels::MANAGED_BY_VALUE.to_string()),
                    ])),
                    owner_references: Some(vec![owner.clone()]),
                    ..ObjectMeta::default()
                },
                data: Some(RawExtension(planner::revision_data(template, version))),
                revision: *revision,
            };
            ignore_already_exists(revs.create(&PostParams::default(), &rev).await.map(|_| ()))?;
            ctx.stats.revision_writes.fetch_add(1, Ordering::Relaxed);
            wait_for_revision(ctx, ns, rev_name).await;
        }
        Action::DeleteRevision { name: rev_name } => {
            ignore_code(revs.delete(rev_name, &DeleteParams::default()).await.map(|_| ()), 404)?;
            ctx.stats.revision_writes.fetch_add(1, Ordering::Relaxed);
        }
        Action::CreatePod {
            name: pod_name,
            slot,
            revision,
            hash,
            version,
        } => {
            let template = revision_template(ctx, ns, revision)?;
            let pod = build_pod(name, ns, pod_name, *slot, hash, version, template, owner);
            ignore_already_exists(pods.create(&PostParams::default(), &pod).await.map(|_| ()))?;
            ctx.stats.pod_creates.fetch_add(1, Ordering::Relaxed);
        }
        Action::DeletePod { name: pod_name } => {
            ignore_code(pods.delete(pod_name, &DeleteParams::default()).await.map(|_| ()), 404)?;
            ctx.stats.pod_deletes.fetch_add(1, Ordering::Relaxed);
        }
        Action::DrainPod { name: pod_name } => {
            let patch = json!({"metadata": {"annotations": {annotations::DRAIN: Timestamp::now().to_string()}}});
            ignore_code(
                pods.patch(pod_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ()),
                404,
            )?;
            ctx.stats.pod_patches.fetch_add(1, Ordering::Relaxed);
        }
        Action::UndrainPod { name: pod_name } => {
            let patch = json!({"metadata": {"annotations": {annotations::DRAIN: null}}});
            ignore_code(
                pods.patch(pod_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ()),
                404,
            )?;
            ctx.stats.pod_patches.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Pods of a new revision are created from the cached revision: wait (bounded) until the cache has it.
async fn wait_for_revision(ctx: &Context, ns: &str, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while ctx.revisions.get(&ObjectRef::new(name).within(ns)).is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A create the API server refused as invalid (422) is a problem of the spec it was made from.
fn refusal(e: Error) -> Error {
    match e {
        Error::Kube(kube::Error::Api(s)) if s.code == 422 => Error::Refused {
            message: s.message,
            written: None,
        },
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

/// The pod template stored in a ControllerRevision (the cache, which holds every revision).
fn revision_template(ctx: &Context, ns: &str, revision: &str) -> Result<PodTemplateSpec> {
    let rev = ctx
        .revisions
        .get(&ObjectRef::new(revision).within(ns))
        .ok_or_else(|| Error::CacheLag(format!("ControllerRevision {ns}/{revision} is not in the cache yet")))?;
    let data = rev.data.as_ref().ok_or(Error::MissingField("data"))?;
    let template = data
        .0
        .get("template")
        .cloned()
        .ok_or(Error::MissingField("data.template"))?;
    Ok(serde_json::from_value(template)?)
}

#[allow(clippy::too_many_arguments)]
fn build_pod(
    rollout: &str,
    ns: &str,
    pod_name: &str,
    slot: i32,
    hash: &str,
    version: &str,
    template: PodTemplateSpec,
    owner: &OwnerReference,
) -> Pod {
    let tmeta = template.metadata.unwrap_or_default();
    let mut labels_map = tmeta.labels.unwrap_or_default();
    labels_map.extend(planner::pod_labels(rollout, slot, hash, version));
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(labels_map),
            annotations: tmeta.annotations,
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

async fn write_status(client: &kube::Client, ns: &str, name: &str, status: &RolloutStatus) -> Result<Rollout> {
    let api: Api<Rollout> = Api::namespaced(client.clone(), ns);
    let body = json!({
        "apiVersion": format!("{}/{}", crate::api::rollout::GROUP, crate::api::rollout::VERSION),
        "kind": "Rollout",
        "status": status,
    });
    Ok(api
        .patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
        .await?)
}

/// Retry a failed Rollout with exponential backoff of its own (see [`crate::backoff`]): one
/// log line per failed attempt.
pub fn error_policy(rollout: Arc<Rollout>, err: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.backoff.on_error(rollout.as_ref(), err)
}
