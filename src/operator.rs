//! Wiring of the controllers. [`Operator::start`] starts the watch caches (pods, listener
//! Leases, revisions, Rollouts) at once — a standby keeps them warm — and
//! [`Operator::lead`] runs the Rollout and ListenerSet controllers on them until told to stop.
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::api::rollout::{labels, Rollout};
use crate::listeners::controller::{self as listener_controller, Events};
use crate::metrics::Metrics;
use crate::rollout::controller::{self as rollout_controller, Context, Stats};

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
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            namespace: None,
            concurrency: 8,
            drain_timeout: Duration::from_secs(30),
            instance: "baton".into(),
        }
    }
}

fn api<K>(client: &kube::Client, ns: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    }
}

type Trigger<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// A reflector whose changes are passed to one subscriber only while `gate` is open.
fn gated_cache<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    gate: Arc<AtomicBool>,
) -> (Store<K>, Trigger<K>, impl Future<Output = ()> + Send + 'static)
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    let (store, writer) = reflector::store();
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let drive = stream
        .default_backoff()
        .reflect(writer)
        .touched_objects()
        .for_each(move |r| {
            match r {
                Ok(o) if gate.load(Ordering::Relaxed) => {
                    let _ = tx.unbounded_send(o);
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "watch"),
            }
            async {}
        });
    (store, rx.map(Ok).boxed(), drive)
}

/// The operator's caches, warm from start; the controllers run only in [`Operator::lead`].
pub struct Operator {
    client: kube::Client,
    cfg: OperatorConfig,
    metrics: Arc<Metrics>,
    gate: Arc<AtomicBool>,
    pods: Store<Pod>,
    leases: Store<Lease>,
    revisions: Store<ControllerRevision>,
    rollouts: Store<Rollout>,
    triggers: Triggers,
    listener_holders: crate::rollout::controller::HoldsListeners,
    caches: JoinHandle<()>,
}

struct Triggers {
    rollout_pods: Events<Pod>,
    rollout_leases: Events<Lease>,
    listener_pods: Events<Pod>,
    listener_leases: Events<Lease>,
    revisions: Trigger<ControllerRevision>,
    rollouts: Trigger<Rollout>,
}

impl Operator {
    /// Start the watch caches. Nothing reconciles until [`lead`](Self::lead).
    pub fn start(client: kube::Client, cfg: OperatorConfig, metrics: Arc<Metrics>) -> Self {
        let gate = Arc::new(AtomicBool::new(false));
        // One pod cache and one listener-Lease cache, shared by both controllers.
        let mut shared = listener_controller::SharedCaches::new(&client, &cfg.namespace);
        shared.set_forwarding(gate.clone());
        let (pods, leases) = (shared.pods.clone(), shared.leases.clone());
        let rollout_pods = shared.pod_events();
        let rollout_leases = shared.lease_events();
        let listener_pods = shared.pod_events();
        let listener_leases = shared.lease_events();
        let listener_holders = shared.listener_holders();
        let rev_watch = watcher(
            api::<ControllerRevision>(&client, &cfg.namespace),
            watcher::Config::default().labels(labels::ROLLOUT),
        )
        .modify(|r: &mut ControllerRevision| r.metadata.managed_fields = None);
        let (revisions, rev_trigger, rev_drive) = gated_cache(rev_watch, gate.clone());
        let rollout_watch = watcher(api::<Rollout>(&client, &cfg.namespace), watcher::Config::default())
            .modify(|r: &mut Rollout| r.metadata.managed_fields = None);
        let (rollouts, rollout_trigger, rollout_drive) = gated_cache(rollout_watch, gate.clone());
        metrics.watch_rollouts(rollouts.clone());
        let drive_shared = shared.drive();
        let caches = tokio::spawn(async move {
            futures::join!(drive_shared, rev_drive, rollout_drive);
        });
        Operator {
            client,
            cfg,
            metrics,
            gate,
            pods,
            leases,
            revisions,
            rollouts,
            triggers: Triggers {
                rollout_pods,
                rollout_leases,
                listener_pods,
                listener_leases,
                revisions: rev_trigger,
                rollouts: rollout_trigger,
            },
            listener_holders,
            caches,
        }
    }

