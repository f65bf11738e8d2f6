//! The ListenerSet reconciler: caches → [`assigner::assign`](crate::listeners::assigner::assign) → conditional Lease writes →
//! status. The protocol itself is documented in [`crate::listeners::assigner`].
//!
//! * Caches: pods and listener Leases come from the caller ([`SharedViews`]: the operator's
//!   caches, shared with the Rollout controller); Secrets (keys only, values stripped) and
//!   ListenerSets from this controller's own watches.
//! * Expiry: a Lease is expired when `leaseDurationSeconds` have passed on this process's
//!   monotonic clock since it first saw the Lease's current holder record (client-go's
//!   rule). `renewTime` is never compared with the local wall clock. A controller that starts
//!   (or takes over) therefore waits a full duration before judging any Lease expired.
//! * Every Lease write is conditional: creates fail on AlreadyExists, updates carry the
//!   `resourceVersion` the decision was made on, deletes carry it as a precondition. A 409
//!   just means "someone else acted first": the reconcile is retried from fresh caches.
//! * `baton listeners recover` sets [`RECOVER_ANNOTATION`](crate::api::listenerset::RECOVER_ANNOTATION) to a nonce; the next reconcile treats
//!   Leases whose holder pod is gone, not Ready or terminating as expired at once (orphans
//!   only: Leases of Ready holders are never touched), then records the nonce in
//!   [`RECOVERED_ANNOTATION`](crate::api::listenerset::RECOVERED_ANNOTATION).
//! * Deletion: every ListenerSet gets [`FINALIZER`](crate::api::listenerset::FINALIZER) before any of its Leases is written. Once it
//!   is being deleted, every listener is treated as removed ([`assigner::finalize`](crate::listeners::assigner::finalize)): live holders
//!   are asked to release, a Lease is deleted only once released, expired or its holder is gone,
//!   and the finalizer goes when the API server lists no Lease of the set any more.
//!
//! Layout: `desired` (the spec's listeners),
//! `expiry` (judging Leases), `reconcile` (one pass), `leases` (the Lease writes), `status`
//! (conditions and the status write), `notify` (notifications) and `finalize` (deletion).
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;

use crate::api::pod::CachedPod;
use crate::cache::namespaces::NamespacePods;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use tracing::{debug, info};

use crate::api::listenerset::ListenerSet;
use crate::backoff::Backoff;
use crate::cache::tolerant::{self, Tolerant, Undecodables};
use crate::cache::{api, Events, Synced};
use crate::error::Error;
use crate::events::{Occurrence, Publisher, Severity as EventType};
use crate::listeners::MANAGER;
use crate::metrics::queue::WorkQueue;
use crate::metrics::Metrics;

mod balance;
mod collisions;
mod desired;
mod expiry;
mod finalize;
pub mod index;
mod leases;
pub mod liveness;
mod notify;
mod read;
mod reconcile;
mod secrets;
mod status;
mod undecodable;
mod writes;

pub use reconcile::reconcile;
pub use secrets::{SecretAccess, SecretStores};
pub use undecodable::report_undecodable;

use crate::listeners::decide::{Decision, Memory, PodFacts, Unresponsive, UnseenWrites};
use index::LeaseIndex;
use liveness::{LivenessTracker, PodWake};

/// Settings of the ListenerSet controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Namespace to watch; None = all.
    pub namespace: Option<String>,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Reporting instance for events.
    pub instance: String,
    /// Which Secrets it reads (what RBAC grants it).
    pub secrets: SecretAccess,
    /// Reconcile only the ListenerSets this label selector matches (a shard); None = all.
    pub selector: Option<String>,
    /// Retries of notifications.
    pub notify: crate::notify::Config,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            concurrency: 8,
            instance: "baton".into(),
            secrets: SecretAccess::All,
            selector: None,
            notify: crate::notify::Config::default(),
        }
    }
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    pub lease_creates: AtomicU64,
    pub lease_updates: AtomicU64,
    pub lease_deletes: AtomicU64,
    pub release_requests: AtomicU64,
    /// Conditional Lease writes answered 409 or 404 (most are release requests crossing a
    /// release the agent made on its own, e.g. at SIGTERM: harmless).
    pub conflicts: AtomicU64,
    /// Of those, assignments: each one skips a fencing token (reserved in the status first).
    pub assign_conflicts: AtomicU64,
    pub status_writes: AtomicU64,
    pub takeovers: AtomicU64,
    pub handovers: AtomicU64,
    /// Liveness Leases fenced (their pods' agents stopped renewing).
    pub fences: AtomicU64,
    /// Liveness Leases created for new pods.
    pub liveness_creates: AtomicU64,
}

