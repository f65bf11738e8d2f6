//! Wiring of the controllers. [`Operator::start`] starts the watch caches (pods, listener
//! Leases, revisions, Jobs, Rollouts, Deployments) at once — a standby keeps them warm — and
//! [`Operator::lead`] runs the Rollout and ListenerSet controllers on them until told to stop.
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::api::listenerset::lease::CachedLease;
use crate::api::pod::CachedPod;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::reflector::{self, Store};

use crate::cache::leases::LeaseStore;
use crate::cache::namespaces::NamespacePods;
use crate::cache::owners::OwnerIndex;
use crate::rollout::controller::OwnedIndexes;
use kube::runtime::{watcher, Controller, WatchStreamExt};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

mod caches;
mod crds;
mod run;
pub mod startup;

pub use run::{run, run_listeners, run_with_metrics, shutdown_signal, Operators};

use crate::listeners::controller::index::LeaseIndex;
pub use caches::{draining_rollouts_of_lease, SharedCaches};

use crate::api::rollout::{labels, CachedRevision, Rollout};
use crate::backoff::Backoff;
use crate::cache::tolerant::{self, Tolerant, Undecodables};
use crate::cache::{self, api, synced, Events, Synced};
use crate::listeners::controller::{self as listener_controller};
use crate::metrics::{self, Metrics};
use crate::rollout::controller::{self as rollout_controller, Context, Stats};
use crate::rollout::expectations::Expectations;

/// After a shutdown request, how long the controllers get to finish their reconciles before
/// they are dropped (a stuck cache or API call never holds the process, or its leader Lease).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Reconciles each controller runs at once, unless configured (`--concurrency`).
pub const DEFAULT_CONCURRENCY: u16 = 8;

/// Settings of a controller run.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Namespace to watch; None = all.
    pub namespace: Option<String>,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Bound on waiting for a draining pod to hand its listeners over.
    pub drain_timeout: Duration,
    /// Reporting instance for events (pod name).
    pub instance: String,
    /// Which Secrets the ListenerSet controller reads (what RBAC grants it).
    pub secrets: crate::listeners::controller::SecretAccess,
    /// Reconcile only the Rollouts and ListenerSets this label selector matches (a shard);
    /// None = all.
    pub selector: Option<String>,
    /// Retries of notifications.
    pub notify: crate::webhooks::Config,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            namespace: None,
            concurrency: DEFAULT_CONCURRENCY,
            drain_timeout: crate::rollout::planner::DEFAULT_DRAIN_TIMEOUT,
            instance: "baton".into(),
            secrets: Default::default(),
            selector: None,
            notify: Default::default(),
        }
    }
}

/// The operator's caches, warm from start; the controllers run only in [`Operator::lead`].
pub struct Operator {
    client: kube::Client,
    /// The ListenerSet controller's client (a token bucket of its own).
    listener_client: kube::Client,
    cfg: OperatorConfig,
    metrics: Arc<Metrics>,
    gate: Arc<AtomicBool>,
    pods: Store<CachedPod>,
    /// The pods of namespaces with a ListenerSet (watched while one uses them).
    namespace_pods: NamespacePods,
    leases: LeaseStore,
    revisions: Store<CachedRevision>,
    jobs: Store<Job>,
    rollouts: Store<Rollout>,
    /// Rollouts left out of the cache because they do not decode.
    bad_rollouts: Undecodables,
    /// The Deployments `spec.workloadRef` may name (not among `synced`: only the Rollouts
    /// that name one wait for it).
    workloads: crate::rollout::workload::Workloads,
    synced: Synced4,
    triggers: Triggers,
    listener_holders: crate::rollout::controller::HoldsListeners,
    owners: OwnedIndexes,
    caches: JoinHandle<()>,
}

/// Readiness of the pod, listener-Lease, revision, Job and Rollout caches.
#[derive(Clone)]
struct Synced4 {
    pods: Synced,
    leases: Synced,
    revisions: Synced,
    jobs: Synced,
    rollouts: Synced,
}

