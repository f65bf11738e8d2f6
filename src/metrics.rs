//! Prometheus metrics: reconciles, errors and durations per controller, leadership, Rollouts per
//! phase and instances per version (computed from the cache at scrape time), and the Kubernetes
//! API requests the operator makes, by verb and code (a tower layer on the client).
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use kube::runtime::reflector::Store;
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::rollout::Rollout;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: String,
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ControllerLabel, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabel, Histogram>,
    pub leader: Gauge<i64, AtomicI64>,
    pub leader_transitions: Counter<u64, AtomicU64>,
    pub api_requests: Family<RequestLabels, Counter>,
    /// Objects whose last reconcile failed (backing off), per controller.
    pub backoff_objects: Family<ControllerLabel, Gauge>,
    /// Objects left out of a cache because they do not decode, per kind.
    pub undecodable_objects: Family<KindLabel, Gauge>,
    rollouts_by_phase: Family<PhaseLabel, Gauge>,
    instances_by_version: Family<VersionLabel, Gauge>,
    rollouts: std::sync::Mutex<Option<Store<Rollout>>>,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("baton");
        let reconciles = Family::<ControllerLabel, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration =
            Family::<ControllerLabel, Histogram>::new_with_constructor(duration_histogram as fn() -> Histogram);
        let leader = Gauge::<i64, AtomicI64>::default();
        let leader_transitions = Counter::<u64, AtomicU64>::default();
        let api_requests = Family::<RequestLabels, Counter>::default();
        let backoff_objects = Family::<ControllerLabel, Gauge>::default();
        let undecodable_objects = Family::<KindLabel, Gauge>::default();
        let rollouts_by_phase = Family::<PhaseLabel, Gauge>::default();
        let instances_by_version = Family::<VersionLabel, Gauge>::default();
        registry.register("reconciles", "Reconciles run, per controller", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, per controller and error kind",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration, per controller",
            reconcile_duration.clone(),
        );
        registry.register("leader", "1 while this replica is the leader", leader.clone());
        registry.register(
            "leader_transitions",
            "Times this replica became the leader",
            leader_transitions.clone(),
        );
        registry.register(
            "kubernetes_api_requests",
            "Kubernetes API requests made, by verb and HTTP code",
            api_requests.clone(),
        );
        registry.register(
            "reconcile_backoff_objects",
            "Objects whose last reconcile failed and that are retried with backoff, per controller",
            backoff_objects.clone(),
        );
        registry.register(
            "undecodable_objects",
            "Objects skipped because they do not decode (see the log and their Events), per kind",
            undecodable_objects.clone(),
        );
        registry.register("rollouts", "Rollouts per phase", rollouts_by_phase.clone());
        registry.register(
            "rollout_instances",
            "Rollout instances per version",
            instances_by_version.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            leader,
            leader_transitions,
            api_requests,
            backoff_objects,
            undecodable_objects,
            rollouts_by_phase,
            instances_by_version,
            rollouts: std::sync::Mutex::new(None),
        }
    }
}

impl Metrics {
    /// The Rollout cache the per-phase and per-version gauges are computed from.
    pub fn watch_rollouts(&self, store: Store<Rollout>) {
        *self.rollouts.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    /// The gauge of objects backing off in `controller`.
    pub fn backoff_gauge(&self, controller: &str) -> Gauge {
        self.backoff_objects
            .get_or_create(&ControllerLabel {
                controller: controller.to_string(),
            })
            .clone()
    }

    /// The gauge of undecodable objects of `kind`.
    pub fn undecodable_gauge(&self, kind: &str) -> Gauge {
        self.undecodable_objects
            .get_or_create(&KindLabel { kind: kind.to_string() })
            .clone()
    }

    /// Count one finished reconcile.
    pub fn observe_reconcile(&self, controller: &str, started: Instant, error: Option<&str>) {
        let label = ControllerLabel {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&label).inc();
        self.reconcile_duration
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        if let Some(e) = error {
            self.reconcile_errors
                .get_or_create(&ErrorLabels {
                    controller: controller.to_string(),
                    error: e.to_string(),
                })
                .inc();
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.rollouts_by_phase.clear();
        self.instances_by_version.clear();
        if let Some(store) = self.rollouts.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            for r in store.state() {
                let st = r.status.clone().unwrap_or_default();
                let phase = st.phase.map(|p| p.to_string()).unwrap_or_else(|| "Pending".into());
                self.rollouts_by_phase.get_or_create(&PhaseLabel { phase }).inc();
                for (v, n) in st.versions {
                    self.instances_by_version
                        .get_or_create(&VersionLabel { version: v })
                        .inc_by(i64::from(n));
                }
            }
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// A tower layer counting the client's requests by verb and response code.
#[derive(Clone)]
pub struct CountRequests(pub Arc<Metrics>);

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

fn verb<B>(req: &http::Request<B>) -> &'static str {
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    match *req.method() {
        http::Method::GET if watch => "watch",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let verb = verb(&req);
        let metrics = self.metrics.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            let code = match &r {
                Ok(resp) => resp.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            metrics
                .api_requests
                .get_or_create(&RequestLabels {
                    verb: verb.to_string(),
                    code,
                })
                .inc();
            r
        })
    }
}

/// A client whose requests are counted in `metrics`.
pub fn counted_client(config: kube::Config, metrics: Arc<Metrics>) -> Result<kube::Client, kube::Error> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&CountRequests(metrics))
        .build())
}