impl Stats {
    /// Every API write this controller made (Leases, status, recover annotations).
    pub fn writes(&self) -> u64 {
        self.lease_creates.load(Ordering::Relaxed)
            + self.lease_updates.load(Ordering::Relaxed)
            + self.lease_deletes.load(Ordering::Relaxed)
            + self.release_requests.load(Ordering::Relaxed)
            + self.status_writes.load(Ordering::Relaxed)
            + self.fences.load(Ordering::Relaxed)
            + self.liveness_creates.load(Ordering::Relaxed)
    }
}

/// (namespace, name) of a ListenerSet.
type SetKey = (String, String);

/// What a reconcile needs.
pub struct Context {
    pub client: kube::Client,
    pub events: Publisher,
    /// The pods of the sets' namespaces (each watched while a set uses it).
    pub pods: NamespacePods,
    pub leases: Store<Lease>,
    /// The listener Leases by set and holder, and when each holder record was first seen.
    pub index: Arc<LeaseIndex>,
    /// The pods' liveness Leases.
    pub liveness: Arc<LivenessTracker>,
    /// When this controller started watching (a fresh controller waits a lease duration before
    /// judging anything expired that it has not seen renewed).
    pub started: tokio::time::Instant,
    pub secrets: SecretStores,
    /// The Rollouts, when the Rollout controller runs beside ([`SharedViews::rollouts`]).
    pub rollouts: Option<Store<crate::api::rollout::Rollout>>,
    /// (namespace, set) → what the decisions remember of the set (see [`Memory`]).
    memory: Mutex<HashMap<(String, String), Memory>>,
    /// (namespace, set) → when its status was last written.
    status_at: Mutex<HashMap<SetKey, tokio::time::Instant>>,
    /// (namespace, set) → the set's Lease writes its cache has not shown yet.
    written: Mutex<HashMap<SetKey, UnseenWrites<Arc<Lease>>>>,
    /// Listener Lease names taken by Leases that are not the set's (see [`collisions`]).
    collisions: collisions::Collisions,
    /// Pods whose agents let a Lease of any set expire (see [`Unresponsive`]).
    unresponsive: Mutex<Unresponsive>,
    /// Pods the kubelet reported stopped, by uid (see [`StoppedPods`]).
    stopped: StoppedPods,
    pub stats: Arc<Stats>,
    /// Readiness of the Secret, pod and Lease caches: no decision is made before all three
    /// hold their first list (see [`crate::cache`] for why not `Store::wait_until_ready`).
    pub synced: Vec<Synced>,
    /// Per-set exponential backoff of failing reconciles.
    pub backoff: Backoff,
    /// Per-set handovers, takeovers, fencing conflicts and handover gaps.
    pub metrics: Arc<Metrics>,
    /// The notification queues of every set (see [`crate::notify`]).
    pub notifier: Arc<crate::notify::Notifier>,
}