impl Synced4 {
    fn all(&self) -> [Synced; 5] {
        [
            self.pods.clone(),
            self.leases.clone(),
            self.revisions.clone(),
            self.jobs.clone(),
            self.rollouts.clone(),
        ]
    }
}

struct Triggers {
    rollout_pods: Events<CachedPod>,
    rollout_leases: Events<Arc<CachedLease>>,
    listener_pods: Events<CachedPod>,
    listener_leases: Arc<LeaseIndex>,
    revisions: Events<CachedRevision>,
    jobs: Events<Job>,
    rollouts: Events<Rollout>,
    deployments: Events<Deployment>,
}

impl Operator {
    /// Start the watch caches. Nothing reconciles until [`lead`](Self::lead).
    pub fn start(client: kube::Client, cfg: OperatorConfig, metrics: Arc<Metrics>) -> Self {
        Self::start_with(client.clone(), client, cfg, metrics)
    }

    /// [`start`](Self::start), the ListenerSet controller talking through `listener_client`.
    pub fn start_with(
        client: kube::Client,
        listener_client: kube::Client,
        cfg: OperatorConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let gate = Arc::new(AtomicBool::new(false));
        // One pod cache and one listener-Lease cache, shared by both controllers.
        let mut shared = SharedCaches::new(&client, &cfg.namespace);
        shared.set_forwarding(gate.clone());
        let (pods, leases) = (shared.pods.clone(), shared.leases.clone());
        let rollout_pods = shared.pod_events();
        let rollout_leases = shared.lease_events();
        let listener_pods = shared.pod_events();
        let listener_leases = shared.lease_index.clone();
        let listener_holders = shared.listener_holders();
        let namespace_pods = shared.namespace_pods();
        let owners = OwnedIndexes {
            pods: shared.pod_owners.clone(),
            revisions: OwnerIndex::default(),
            jobs: OwnerIndex::default(),
        };
        // Revisions as a projection: the template as JSON text, not a `Value` tree.
        let (revisions, rev_trigger, rev_synced, rev_drive) = labelled_cache(
            &client,
            &cfg,
            owners.revisions.clone(),
            gate.clone(),
            CachedRevision::prune,
        );
        // The Rollouts' Jobs (hooks, job checks): a finished one wakes its Rollout.
        let (jobs, job_trigger, job_synced, job_drive) =
            labelled_cache(&client, &cfg, owners.jobs.clone(), gate.clone(), |j: &mut Job| {
                j.metadata.managed_fields = None;
                // Of the spec only the selector is read (the pods of a failed Job, see `jobs`).
                j.spec = j.spec.take().map(|s| k8s_openapi::api::batch::v1::JobSpec {
                    selector: s.selector,
                    ..Default::default()
                });
            });
        let (rollouts, bad_rollouts, rollout_trigger, rollout_synced, rollout_drive) =
            rollout_cache(&client, &cfg, &metrics, gate.clone());
        let (workloads, deployment_trigger, deployment_drive) = deployment_cache(&client, &cfg, gate.clone());
        metrics.watch_rollouts(rollouts.clone());
        let (counted, in_namespaces) = (pods.clone(), namespace_pods.clone());
        metrics.watch_pods(Arc::new(move || counted.state().len() + in_namespaces.len()));
        let synced = Synced4 {
            pods: shared.pods_synced.clone(),
            leases: shared.leases_synced.clone(),
            revisions: rev_synced,
            jobs: job_synced,
            rollouts: rollout_synced,
        };
        let drive_shared = shared.drive();
        let caches = tokio::spawn(async move {
            futures::join!(drive_shared, rev_drive, job_drive, rollout_drive, deployment_drive);
        });
        Operator {
            client,
            listener_client,
            cfg,
            metrics,
            gate,
            pods,
            namespace_pods,
            leases,
            revisions,
            jobs,
            rollouts,
            bad_rollouts,
            workloads,
            synced,
            triggers: Triggers {
                rollout_pods,
                rollout_leases,
                listener_pods,
                listener_leases,
                revisions: rev_trigger,
                jobs: job_trigger,
                rollouts: rollout_trigger,
                deployments: deployment_trigger,
            },
            listener_holders,
            owners,
            caches,
        }
    }

