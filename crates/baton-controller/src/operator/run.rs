//! Ways to run the operator: confined to several namespaces ([`Operators`]), alone in a
//! process until a signal ([`run`]), or only the ListenerSet controller ([`run_listeners`]).
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Operator, OperatorConfig, SharedCaches};
use crate::cache;
use crate::listeners::controller::{self as listener_controller};
use crate::metrics::Metrics;
use crate::rollout::controller::Stats;

/// The operator of a controller confined to a list of namespaces: one [`Operator`] per
/// namespace, each with caches of its own that list and watch only there (as
/// controller-runtime's multi-namespace cache keeps one informer per namespace), so RBAC needs
/// a Role in each and nothing cluster-wide. No namespaces: one operator watching all.
pub struct Operators(Vec<Operator>);

impl Operators {
    /// Start the caches of each namespace of `namespaces` (none: all), `cfg` for each.
    pub fn start(
        client: kube::Client,
        listener_client: kube::Client,
        cfg: OperatorConfig,
        namespaces: &[String],
        metrics: Arc<Metrics>,
    ) -> Operators {
        let scopes: Vec<Option<String>> = match namespaces {
            [] => vec![cfg.namespace.clone()],
            some => some.iter().cloned().map(Some).collect(),
        };
        let operators = scopes
            .into_iter()
            .map(|namespace| {
                let cfg = OperatorConfig {
                    namespace,
                    ..cfg.clone()
                };
                Operator::start_with(client.clone(), listener_client.clone(), cfg, metrics.clone())
            })
            .collect();
        Operators(operators)
    }

    /// Set `flag` once every cache of every namespace has its initial list.
    pub fn publish_synced(&self, flag: Arc<AtomicBool>) {
        let all: Vec<cache::Synced> = self.0.iter().flat_map(|o| o.synced.all()).collect();
        tokio::spawn(async move {
            cache::wait_all(&all).await;
            flag.store(true, Ordering::Relaxed);
        });
    }

    /// Run the controllers of every namespace until `shutdown` resolves (see
    /// [`Operator::lead`]); the CRDs are watched once.
    pub async fn lead(self, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
        let shutdown = futures::FutureExt::shared(shutdown);
        let leads = self
            .0
            .into_iter()
            .enumerate()
            .map(|(i, o)| Box::pin(o.lead_with(shutdown.clone(), i == 0)));
        futures::future::join_all(leads).await;
    }
}

/// Run the ListenerSet controller alone, on caches of its own, until `shutdown` resolves,
/// counting into `stats` (readable while it runs).
pub async fn run_listeners(
    client: kube::Client,
    cfg: listener_controller::ControllerConfig,
    stats: Arc<listener_controller::Stats>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<listener_controller::Stats> {
    let mut caches = SharedCaches::new(&client, &cfg.namespace);
    let views = listener_controller::SharedViews {
        pod_events: caches.pod_events(),
        pods: caches.namespace_pods(),
        leases: caches.leases.clone(),
        index: caches.lease_index.clone(),
        // Alone, no Rollout is cached: a Rollout's pods on two revisions hold evening out
        // until they are on one.
        rollouts: None,
        synced: vec![caches.leases_synced.clone()],
    };
    let drive = caches.drive();
    let ctrl = listener_controller::run_counted(client, cfg, views, Arc::new(Metrics::default()), stats, shutdown);
    tokio::pin!(drive);
    tokio::pin!(ctrl);
    loop {
        tokio::select! {
            stats = &mut ctrl => return stats,
            _ = &mut drive => {}
        }
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when the
/// future is first polled: a signal in between is not the default action (the process killed
/// before it released anything). Call it within the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + Sync + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (term, int) = (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        );
        async move {
            match (term, int) {
                (Some(mut t), Some(mut i)) => {
                    tokio::select! {
                        _ = t.recv() => {}
                        _ = i.recv() => {}
                    }
                }
                (Some(mut t), None) => {
                    t.recv().await;
                }
                (None, Some(mut i)) => {
                    i.recv().await;
                }
                (None, None) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Start the caches and run the controllers until `shutdown` (no leader election).
pub async fn run(
    client: kube::Client,
    cfg: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Stats> {
    run_with_metrics(client, cfg, Arc::new(Metrics::default()), shutdown).await
}

/// [`run`], counting into `metrics` (which `baton demo` serves).
pub async fn run_with_metrics(
    client: kube::Client,
    cfg: OperatorConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Stats> {
    Operator::start(client, cfg, metrics).lead(shutdown).await
}
