//! The Rollout reconciler: read caches → [`planner::plan`] → apply actions → write status.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::api::pod::CachedPod;
use crate::api::rollout::{labels, CachedRevision, EventReason, Rollout, RolloutStatus};
use crate::api::ROLLOUT_MANAGER as MANAGER;
use crate::backoff::Backoff;
use crate::cache::owners::OwnerIndex;
use crate::cache::tolerant::Bad;
use crate::cache::Synced;
use crate::error::{Error, Result};
use crate::events::{Occurrence, Publisher, Severity};
use crate::rollout::expectations::{Expectations, Expected};
use crate::rollout::jobs::{self, FailedJobPods, JobReads};
use crate::rollout::planner::{self, ActionRequests, ObservedPod, PlanInput, RevisionInfo};
use crate::rollout::status_write::{self, StatusWrite};

mod apply;
pub use apply::build_pod;
use apply::{apply_actions, write_status};

/// Does the pod of namespace, name and uid hold a listener Lease? (From the ListenerSet side.)
pub type HoldsListeners = Arc<dyn Fn(&str, &str, &str) -> bool + Send + Sync>;

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

/// The pod, revision and Job caches indexed by owner uid.
#[derive(Clone, Default)]
pub struct OwnedIndexes {
    pub pods: OwnerIndex<CachedPod>,
    pub revisions: OwnerIndex<CachedRevision>,
    pub jobs: OwnerIndex<Job>,
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
    pub pods: Store<CachedPod>,
    pub revisions: Store<CachedRevision>,
    /// The Rollouts' Jobs (hooks and `job` checks).
    pub jobs: Store<Job>,
    /// How each failed Job failed (its pods are not cached: read once when it fails).
    pub failed_job_pods: FailedJobPods,
    /// The pod and revision caches by owner: a reconcile reads only its Rollout's own.
    pub owners: OwnedIndexes,
    /// The Rollouts the controller reconciles (after a status write, the next plan waits for
    /// it to show the write).
    pub rollouts: Store<Rollout>,
    /// Each Rollout's writes the caches must show before its next plan.
    pub expectations: Arc<Expectations>,
    /// Pods holding listener Leases (from the shared Lease cache).
    pub listener_holders: HoldsListeners,
    pub drain_timeout: Duration,
    pub stats: Arc<Stats>,
    /// When this controller last wrote each Rollout's status (by uid): progress-only changes
    /// wait [`status_write::PROGRESS_INTERVAL`] after it.
    pub status_written: WriteClock,
    /// The check runs of every Rollout (see [`crate::rollout::check_runs`]).
    pub checks: Arc<crate::rollout::check_runs::CheckRunner>,
    /// The notification queues of every Rollout (see [`crate::webhooks`]).
    pub notifier: Arc<crate::webhooks::Notifier>,
    /// The Deployments that `spec.workloadRef` names (see [`crate::rollout::workload`]).
    pub workloads: crate::rollout::workload::Workloads,
}

/// The time of the last status write per Rollout uid; entries older than the progress interval
/// say nothing more and are swept as the map grows.
#[derive(Default)]
pub struct WriteClock {
    at: Mutex<(HashMap<String, Instant>, usize)>,
}

impl WriteClock {
    fn since(&self, uid: &str, now: Instant) -> Option<Duration> {
        let g = self.at.lock().unwrap_or_else(|p| p.into_inner());
        g.0.get(uid).map(|t| now.saturating_duration_since(*t))
    }

    fn wrote(&self, uid: &str, now: Instant) {
        let mut g = self.at.lock().unwrap_or_else(|p| p.into_inner());
        let (map, sweep_at) = &mut *g;
        map.insert(uid.to_string(), now);
        if map.len() >= (*sweep_at).max(1024) {
            map.retain(|_, t| now.saturating_duration_since(*t) < status_write::PROGRESS_INTERVAL);
            *sweep_at = map.len() * 2;
        }
    }

    fn forget(&self, uid: &str) {
        self.at.lock().unwrap_or_else(|p| p.into_inner()).0.remove(uid);
    }
}