    /// A flag that turns true once every cache has its initial list (for `/readyz`).
    pub fn synced(&self) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.publish_synced(flag.clone());
        flag
    }

    /// Set `flag` once every cache has its initial list: one task waits for them and
    /// publishes it.
    pub fn publish_synced(&self, flag: Arc<AtomicBool>) {
        let all = self.synced.all();
        tokio::spawn(async move {
            cache::wait_all(&all).await;
            flag.store(true, Ordering::Relaxed);
        });
    }

    /// Run both controllers until `shutdown` resolves, then stop the caches. Returns at most
    /// [`SHUTDOWN_GRACE`] after `shutdown` (plus a bounded wait for Events being published),
    /// whatever the controllers and caches are doing: what has not stopped by then is dropped.
    pub async fn lead(self, shutdown: impl Future<Output = ()> + Send + Sync + 'static) -> Arc<Stats> {
        // Boxed: the controllers' future is large, and a debug build's worker stack is not.
        Box::pin(self.lead_with(shutdown, true)).await
    }

    /// [`lead`](Self::lead), watching the CRDs too if `watch_crds` (one of several operators
    /// of a process is enough).
    async fn lead_with(
        self,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
        watch_crds: bool,
    ) -> Arc<Stats> {
        let stats = Arc::new(Stats::default());
        self.gate.store(true, Ordering::Relaxed);
        let shutdown = futures::FutureExt::shared(shutdown);
        let namespace_pods = self.namespace_pods.clone();
        let listeners = listener_work(
            &self.listener_client,
            &self.cfg,
            (self.namespace_pods, self.triggers.listener_pods),
            (self.leases, self.triggers.listener_leases, Some(self.rollouts.clone())),
            &self.synced,
            self.metrics.clone(),
            shutdown.clone(),
        );
        let events = crate::events::Publisher::new(
            self.client.clone(),
            crate::api::ROLLOUT_MANAGER,
            self.cfg.instance.clone(),
        );
        let expectations = Arc::new(Expectations::default());
        let rollout_pods = observed_pod_events(self.triggers.rollout_pods, expectations.clone());
        let (checks, checks_done) = crate::rollout::check_runs::CheckRunner::new(self.client.clone());
        let notifier = notifier(&self.client, &self.cfg, &events, &self.metrics);
        let crd_metrics = self.metrics.clone();
        let ctx = Arc::new(Context {
            client: self.client.clone(),
            events: events.clone(),
            pods: self.pods.clone(),
            revisions: self.revisions,
            jobs: self.jobs,
            failed_job_pods: Default::default(),
            owners: self.owners,
            rollouts: self.rollouts.clone(),
            listener_holders: self.listener_holders,
            drain_timeout: self.cfg.drain_timeout,
            stats: stats.clone(),
            synced: vec![
                self.synced.pods.clone(),
                self.synced.revisions.clone(),
                self.synced.jobs.clone(),
            ],
            backoff: Backoff::new(self.metrics.backoff_gauge("rollout")),
            rejections: Default::default(),
            expectations: expectations.clone(),
            status_written: Default::default(),
            checks: checks.clone(),
            notifier,
            workloads: self.workloads,
        });
        info!(
            namespace = self.cfg.namespace.as_deref().unwrap_or("<all>"),
            "starting the Rollout and ListenerSet controllers"
        );
        let rollouts_done = rollout_controller_run(
            RolloutTriggers {
                rollouts: self.triggers.rollouts,
                pods: rollout_pods,
                revisions: self.triggers.revisions,
                jobs: self.triggers.jobs,
                leases: self.triggers.rollout_leases,
                deployments: self.triggers.deployments,
                checks: checks_done,
                relisted: futures::stream::select_all(self.synced.all().iter().map(Synced::relisted)).boxed(),
            },
            self.rollouts,
            self.pods,
            ctx,
            self.metrics,
            self.cfg.concurrency,
            shutdown.clone(),
        );
        let report = report_undecodables(&self.client, &events, self.bad_rollouts, shutdown.clone());
        let crds = watch_crds.then(|| crds::watch(self.client.clone(), crd_metrics, shutdown.clone()));
        let crds = async move {
            if let Some(watch) = crds {
                watch.await
            }
        };
        let work = async {
            futures::join!(rollouts_done, listeners, report, crds);
        };
        within_grace(work, shutdown.clone()).await;
        events.drain(Duration::from_secs(2)).await;
        // Every watch ends before this returns: nothing is left talking to the API server.
        self.caches.abort();
        let _ = self.caches.await;
        namespace_pods.stop().await;
        log_stopped(&stats);
        stats
    }
}

