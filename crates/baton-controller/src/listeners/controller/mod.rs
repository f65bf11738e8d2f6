//! The ListenerSet reconciler: caches → [`assigner::assign`](crate::listeners::assigner::assign) → conditional Lease writes →
//! status. The protocol itself is documented in [`crate::listeners::assigner`].
//!
//! * Caches: pods and listener Leases come from the caller ([`SharedViews`]: the operator's
//!   caches, shared with the Rollout controller); Secrets (keys only, values stripped) and
//!   ListenerSets from this controller's own watches.
//! * Expiry: a Lease is expired when `leaseDurationSeconds` (read by
//!   [`duration_of`](crate::api::listenerset::lease::duration_of), as the agent reads it)
//!   have passed on this process's monotonic clock since it first saw the Lease's current
//!   holder record (client-go's rule). `renewTime` is never compared with the local wall clock. A controller that starts
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
//! Layout: this module wires the controller (its watches, what wakes a set, the kube-rs
//! Controller); [`context`] holds what every reconcile shares, [`stats`] its counters and
//! [`publish`] its Events. One pass is [`reconcile`]: [`read`] (the caches a decision reads),
//! [`desired`] (the spec's listeners), [`balance`] (evening out), [`writes`] and [`leases`] (the conditional Lease writes),
//! [`report`], [`outbox`] (notifications), [`collisions`] (Lease names taken by others) and
//! [`finalize`] (deletion); [`index`] and [`liveness`] follow the listener and liveness
//! Leases, [`secrets`] the Secrets a set reads, [`undecodable`] the sets that do not decode.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;

use crate::api::pod::CachedPod;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, PredicateConfig, WatchStreamExt};
use tracing::{debug, info};

use crate::api::listenerset::ListenerSet;
use crate::backoff::Backoff;
use crate::cache::tolerant::{self, Tolerant, Undecodables};
use crate::cache::{api, Events, Synced};
use crate::error::Error;
use crate::events::Publisher;
use crate::listeners::MANAGER;
use crate::metrics::queue::WorkQueue;
use crate::metrics::Metrics;

mod balance;
mod collisions;
mod confirmations;
mod context;
mod desired;
mod facts;
mod finalize;
pub mod index;
mod leases;
pub mod liveness;
mod outbox;
mod pacing;
mod publish;
mod read;
mod reconcile;
mod report;
mod requests;
mod secrets;
mod stats;
mod statuses;
mod undecodable;
mod writes;

pub use context::{Context, ControllerConfig, SharedViews};
use context::{SetKey, StoppedPods};
use publish::publish;
pub use reconcile::reconcile;
pub use secrets::{SecretAccess, SecretStores};
pub use stats::Stats;
pub use undecodable::report_undecodable;

use crate::listeners::decide::Unresponsive;
use liveness::{LivenessTracker, PodWake};

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
    // What a watch's gap hid may have made a kept confirmation of a pod stale, too.
    let relist_ctx = ctx.clone();
    let relisted = futures::stream::select_all(
        (ctx.synced.iter().chain([&sets_synced]))
            .map(Synced::relisted)
            .chain([ctx.pods.relisted()]),
    )
    .inspect(move |_| relist_ctx.confirmations.forget_all(tokio::time::Instant::now()));
    let controller = kube::runtime::Controller::for_stream(
        crate::metrics::queue::probe(queue.clone(), set_changes, crate::metrics::queue::own_key),
        sets.clone(),
    );
    metrics.objects.watch_listener_sets(sets.clone());
    let (s1, s2) = (sets.clone(), sets.clone());
    let (q1, q2, forget) = (queue.clone(), queue.clone(), queue.clone());
    let pod_ctx = ctx.clone();
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
        .watches_stream(feeds.pods, move |p: CachedPod| {
            if let (Some(ns), Some(uid)) = (p.metadata.namespace.as_deref(), p.metadata.uid.as_deref()) {
                pod_ctx.confirmations.touch(ns, uid, tokio::time::Instant::now());
            }
            q2.add_refs(sets_selecting(&s2, &p))
        })
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
    ctx.in_flight.abort_all();
    ctx.statuses.abort_all();
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
    let notifier = crate::webhooks::Notifier::new(
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
        statuses: Default::default(),
        pacing: Default::default(),
        desired: Default::default(),
        lease_facts: Default::default(),
        collisions: Default::default(),
        confirmations: Default::default(),
        secrets,
        rollouts: views.rollouts,
        memory: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
        in_flight: Default::default(),
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
    .applied_objects()
    .predicate_filter(beyond_status, PredicateConfig::default());
    (sets, set_changes, sets_synced)
}

/// What of a set a change must touch to wake it: anything but its status. Every pass may write
/// the status, and each write would otherwise wake the set for a pass that finds nothing new (with
/// hundreds of sets, those passes queue ahead of the ones a drain or a takeover needs). The store
/// still holds every change, so the next pass reads the status written.
fn beyond_status(set: &ListenerSet) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let m = &set.metadata;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&m.uid, m.generation, &m.annotations, &m.labels, &m.finalizers).hash(&mut h);
    m.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
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
        wake_ctx
            .confirmations
            .touch(&w.namespace, &w.uid, tokio::time::Instant::now());
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

/// Retry a failed set with exponential backoff of its own (see [`crate::backoff`]): one log
/// line per failed attempt; a conflict starts fast.
pub fn error_policy(set: Arc<ListenerSet>, err: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.backoff.on_error(set.as_ref(), err)
}

#[cfg(test)]
mod tests;