    /// A flag that turns true once every cache has its initial list (for `/readyz`).
    pub fn synced(&self) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        let (f, pods, leases, revs, rollouts) = (
            flag.clone(),
            self.pods.clone(),
            self.leases.clone(),
            self.revisions.clone(),
            self.rollouts.clone(),
        );
        tokio::spawn(async move {
            let _ = pods.wait_until_ready().await;
            let _ = leases.wait_until_ready().await;
            let _ = revs.wait_until_ready().await;
            let _ = rollouts.wait_until_ready().await;
            f.store(true, Ordering::Relaxed);
        });
        flag
    }

    /// Run both controllers until `shutdown` resolves, then stop the caches.
    pub async fn lead(self, shutdown: impl Future<Output = ()> + Send + Sync + 'static) -> Arc<Stats> {
        let Operator {
            client,
            cfg,
            metrics,
            gate,
            pods,
            leases,
            revisions,
            rollouts,
            triggers,
            listener_holders,
            caches,
        } = self;
        let stats = Arc::new(Stats::default());
        gate.store(true, Ordering::Relaxed);
        let shutdown = futures::FutureExt::shared(shutdown);
        let listeners = listener_controller::run_shared(
            client.clone(),
            listener_controller::ControllerConfig {
                namespace: cfg.namespace.clone(),
                concurrency: cfg.concurrency,
                instance: cfg.instance.clone(),
            },
            pods.clone(),
            triggers.listener_pods,
            leases,
            triggers.listener_leases,
            shutdown.clone(),
        );
        let draining_pods = pods.clone();
        let events = crate::events::Publisher::new(client.clone(), "baton-rollout", cfg.instance.clone());
        let ctx = Arc::new(Context {
            client: client.clone(),
            events: events.clone(),
            pods,
            revisions,
            rollouts: rollouts.clone(),
            listener_holders: Some(listener_holders),
            drain_timeout: cfg.drain_timeout,
            stats: stats.clone(),
        });
        info!(
            namespace = cfg.namespace.as_deref().unwrap_or("<all>"),
            "starting the Rollout and ListenerSet controllers"
        );
        let rollout_metrics = metrics.clone();
        let reconcile = move |r: Arc<Rollout>, ctx: Arc<Context>| {
            let m = rollout_metrics.clone();
            async move {
                let started = Instant::now();
                let out = rollout_controller::reconcile(r, ctx).await;
                m.observe_reconcile("rollout", started, out.as_ref().err().map(|e| e.metric_label()));
                out
            }
        };
        let rollouts_done = Controller::for_stream(triggers.rollouts, rollouts)
            .owns_stream(triggers.rollout_pods)
            .owns_stream(triggers.revisions)
            // A draining pod released a listener: its Rollout may stop waiting and delete it.
            .watches_stream(triggers.rollout_leases, move |l| {
                listener_controller::draining_rollout_of_lease(&draining_pods, &l)
            })
            // The caches filled while standing by: reconcile everything once on taking over.
            .reconcile_all_on(futures::stream::once(async {}))
            .with_config(kube::runtime::controller::Config::default().concurrency(cfg.concurrency))
            .graceful_shutdown_on(shutdown)
            .run(reconcile, rollout_controller::error_policy, ctx)
            .for_each(|r| async move {
                if let Err(e) = r {
                    warn!(error = %e, "rollout controller");
                }
            });
        futures::join!(rollouts_done, listeners);
        events.drain(Duration::from_secs(2)).await;
        caches.abort();
        info!(
            reconciles = stats.reconciles.load(Ordering::Relaxed),
            pod_creates = stats.pod_creates.load(Ordering::Relaxed),
            pod_deletes = stats.pod_deletes.load(Ordering::Relaxed),
            status_writes = stats.status_writes.load(Ordering::Relaxed),
            "the controllers stopped"
        );
        stats
    }
}

/// Start the caches and run the controllers until `shutdown` (no leader election).
pub async fn run(
    client: kube::Client,
    cfg: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Stats> {
    Operator::start(client, cfg, Arc::new(Metrics::default()))
        .lead(shutdown)
        .await
}