/// The Rollout controller's pod events, each also shown to `expectations`: pod creations a
/// Rollout waits for are seen as the watch shows them (after the cache).
fn observed_pod_events(events: Events<CachedPod>, expectations: Arc<Expectations>) -> Events<CachedPod> {
    events
        .inspect(move |r| {
            if let Ok(p) = r {
                rollout_controller::observe_pod_event(&expectations, p);
            }
        })
        .boxed()
}

/// The Rollouts' notification queues (reading sink Secrets where `cfg.secrets` allows).
fn notifier(
    client: &kube::Client,
    cfg: &OperatorConfig,
    events: &crate::events::Publisher,
    metrics: &Metrics,
) -> Arc<crate::webhooks::Notifier> {
    let access = cfg.secrets.clone();
    crate::webhooks::Notifier::new(
        client.clone(),
        Arc::new(move |ns: &str| access.allows(ns)),
        events.clone(),
        metrics.notifications.clone(),
        cfg.notify.clone(),
    )
}

/// A gated watch cache of the objects of kind `K` with the Rollout label, each `prune`d of
/// what no decision reads, indexed by owner in `index`: its store, its changes, when it has
/// its first list, and the task that drives it.
fn labelled_cache<K>(
    client: &kube::Client,
    cfg: &OperatorConfig,
    index: OwnerIndex<K>,
    gate: Arc<AtomicBool>,
    prune: impl FnMut(&mut K) + Send + 'static,
) -> (Store<K>, Events<K>, Synced, impl Future<Output = ()> + Send + 'static)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let watch = watcher(
        api::<K>(client, &cfg.namespace),
        watcher::Config::default().labels(labels::ROLLOUT),
    )
    .modify(prune);
    let (store, writer) = reflector::store();
    let (synced_tx, synced) = synced();
    let (events, drive) = caches::gated_cache(watch, (writer, Some(index)), synced_tx, gate);
    (store, events, synced, drive)
}

/// The Rollout cache: its store, the Rollouts left out of it because they do not decode, its
/// changes, when it has its first list, and the task that drives it.
fn rollout_cache(
    client: &kube::Client,
    cfg: &OperatorConfig,
    metrics: &Arc<Metrics>,
    gate: Arc<AtomicBool>,
) -> (
    Store<Rollout>,
    Undecodables,
    Events<Rollout>,
    Synced,
    impl Future<Output = ()> + Send + 'static,
) {
    // Each Rollout is decoded on its own: one that does not fit the type is skipped and
    // reported, never the whole kind.
    let (rollouts, rollout_writer) = reflector::store();
    let bad_rollouts = Undecodables::new("Rollout", metrics.undecodable_gauge("Rollout"));
    let watched = metrics.clone();
    let rollout_watch = tolerant::decode_events(
        watcher(
            api::<Tolerant<Rollout>>(client, &cfg.namespace),
            cache::selected(cfg.selector.as_deref()),
        ),
        rollouts.clone(),
        bad_rollouts.clone(),
    )
    // Only what says who changed the spec is kept of managedFields (and no kubectl copy).
    .modify(|r: &mut Rollout| crate::api::rollout::origin::prune_for_cache(&mut r.metadata))
    .inspect(move |e| watched.crds.note_watch(crate::metrics::crds::ROLLOUTS, e));
    let (rollout_synced_tx, rollout_synced) = synced();
    let (rollout_trigger, rollout_drive) =
        caches::gated_cache(rollout_watch, (rollout_writer, None), rollout_synced_tx, gate);
    (rollouts, bad_rollouts, rollout_trigger, rollout_synced, rollout_drive)
}