impl Context {
    /// Run `f` on the memory of set `set` in `ns`.
    pub(super) fn with_memory<T>(&self, ns: &str, set: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry((ns.to_string(), set.to_string())).or_default())
    }

    /// Run `f` on the Lease writes of set `set` in `ns` that the cache has not shown yet.
    pub(super) fn with_expectations<T>(
        &self,
        ns: &str,
        set: &str,
        f: impl FnOnce(&mut UnseenWrites<Arc<Lease>>) -> T,
    ) -> T {
        let mut m = self.written.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry((ns.to_string(), set.to_string())).or_default())
    }

    /// The pods known unresponsive now.
    pub(super) fn unresponsive(&self) -> Unresponsive {
        self.unresponsive.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Learn from `decision` about `pods` (of namespace `ns`) which pods are unresponsive,
    /// forgetting pods that are gone.
    pub(super) fn learn_unresponsive(&self, ns: &str, decision: &Decision, pods: &[PodFacts]) {
        let live = self.pods.uids();
        let mut u = self.unresponsive.lock().unwrap_or_else(|p| p.into_inner());
        u.learn(decision, pods, |uid| self.liveness.registered(ns, uid));
        u.retain(|uid| live.contains(uid));
    }

    /// When set `key`'s status was last written by this controller.
    pub(super) fn status_written_at(&self, key: &SetKey) -> Option<tokio::time::Instant> {
        self.status_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    /// Set `key`'s status was written now.
    pub(super) fn status_written(&self, key: &SetKey) {
        let mut m = self.status_at.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(key.clone(), tokio::time::Instant::now());
    }

    /// Forget a deleted set.
    pub(super) fn forget(&self, ns: &str, set: &str) {
        let key = (ns.to_string(), set.to_string());
        self.memory.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        self.written.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        self.status_at.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        self.index.forget_set(ns, set);
        self.pods.release(ns, set);
        self.collisions.forget(ns, set);
    }
}

/// Pods the kubelet reported stopped ([`crate::api::pod::has_stopped`]), by uid, with when that
/// was seen: kept after the pods are gone (a gracefully deleted pod's last state shows every
/// container terminated), because only that proves its listeners stopped; a force-deleted pod's
/// last state does not. Forgotten after [`STOPPED_MEMORY`].
#[derive(Clone, Default)]
pub(super) struct StoppedPods(Arc<Mutex<HashMap<String, tokio::time::Instant>>>);

/// How long a stopped pod is remembered (far longer than any lease that could still name it).
const STOPPED_MEMORY: Duration = Duration::from_secs(3600);

impl StoppedPods {
    /// Note `pod`'s state as seen on the watch.
    fn note(&self, pod: &CachedPod) {
        let Some(uid) = pod.metadata.uid.as_ref() else { return };
        if !pod.has_stopped() {
            return;
        }
        let now = tokio::time::Instant::now();
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(uid.clone(), now);
        m.retain(|_, seen| now.saturating_duration_since(*seen) < STOPPED_MEMORY);
    }

    /// `pod_events`, each pod noted on its way.
    fn noting(&self, pod_events: Events<CachedPod>) -> Events<CachedPod> {
        let stopped = self.clone();
        pod_events
            .inspect(move |r| {
                if let Ok(p) = r {
                    stopped.note(p);
                }
            })
            .boxed()
    }

    /// The uids of every pod known stopped.
    pub(super) fn uids(&self) -> std::collections::BTreeSet<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

/// What the ListenerSet controller reads from caches it may share with other controllers (the
/// operator's): the pod and Lease stores, their change streams, and their readiness.
pub struct SharedViews {
    /// Where the pods of a set's namespace are read.
    pub pods: NamespacePods,
    /// Changes of the pods `pods` holds (others may pass too).
    pub pod_events: Events<CachedPod>,
    pub leases: Store<Lease>,
    /// The listener Leases by set and holder, following `leases`; it wakes the sets whose
    /// Leases changed in a way a decision reads.
    pub index: Arc<LeaseIndex>,
    /// The Rollout controller's cache, when it runs beside (evening out reads whether a Rollout
    /// whose pods run two revisions is settled).
    pub rollouts: Option<Store<crate::api::rollout::Rollout>>,
    /// Readiness of `leases` (a namespace's pods are waited for by the set's reconcile).
    pub synced: Vec<Synced>,
}

/// Secrets are cached with their keys only: values are never held in memory.
pub(super) fn strip_secret(s: &mut Secret) {
    s.metadata.managed_fields = None;
    s.metadata.annotations = None;
    s.string_data = None;
    if let Some(data) = s.data.as_mut() {
        for v in data.values_mut() {
            *v = k8s_openapi::ByteString(Vec::new());
        }
    }
}

/// Run the ListenerSet controller on caches shared with others until `shutdown` resolves,
/// counting into `stats`; undecodable ListenerSets are counted in `metrics` and reported on
/// the object (an Event and the InvalidSpec condition).
pub async fn run_counted(
    client: kube::Client,
    cfg: ControllerConfig,
    views: SharedViews,
    metrics: Arc<Metrics>,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Stats> {
    let (ctx, feeds) = start(&client, &cfg, views, &metrics, stats.clone());
    // Each ListenerSet is decoded on its own: one that does not fit the type is skipped and
    // reported, never the whole kind.
    let bad = Undecodables::new("ListenerSet", metrics.undecodable_gauge("ListenerSet"));
    // (tolerant::controller, with the work queue probed on the set's own changes.)
    let queue = metrics.queue("listenerset");
    metrics.set_max_concurrent("listenerset", cfg.concurrency);
    let (sets, set_changes, sets_synced) = watch_sets(
        &client,
        (&cfg.namespace, cfg.selector.as_deref()),
        bad.clone(),
        metrics.clone(),
    );
    // After any cache lists anew (Leases, Secrets, sets, a namespace's pods), every set is
    // looked at again (see `Synced::relisted`): what changed in the watch's gap triggered
    // reconciles that read the store from before the gap.
    let relisted = futures::stream::select_all(
        (ctx.synced.iter().chain([&sets_synced]))
            .map(Synced::relisted)
            .chain([ctx.pods.relisted()]),
    );
    let controller = kube::runtime::Controller::for_stream(
        crate::metrics::queue::probe(queue.clone(), set_changes, crate::metrics::queue::own_key),
        sets.clone(),
    );
    metrics.objects.watch_listener_sets(sets.clone());
    let (s1, s2) = (sets.clone(), sets.clone());
    let (q1, q2, forget) = (queue.clone(), queue.clone(), queue.clone());
    let wakes = woken_sets(&ctx, feeds.leases, feeds.liveness, sets, queue);
    let namespace_pods = ctx.pods.clone();
    info!(
        namespace = cfg.namespace.as_deref().unwrap_or("<all>"),
        "starting the ListenerSet controller"
    );
    let shutdown = futures::FutureExt::shared(shutdown);
    let report = report_until(bad, client.clone(), ctx.events.clone(), shutdown.clone());
    let run = controller
        .watches_stream(feeds.secrets, move |s: Secret| q1.add_refs(sets_using_secret(&s1, &s)))
        .watches_stream(feeds.pods, move |p: CachedPod| q2.add_refs(sets_selecting(&s2, &p)))
        .reconcile_on(wakes)
        .reconcile_all_on(relisted)
        .with_config(kube::runtime::controller::Config::default().concurrency(cfg.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_counted, error_policy, ctx.clone())
        .for_each(move |r| {
            if let Err(kube::runtime::controller::Error::ObjectNotFound(o)) = &r {
                forget.forget(&crate::metrics::queue::key(o.namespace.as_deref(), &o.name));
                namespace_pods.release(o.namespace.as_deref().unwrap_or_default(), &o.name);
            }
            if let Err(e) = r {
                debug!(error = %e, "listenerset controller");
            }
            futures::future::ready(())
        });
    futures::join!(run, report);
    ctx.events.drain(Duration::from_secs(2)).await;
    info!("the ListenerSet controller stopped");
    stats
}

/// What wakes sets besides their own changes.
struct Feeds {
    /// Secrets the sets may read (listener configs, notification sinks).
    secrets: Events<Secret>,
    /// Pod changes, each noted in [`StoppedPods`] on its way.
    pods: Events<CachedPod>,
    /// Sets whose listener Leases changed in a way a decision reads ([`LeaseIndex::wakes`]).
    leases: UnboundedReceiver<(String, String)>,
    /// Pods whose liveness changed or lapsed ([`LivenessTracker::run`]).
    liveness: BoxStream<'static, PodWake>,
}

/// The context every reconcile shares, with the watches of its own it starts (Secrets, the
/// pods' liveness Leases), and what wakes sets.
fn start(
    client: &kube::Client,
    cfg: &ControllerConfig,
    views: SharedViews,
    metrics: &Arc<Metrics>,
    stats: Arc<Stats>,
) -> (Arc<Context>, Feeds) {
    // Every pod change passes here first: the last state of a deleted pod is seen only here.
    let stopped = StoppedPods::default();
    let pod_events = stopped.noting(views.pod_events);
    let secret_watch = secrets::watch(client, &cfg.secrets, &cfg.namespace);
    let secrets = secret_watch.stores;
    let secret_stream = secret_watch.changes;
    let mut synced = views.synced;
    synced.extend(secret_watch.synced);
    let events = Publisher::new(client.clone(), MANAGER, cfg.instance.clone());
    let notifier = crate::notify::Notifier::new(
        client.clone(),
        {
            let access = cfg.secrets.clone();
            Arc::new(move |ns: &str| access.allows(ns))
        },
        events.clone(),
        metrics.notifications.clone(),
        cfg.notify.clone(),
    );
    // The liveness Leases: a watch of their own, listed before any decision.
    let tracker = Arc::new(LivenessTracker::default());
    let (live_synced_tx, live_synced) = crate::cache::synced();
    synced.push(live_synced);
    let pod_wakes = tracker.clone().run(client, &cfg.namespace, live_synced_tx).boxed();
    let lease_wakes = views.index.wakes();
    let ctx = Arc::new(Context {
        client: client.clone(),
        events,
        pods: views.pods,
        leases: views.leases,
        index: views.index,
        liveness: tracker,
        started: tokio::time::Instant::now(),
        status_at: Mutex::new(HashMap::new()),
        collisions: Default::default(),
        secrets,
        rollouts: views.rollouts,
        memory: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
        unresponsive: Mutex::new(Unresponsive::default()),
        stopped,
        stats,
        synced,
        backoff: Backoff::new(metrics.backoff_gauge("listenerset")),
        metrics: metrics.clone(),
        notifier,
    });
    let feeds = Feeds {
        secrets: secret_stream,
        pods: pod_events,
        leases: lease_wakes,
        liveness: pod_wakes,
    };
    (ctx, feeds)
}

/// The ListenerSets of `namespace` (all when `None`) that `selector` selects: their store, their
/// changes (each set decoded on its own, the undecodable ones kept in `bad`) and its readiness.
/// A list answered 404 (the CRD is gone) is noted in `metrics`.
fn watch_sets(
    client: &kube::Client,
    (namespace, selector): (&Option<String>, Option<&str>),
    bad: Undecodables,
    metrics: Arc<Metrics>,
) -> (
    Store<ListenerSet>,
    impl Stream<Item = Result<ListenerSet, watcher::Error>> + Send + 'static,
    Synced,
) {
    let (sets, writer) = reflector::store();
    let (sets_synced_tx, sets_synced) = crate::cache::synced();
    let set_changes = tolerant::decode_events(
        watcher(
            api::<Tolerant<ListenerSet>>(client, namespace),
            crate::cache::selected(selector),
        ),
        sets.clone(),
        bad,
    )
    .inspect(move |e| metrics.crds.note_watch(crate::metrics::crds::LISTENERSETS, e))
    .default_backoff()
    .reflect(writer)
    .inspect(move |e| sets_synced_tx.observe(e))
    .applied_objects();
    (sets, set_changes, sets_synced)
}

/// The sets to look at again, each counted on `queue`: those whose listener Leases changed in a
/// way a decision reads (`leases`), and, for a pod whose liveness changed or lapsed
/// (`liveness`), the sets it holds listeners of and the sets that select it (it may take
/// listeners now, or no longer).
fn woken_sets(
    ctx: &Arc<Context>,
    leases: UnboundedReceiver<(String, String)>,
    liveness: BoxStream<'static, PodWake>,
    sets: Store<ListenerSet>,
    queue: Arc<WorkQueue>,
) -> impl Stream<Item = ObjectRef<ListenerSet>> + Send + 'static {
    let lease_queue = queue.clone();
    let lease_refs = leases.map(move |(ns, set)| {
        let r = ObjectRef::new(&set).within(&ns);
        lease_queue.add_refs(vec![r.clone()]);
        r
    });
    let (wake_ctx, wake_pods) = (ctx.clone(), ctx.pods.clone());
    let pod_refs = liveness.flat_map(move |w| {
        let mut refs: Vec<ObjectRef<ListenerSet>> = wake_ctx
            .index
            .sets_held_by(&w.namespace, &w.uid)
            .into_iter()
            .map(|s| ObjectRef::new(&s).within(&w.namespace))
            .collect();
        if let Some(pod) = wake_pods.get(&w.namespace, &w.pod) {
            refs.extend(sets_selecting(&sets, &pod));
        }
        refs.sort_by(|a, b| a.name.cmp(&b.name));
        refs.dedup();
        futures::stream::iter(queue.add_refs(refs))
    });
    futures::stream::select(lease_refs, pod_refs)
}

/// Report each undecodable ListenerSet of `bad` (an Event and the InvalidSpec condition) until
/// `shutdown`.
async fn report_until(bad: Undecodables, client: kube::Client, events: Publisher, shutdown: impl Future<Output = ()>) {
    let report = tolerant::report_each(bad, move |b| {
        let (c, e) = (client.clone(), events.clone());
        async move { report_undecodable(&c, &e, b).await }
    });
    tokio::select! {
        _ = report => {}
        _ = shutdown => {}
    }
}

/// [`reconcile`] under its span, timed and counted; a success resets the set's backoff.
async fn reconcile_counted(set: Arc<ListenerSet>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let work = reconcile(set.clone(), ctx.clone());
    let failed = |e: &Error| ctx.backoff.record_failure(set.as_ref(), e);
    let out = crate::metrics::instrumented(
        &ctx.metrics,
        "listenerset",
        set.as_ref(),
        work,
        Error::metric_label,
        failed,
    )
    .await;
    if out.is_ok() {
        ctx.backoff.on_success(set.as_ref());
    }
    out
}

fn sets_using_secret(sets: &Store<ListenerSet>, secret: &Secret) -> Vec<ObjectRef<ListenerSet>> {
    let ns = secret.metadata.namespace.as_deref();
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    sets.state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == ns)
        .filter(|s| {
            // A selector: any Secret of the namespace may start or stop matching it.
            s.spec
                .listeners_from
                .as_ref()
                .is_some_and(|f| f.secret_selector.is_some() || f.secret_ref.as_ref().is_some_and(|r| r.name == name))
                || s.spec
                    .listeners
                    .iter()
                    .any(|l| l.config_ref.as_ref().is_some_and(|c| c.secret_key_ref.name == name))
                || s.spec.notifications.iter().any(|n| n.sink.secret_ref.name == name)
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

fn sets_selecting(sets: &Store<ListenerSet>, pod: &CachedPod) -> Vec<ObjectRef<ListenerSet>> {
    let ns = pod.metadata.namespace.as_deref();
    sets.state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == ns)
        .filter(|s| crate::api::pod::selector_matches_labels(&s.spec.selector, &pod.labels))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    // Events are informative: never hold a handover up for one.
    ctx.events
        .publish_in_background(reference.clone(), vec![Occurrence::new(type_, reason, note)]);
}

/// Retry a failed set with exponential backoff of its own (see [`crate::backoff`]): one log
/// line per failed attempt; a conflict starts fast.
pub fn error_policy(set: Arc<ListenerSet>, err: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.backoff.on_error(set.as_ref(), err)
}

#[cfg(test)]
mod tests;
