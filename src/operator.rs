//! Wiring of the controllers: shared watch caches (reflectors) for pods and revisions, and the
//! kube-runtime `Controller` for Rollouts, run until a shutdown signal.
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::Api;
use kube::runtime::{reflector, watcher, Controller, WatchStreamExt};
use tracing::{info, warn};

use crate::api::rollout::{labels, Rollout};
use crate::listeners::controller as listener_controller;
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
        OperatorConfig { namespace: None, concurrency: 8, drain_timeout: Duration::from_secs(30), instance: "baton".into() }
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


/// Run the Rollout controller until `shutdown` resolves. Returns its statistics.
pub async fn run(client: kube::Client, cfg: OperatorConfig, shutdown: impl Future<Output = ()> + Send + Sync + 'static) -> Arc<Stats> {
    let stats = Arc::new(Stats::default());
    // One pod cache and one listener-Lease cache, shared by the Rollout and ListenerSet controllers.
    let shutdown = futures::FutureExt::shared(shutdown);
    let mut caches = listener_controller::SharedCaches::new(&client, &cfg.namespace);
    let pods = caches.pods.clone();
    let pod_stream = caches.pod_events();
    let lease_stream = caches.lease_events();
    let listeners = listener_controller::run_shared(
        client.clone(),
        listener_controller::ControllerConfig { namespace: cfg.namespace.clone(), concurrency: cfg.concurrency, instance: cfg.instance.clone() },
        caches.pods.clone(),
        caches.pod_events(),
        caches.leases.clone(),
        caches.lease_events(),
        shutdown.clone(),
    );
    let listener_holders = caches.listener_holders();
    let drive_caches = caches.drive();
    let draining_pods = pods.clone();
    let (revisions, rev_writer) = reflector::store();
    let rev_stream = watcher(api::<ControllerRevision>(&client, &cfg.namespace), watcher::Config::default().labels(labels::ROLLOUT))
        .default_backoff()
        .modify(|r: &mut ControllerRevision| r.metadata.managed_fields = None)
        .reflect(rev_writer)
        .touched_objects();
    let ctx = Arc::new(Context {
        client: client.clone(),
        events: crate::events::Publisher { client: client.clone(), controller: "baton-rollout".into(), instance: cfg.instance.clone() },
        pods,
        revisions,
        listener_holders: Some(listener_holders),
        drain_timeout: cfg.drain_timeout,
        stats: stats.clone(),
    });
    info!(namespace = cfg.namespace.as_deref().unwrap_or("<all>"), "starting the Rollout controller");
    let rollouts = Controller::new(api::<Rollout>(&client, &cfg.namespace), watcher::Config::default())
        .owns_stream(pod_stream)
        .owns_stream(rev_stream)
        // A draining pod released a listener: its Rollout may stop waiting and delete it.
        .watches_stream(lease_stream, move |l| listener_controller::draining_rollout_of_lease(&draining_pods, &l))
        .with_config(kube::runtime::controller::Config::default().concurrency(cfg.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(rollout_controller::reconcile, rollout_controller::error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                warn!(error = %e, "controller");
            }
        });
    tokio::select! {
        _ = async { futures::join!(rollouts, listeners) } => {}
        _ = drive_caches => {}
    }
    info!(
        reconciles = stats.reconciles.load(Ordering::Relaxed),
        pod_creates = stats.pod_creates.load(Ordering::Relaxed),
        pod_deletes = stats.pod_deletes.load(Ordering::Relaxed),
        status_writes = stats.status_writes.load(Ordering::Relaxed),
        "the Rollout controller stopped"
    );
    stats
}