/// A gated watch cache of the Deployments of the watched namespaces, pruned to what a plan
/// reads of one (see [`crate::rollout::workload`]): the cache, its changes, and the task that
/// drives it.
fn deployment_cache(
    client: &kube::Client,
    cfg: &OperatorConfig,
    gate: Arc<AtomicBool>,
) -> (
    crate::rollout::workload::Workloads,
    Events<Deployment>,
    impl Future<Output = ()> + Send + 'static,
) {
    let watch = watcher(api::<Deployment>(client, &cfg.namespace), watcher::Config::default())
        .modify(crate::rollout::workload::prune);
    let (deployments, writer) = reflector::store();
    let (synced_tx, synced) = synced();
    let (events, drive) = caches::gated_cache(watch, (writer, None), synced_tx, gate);
    let workloads = crate::rollout::workload::Workloads { deployments, synced };
    (workloads, events, drive)
}

/// Rollouts that do not decode, reported on the object while leading (until `shutdown`).
fn report_undecodables(
    client: &kube::Client,
    events: &crate::events::Publisher,
    bad_rollouts: Undecodables,
    shutdown: impl Future<Output = ()>,
) -> impl Future<Output = ()> {
    let (client, events) = (client.clone(), events.clone());
    let report = tolerant::report_each(bad_rollouts, move |b| {
        let (c, e) = (client.clone(), events.clone());
        async move { rollout_controller::report_undecodable(&c, &e, b).await }
    });
    async {
        tokio::select! {
            _ = report => {}
            _ = shutdown => {}
        }
    }
}

/// What the Rollout controller did while leading, once it stopped.
fn log_stopped(stats: &Stats) {
    info!(
        reconciles = stats.reconciles.load(Ordering::Relaxed),
        pod_creates = stats.pod_creates.load(Ordering::Relaxed),
        pod_deletes = stats.pod_deletes.load(Ordering::Relaxed),
        status_writes = stats.status_writes.load(Ordering::Relaxed),
        "the controllers stopped"
    );
}