/// The pods and revisions of the Rollout of uid `uid` in `ns`, from the owner indexes: the cost
/// grows with the Rollout's own objects, not with the caches.
pub fn own_objects(ctx: &Context, ns: &str, uid: &str) -> (Vec<Arc<CachedPod>>, Vec<Arc<CachedRevision>>) {
    let in_ns = |m: &ObjectMeta| m.namespace.as_deref() == Some(ns);
    let mut pods = ctx.owners.pods.owned_by(&ctx.pods, uid);
    pods.retain(|p| in_ns(&p.metadata));
    let mut revisions = ctx.owners.revisions.owned_by(&ctx.revisions, uid);
    revisions.retain(|r| in_ns(&r.metadata));
    (pods, revisions)
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
}

/// The planner's view of a pod.
pub fn observe_pod(pod: &CachedPod, holds_listeners: bool) -> Option<ObservedPod> {
    let meta = &pod.metadata;
    let slot: i32 = pod.label(labels::SLOT)?.parse().ok()?;
    let hash = pod.label(labels::REVISION_HASH)?;
    let mut o = ObservedPod::new(pod.name_any(), slot, hash);
    o.version = pod.label(labels::VERSION).unwrap_or("").to_string();
    o.ready = pod.is_ready();
    o.ready_since = pod.ready_since();
    o.restarts = pod.container_restarts();
    o.crash_looping = pod.crash_looping();
    o.failed = pod.has_finished();
    o.terminating = meta.deletion_timestamp.is_some();
    o.created = meta.creation_timestamp.as_ref().map(|t| t.0);
    o.drain = crate::api::pod::drain(meta);
    o.holds_listeners = holds_listeners;
    o.ip = pod.status.pod_ip.clone().filter(|ip| !ip.is_empty());
    Some(o)
}

/// The planner's view of a revision; None for one without its hash label or template (the
/// planner then makes it anew, under the same name).
fn revision_info(rev: &CachedRevision) -> Option<RevisionInfo> {
    Some(RevisionInfo {
        name: rev.name_any(),
        revision: rev.revision,
        hash: label(&rev.metadata, labels::REVISION_HASH)?.to_string(),
        version: label(&rev.metadata, labels::VERSION).unwrap_or("").to_string(),
        template: Arc::new(rev.template()?),
    })
}

fn owner_ref(rollout: &Rollout) -> Result<OwnerReference> {
    rollout
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))
}

/// The pod watch showed `pod`: a creation its Rollout expects is seen, even if the pod is
/// deleted before the next reconcile reads the cache.
pub fn observe_pod_event(expectations: &Expectations, pod: &CachedPod) {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    if let (Some(owner), Some(name)) = (owner, pod.metadata.name.as_deref()) {
        expectations.observe_pod(&owner.uid, name);
    }
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
        ctx.expectations.forget(&uid);
        ctx.status_written.forget(&uid);
        ctx.checks.forget(&uid);
        ctx.notifier.forget(&uid);
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
    // Plan only from caches that show this Rollout's last writes; until they do, the watch
    // events that bring them trigger the next reconcile (the requeue is a backstop).
    let ns = rollout.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    if let Err(left) = ctx
        .expectations
        .satisfied(&uid, Instant::now(), |e| ctx.shows(&ns, &rollout.name_any(), e))
    {
        debug!(namespace = %ns, rollout = %rollout.name_any(), backstop = ?left, "waiting for the caches to show the last writes");
        return Ok(Requeue::requeue(left));
    }
    // The cache may hold a newer object than the one this reconcile was started with.
    let latest = ctx
        .rollouts
        .get(&ObjectRef::from_obj(rollout))
        .filter(|r| r.uid().as_deref() == Some(uid.as_str()));
    let rollout = latest.as_deref().unwrap_or(rollout);
    let generation = rollout.metadata.generation.unwrap_or(0);
    let rejected = ctx.rejected(&uid, generation);
    match plan_and_apply(rollout, ctx, rollout.status.clone(), rejected.clone()).await {
        // The API server refused an object made from this spec: the spec is invalid, and the
        // status and an Event say so with the server's message.
        // The report is planned from the status stored before this reconcile: nothing of the
        // refused plan happened, so nothing of it (a batch started, its events) is reported.
        Err(Error::Refused { message }) if rejected.is_none() => {
            ctx.reject(&uid, generation, &message);
            plan_and_apply(rollout, ctx, rollout.status.clone(), Some(message)).await
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
    let (input, sinks_requeue) = plan_input(rollout, ctx, &ns, &uid, prior, rejected).await?;
    let plan = planner::plan(&input);
    let prior = input.status.as_ref();
    // Runs start (or stop) off this worker; a finished run wakes the Rollout.
    ctx.checks.want(&uid, &ObjectRef::from_obj(rollout), &plan.checks);
    debug!(namespace = %ns, rollout = %name, actions = plan.actions.len(), "planned");
    // The status describes what the plan saw and decided, not the actions' outcome, so it is
    // written alongside them: on a large Rollout it is the slowest write of the reconcile.
    // Progress alone waits a little (see `status_write`): the reconcile comes back for it.
    let decision = status_write::decide(prior, &plan.status, ctx.status_written.since(&uid, Instant::now()));
    let status_write = async {
        if decision != StatusWrite::Now {
            return Ok(None);
        }
        let written = write_status(&ctx.client, &ns, &name, &plan.status).await?;
        ctx.status_written.wrote(&uid, Instant::now());
        ctx.stats.status_writes.fetch_add(1, Ordering::Relaxed);
        Ok::<_, Error>(Some(written))
    };
    let started = Instant::now();
    let (applied, written) = tokio::join!(apply_actions(rollout, &ns, &plan.actions, ctx), status_write);
    debug!(namespace = %ns, rollout = %name, took = ?started.elapsed(), status = ?decision, "applied");
    // The events describe the plan's decisions, recorded by its status: published once that
    // status is written, even when an action failed (the next plan will not repeat them) —
    // unless the API server refused the spec, whose report replaces this plan.
    let (mut expected, applied) = applied;
    let wrote = !expected.is_empty();
    let written = written.map(|w| {
        // The status as the API server stored it: times keep whole seconds there, so the
        // planned value (with its sub-second times) never equals what the cache shows once
        // another write (a label, an annotation, kubectl apply) has moved the Rollout on.
        if let Some(w) = w {
            expected.push(Expected::Status {
                uid: uid.clone(),
                resource_version: w.metadata.resource_version.unwrap_or_default(),
                status: Box::new(w.status.unwrap_or_else(|| plan.status.clone())),
            });
        }
    });
    ctx.expectations.expect(&uid, expected, Instant::now());
    written?;
    if let Err(e @ Error::Refused { .. }) = applied {
        return Err(e);
    }
    publish_events(ctx, rollout, &ns, &plan);
    crate::rollout::announce::send(&ctx.notifier, rollout, &plan.status, &plan.events);
    applied?;
    let deferred = match decision {
        StatusWrite::After(d) => Some(d),
        _ => None,
    };
    let requeue = [plan.requeue_after, deferred, sinks_requeue]
        .into_iter()
        .flatten()
        .min();
    Ok(match requeue {
        Some(d) => Requeue::requeue(d.max(Duration::from_millis(50))),
        None if wrote => Requeue::requeue(Duration::from_secs(30)),
        None => Requeue::await_change(),
    })
}

/// What the planner is given: the Rollout, its stored status (`prior`), the pods, revisions and
/// Jobs it owns as the caches show them, and what the shell knows (check runs, sink problems).
/// Also when to look again at a broken notification sink.
async fn plan_input(
    rollout: &Rollout,
    ctx: &Context,
    ns: &str,
    uid: &str,
    prior: Option<RolloutStatus>,
    rejected: Option<String>,
) -> Result<(PlanInput, Option<Duration>)> {
    let holders = ctx.listener_holders.clone();
    let (pods, revisions) = own_objects(ctx, ns, uid);
    let pods: Vec<ObservedPod> = pods
        .iter()
        .filter_map(|p| {
            let uid = p.metadata.uid.as_deref().unwrap_or_default();
            observe_pod(p, holders(ns, &p.name_any(), uid))
        })
        .collect();
    let revisions: Vec<RevisionInfo> = revisions.iter().filter_map(|r| revision_info(r)).collect();
    let sink_problems = ctx.notifier.problems(ns, &rollout.spec.notifications).await;
    // A broken sink is looked at again once its Secret read is stale: a fix shows then.
    let sinks_requeue = sink_problems
        .as_ref()
        .filter(|p| !p.is_empty())
        .map(|_| crate::webhooks::SECRET_TTL);
    let input = PlanInput {
        name: rollout.name_any(),
        namespace: ns.to_string(),
        generation: rollout.metadata.generation.unwrap_or(0),
        spec: rollout.spec.clone(),
        requests: ActionRequests::from_annotations(rollout.annotations()),
        status: prior,
        pods,
        revisions,
        now: Timestamp::now(),
        drain_timeout: ctx.drain_timeout,
        rejected,
        origin: crate::api::rollout::origin::SpecOwners::of(&rollout.metadata),
        checks: ctx.checks.progress(uid),
        sink_problems,
        jobs: jobs::own_jobs(&ctx.job_reads(), ns, uid).await?,
        workload: ctx.workloads.read(rollout, ns).await,
    };
    Ok((input, sinks_requeue))
}

fn publish_events(ctx: &Context, rollout: &Rollout, ns: &str, plan: &planner::Plan) {
    let events = &plan.events;
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
            .map(|ev| {
                let o = Occurrence::new(severity(ev.type_), ev.reason.to_string(), ev.message.clone());
                match transition_key(rollout, &plan.status, ev) {
                    Some(key) => o.once(key),
                    None => o,
                }
            })
            .collect(),
    );
}

/// The key of a rollout transition (a batch started or completed, the rollout completed,
/// failed or rolled back), from what the status records and the event's identity (which names
/// the batch): a transition reported again for the same generation, update revision and retry
/// (a plan from a stale cache, a restarted controller) is the same Event, published once.
/// Other events are aggregated into series instead.
fn transition_key(rollout: &Rollout, status: &RolloutStatus, ev: &planner::PlanEvent) -> Option<String> {
    use EventReason::*;
    if !matches!(
        ev.reason,
        BatchStarted | BatchCompleted | RolloutCompleted | BatchFailed | RollingBack | RolledBack
    ) {
        return None;
    }
    let generation = rollout.metadata.generation.unwrap_or(0);
    Some(crate::rollout::announce::decide::transition_key(generation, status, ev))
}

fn severity(t: planner::EventType) -> Severity {
    match t {
        planner::EventType::Normal => Severity::Normal,
        planner::EventType::Warning => Severity::Warning,
    }
}

impl Context {
    /// What [`jobs::own_jobs`] reads.
    fn job_reads(&self) -> JobReads<'_> {
        JobReads {
            client: &self.client,
            jobs: &self.jobs,
            owners: &self.owners.jobs,
            failed_pods: &self.failed_job_pods,
        }
    }

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

    /// Do the caches show write `e` of Rollout `ns/rollout`?
    fn shows(&self, ns: &str, rollout: &str, e: &Expected) -> bool {
        match e {
            Expected::PodCreated(n) => self.pods.get(&ObjectRef::new(n).within(ns)).is_some(),
            Expected::PodDeleted(n) => self
                .pods
                .get(&ObjectRef::new(n).within(ns))
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
            Expected::RevisionCreated(n) => self.revisions.get(&ObjectRef::new(n).within(ns)).is_some(),
            Expected::JobCreated(n) => self
                .jobs
                .get(&ObjectRef::new(n).within(ns))
                .is_some_and(|j| j.metadata.deletion_timestamp.is_none()),
            Expected::JobDeleted(n) => self
                .jobs
                .get(&ObjectRef::new(n).within(ns))
                .is_none_or(|j| j.metadata.deletion_timestamp.is_some()),
            // The write's version, or a newer object with the status written (only this
            // controller writes it), or the Rollout is gone or another.
            Expected::Status {
                uid,
                resource_version,
                status,
            } => self.rollouts.get(&ObjectRef::new(rollout).within(ns)).is_none_or(|r| {
                r.resource_version().as_deref() == Some(resource_version.as_str())
                    || r.status.as_ref() == Some(status.as_ref())
                    || r.uid().as_deref() != Some(uid.as_str())
            }),
        }
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
        bad.apply_status::<Rollout>(client, MANAGER, &plan.status, |n| {
            crate::backoff::delay(crate::backoff::Retry::Later, n)
        })
        .await;
    }
    let reference = bad.reference::<Rollout>();
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

/// Retry a failed Rollout with exponential backoff of its own (see [`crate::backoff`]): one
/// log line per failed attempt.
pub fn error_policy(rollout: Arc<Rollout>, err: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.backoff.on_error(rollout.as_ref(), err)
}