/// The ListenerSet controller over the shared pod and Lease caches (and their events).
fn listener_work(
    client: &kube::Client,
    cfg: &OperatorConfig,
    (pods, pod_events): (NamespacePods, Events<CachedPod>),
    (leases, index, rollouts): (LeaseStore, Arc<LeaseIndex>, Option<Store<Rollout>>),
    synced: &Synced4,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = Arc<listener_controller::Stats>> {
    let listener_cfg = listener_controller::ControllerConfig {
        namespace: cfg.namespace.clone(),
        concurrency: cfg.concurrency,
        instance: cfg.instance.clone(),
        secrets: cfg.secrets.clone(),
        selector: cfg.selector.clone(),
        notify: cfg.notify.clone(),
    };
    let views = listener_controller::SharedViews {
        pods,
        pod_events,
        leases,
        index,
        rollouts,
        synced: vec![synced.leases.clone()],
    };
    listener_controller::run_counted(
        client.clone(),
        listener_cfg,
        views,
        metrics,
        Arc::new(listener_controller::Stats::default()),
        shutdown,
    )
}

/// Run `work` to its end, or until [`SHUTDOWN_GRACE`] after `shutdown`, whichever is first.
async fn within_grace(work: impl Future<Output = ()>, shutdown: impl Future<Output = ()>) {
    let overstay = async {
        shutdown.await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        _ = work => {}
        _ = overstay => warn!(
            grace = ?SHUTDOWN_GRACE,
            "the controllers did not stop within the shutdown grace period; dropping them"
        ),
    }
}

/// What wakes the Rollout controller.
struct RolloutTriggers {
    rollouts: Events<Rollout>,
    pods: Events<CachedPod>,
    revisions: Events<CachedRevision>,
    jobs: Events<Job>,
    leases: Events<Arc<CachedLease>>,
    /// Deployments changed: the Rollouts whose `spec.workloadRef` names them look again.
    deployments: Events<Deployment>,
    /// Check runs that finished.
    checks: futures::channel::mpsc::UnboundedReceiver<reflector::ObjectRef<Rollout>>,
    /// A cache the reconcile reads listed its objects again (see [`Synced::relisted`]).
    relisted: futures::stream::BoxStream<'static, ()>,
}

/// The Rollout controller, until `shutdown` and its in-flight reconciles finish.
fn rollout_controller_run(
    triggers: RolloutTriggers,
    rollouts: Store<Rollout>,
    pods: Store<CachedPod>,
    ctx: Arc<Context>,
    metrics: Arc<Metrics>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> + Send {
    // Every reconcile under its span, timed and counted; the work queue seen from the triggers.
    let queue = metrics.queue("rollout");
    metrics.set_max_concurrent("rollout", concurrency);
    let (forget, mapped, referenced) = (queue.clone(), queue.clone(), queue.clone());
    let referencing = rollouts.clone();
    let m = metrics.clone();
    let reconcile = move |r: Arc<Rollout>, ctx: Arc<Context>| {
        let m = m.clone();
        async move {
            m.objects.observe_phase(&r);
            let work = rollout_controller::reconcile(r.clone(), ctx.clone());
            let failed = |e: &crate::error::Error| ctx.backoff.record_failure(r.as_ref(), e);
            metrics::instrumented(
                &m,
                "rollout",
                r.as_ref(),
                work,
                crate::error::Error::metric_label,
                failed,
            )
            .await
        }
    };
    let (pod_owner, rev_owner, job_owner) = (
        |o: &CachedPod| metrics::queue::owner_keys(o, "Rollout"),
        |o: &CachedRevision| metrics::queue::owner_keys(o, "Rollout"),
        |o: &Job| metrics::queue::owner_keys(o, "Rollout"),
    );
    Controller::for_stream(
        metrics::queue::probe(queue.clone(), triggers.rollouts, metrics::queue::own_key),
        rollouts,
    )
    .owns_stream(metrics::queue::probe(queue.clone(), triggers.pods, pod_owner))
    .owns_stream(metrics::queue::probe(queue.clone(), triggers.revisions, rev_owner))
    // A hook's (or job check's) Job changed: its Rollout looks again.
    .owns_stream(metrics::queue::probe(queue, triggers.jobs, job_owner))
    // A draining pod released a listener: its Rollout may stop waiting and delete it.
    .reconcile_on(
        triggers
            .leases
            .filter_map(|l| async move { l.ok() })
            .flat_map(move |l| futures::stream::iter(mapped.add_refs(draining_rollouts_of_lease(&pods, &l)))),
    )
    // The Deployment of a `spec.workloadRef` changed: a new template is a new revision.
    .watches_stream(triggers.deployments, move |d| {
        referenced.add_refs(crate::rollout::workload::rollouts_referencing(&referencing, &d))
    })
    // A check run finished: its Rollout decides what it means.
    .reconcile_on(triggers.checks)
    // The caches filled while standing by: reconcile everything once on taking over, and
    // again after any of them listed anew (what changed in the gap triggered reconciles that
    // read the store from before it).
    .reconcile_all_on(futures::stream::once(async {}).chain(triggers.relisted))
    .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
    .graceful_shutdown_on(shutdown)
    .run(reconcile, rollout_controller::error_policy, ctx)
    .for_each(move |r| {
        match r {
            Ok(_) => {}
            // Logged by the error policy, once per attempt.
            Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
            // A trigger for an object that is not (or no longer) in the cache.
            Err(kube::runtime::controller::Error::ObjectNotFound(r)) => {
                forget.forget(&metrics::queue::key(r.namespace.as_deref(), &r.name));
                debug!(object = %r, "rollout controller: not found")
            }
            Err(e) => warn!(error = %e, "rollout controller"),
        }
        futures::future::ready(())
    })
}
