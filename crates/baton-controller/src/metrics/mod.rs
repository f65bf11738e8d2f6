//! Prometheus metrics of `baton controller` (and `baton demo`), listed with their types and
//! labels in docs/operating.md:
//!
//! * per controller (`rollout`, `listenerset`): reconciles by result, errors by kind, duration,
//!   reconciles running, the work queue (depth, adds, time from a trigger to its reconcile) and
//!   objects backing off (`queue`);
//! * per object, labelled `namespace` and `name`, computed from the caches as a scrape encodes
//!   them (a collector) so a deleted object's series go with it (`objects`);
//! * listener handovers, takeovers, fencing conflicts and the handover gap per ListenerSet
//!   (`objects`, `gaps`);
//! * the process (CPU, memory, file descriptors: `process`), the build, leadership, and the
//!   Kubernetes API requests made (`requests`).
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub mod crds;
mod gaps;
mod objects;
mod process;
pub mod queue;
mod requests;
mod runtime;

pub use objects::{ObjectLabels, Objects};
pub use queue::{instrumented, WorkQueue};
pub use requests::{CountRequests, Counted};
pub use runtime::Runtime;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub controller: String,
    /// `success` (nothing more to do), `requeue` (look again later), `error`.
    pub result: String,
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
pub struct NotificationLabels {
    /// `delivered`, `retried` (an attempt failed; it is tried again) or `failed` (dropped
    /// after the retry bound).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub commit: String,
}

/// The commit baton was built from (`BATON_COMMIT` at build time, else `git`), or `unknown`.
pub const COMMIT: &str = env!("BATON_BUILD_COMMIT");

/// Buckets of reconcile durations (seconds).
fn duration_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabel, Histogram>,
    pub reconcile_active: Family<ControllerLabel, Gauge>,
    pub leader: Gauge<i64, AtomicI64>,
    pub leader_transitions: Counter<u64, AtomicU64>,
    pub api_requests: Family<RequestLabels, Counter>,
    /// Objects whose last reconcile failed (backing off), per controller.
    pub backoff_objects: Family<ControllerLabel, Gauge>,
    /// Objects left out of a cache because they do not decode, per kind.
    pub undecodable_objects: Family<KindLabel, Gauge>,
    queue_depth: Family<ControllerLabel, Gauge>,
    queue_adds: Family<ControllerLabel, Counter>,
    queue_latency: Family<ControllerLabel, Histogram>,
    queues: Mutex<Vec<Arc<WorkQueue>>>,
    /// Per-object series (Rollouts, ListenerSets).
    pub objects: Objects,
    /// Notification attempts by result.
    pub notifications: Family<NotificationLabels, Counter>,
    /// The same facts under controller-runtime's and client-go's names.
    pub runtime: Runtime,
    /// Whether the CRDs of Rollouts and ListenerSets are installed (see [`crds`]).
    pub crds: crds::Crds,
    /// How long each decision took, reading the caches included, per controller (`listenerset`).
    pub decision_duration: Family<ControllerLabel, Histogram>,
    /// How many objects each decision read, per controller (`listenerset`: its listeners and
    /// listener Leases).
    pub decision_size: Family<ControllerLabel, Histogram>,
    /// Of those, how many each decision decided one by one, per controller (`listenerset`: the
    /// unsettled listeners and their Leases; it counts the settled ones on their pods).
    pub decision_decided: Family<ControllerLabel, Histogram>,
}

/// Buckets of the sizes of a decision (objects read).
fn size_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(10.0, 4.0, 9))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let mut m = Metrics {
            // Replaced by `root` once every family is registered in it.
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(duration_histogram),
            reconcile_active: Family::default(),
            leader: Gauge::default(),
            leader_transitions: Counter::default(),
            api_requests: Family::default(),
            backoff_objects: Family::default(),
            undecodable_objects: Family::default(),
            queue_depth: Family::default(),
            queue_adds: Family::default(),
            queue_latency: Family::new_with_constructor(duration_histogram),
            queues: Mutex::new(Vec::new()),
            objects: Objects::default(),
            notifications: Family::default(),
            runtime: Runtime::default(),
            crds: crds::Crds::default(),
            decision_duration: Family::new_with_constructor(duration_histogram),
            decision_size: Family::new_with_constructor(size_histogram),
            decision_decided: Family::new_with_constructor(size_histogram),
        };
        m.register(root.sub_registry_with_prefix("baton"));
        m.runtime
            .register(&mut root, &m.reconcile_duration, &m.reconcile_active);
        m.registry = root;
        m
    }
}

impl Metrics {
    /// Register every family in `r`, in the order of the scrape output.
    fn register(&self, r: &mut Registry) {
        register_build_info(r);
        r.register(
            "reconcile",
            "Reconciles run, per controller and result (success, requeue, error)",
            self.reconciles.clone(),
        );
        r.register(
            "reconcile_errors",
            "Reconciles that failed, per controller and error kind",
            self.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Reconcile duration, per controller",
            self.reconcile_duration.clone(),
        );
        r.register(
            "reconcile_active",
            "Reconciles running now, per controller",
            self.reconcile_active.clone(),
        );
        r.register(
            "workqueue_depth",
            "Objects a change has triggered and whose reconcile has not started yet, per controller",
            self.queue_depth.clone(),
        );
        r.register(
            "workqueue_adds",
            "Objects triggered for a reconcile (a change of the object or of what it watches), per controller",
            self.queue_adds.clone(),
        );
        r.register(
            "workqueue_queue_duration_seconds",
            "Time from the first change that triggered an object to the start of its reconcile, per controller",
            self.queue_latency.clone(),
        );
        r.register("leader", "1 while this replica is the leader", self.leader.clone());
        r.register(
            "leader_transitions",
            "Times this replica became the leader",
            self.leader_transitions.clone(),
        );
        r.register(
            "kubernetes_api_requests",
            "Kubernetes API requests made, by verb and HTTP code",
            self.api_requests.clone(),
        );
        r.register(
            "reconcile_backoff_objects",
            "Objects whose last reconcile failed and that are retried with backoff, per controller",
            self.backoff_objects.clone(),
        );
        r.register(
            "undecodable_objects",
            "Objects skipped because they do not decode (see the log and their Events), per kind",
            self.undecodable_objects.clone(),
        );
        r.register(
            "notifications",
            "Notification attempts, by result: delivered, retried (failed, tried again), failed (dropped after the retry bound)",
            self.notifications.clone(),
        );
        r.register(
            "crd_installed",
            "1 while the CustomResourceDefinition is installed and not being deleted, 0 while it is being deleted or missing",
            self.crds.installed.clone(),
        );
        r.register(
            "decision_duration_seconds",
            "Time of each decision, reading the caches included, per controller",
            self.decision_duration.clone(),
        );
        r.register(
            "decision_size",
            "Objects each decision read, per controller (listenerset: its listeners and listener Leases)",
            self.decision_size.clone(),
        );
        r.register(
            "decision_decided",
            "Of the objects each decision read, those it decided one by one, per controller (listenerset: the listeners not settled, and their Leases)",
            self.decision_decided.clone(),
        );
        self.objects.register(r);
    }
}

/// `baton_build_info`: 1, labelled with the version and the commit.
fn register_build_info(registry: &mut Registry) {
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").into(),
            commit: COMMIT.into(),
        })
        .set(1);
    registry.register(
        "build_info",
        "1, labelled with the version and the commit baton was built from",
        build,
    );
}

impl Metrics {
    /// The Rollout cache the per-Rollout series are computed from.
    pub fn watch_rollouts(&self, store: kube::runtime::reflector::Store<crate::api::rollout::Rollout>) {
        self.objects.watch_rollouts(store);
    }

    /// What `baton_cached_pods` reads: the number of pods the watch caches hold.
    pub fn watch_pods(&self, count: objects::PodCount) {
        self.objects.watch_pods(count);
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

    /// The work queue of `controller` (one per controller, made on first use, as its controller
    /// starts). Its error and retry counters exist from then on, at 0 until something fails, as
    /// controller-runtime and client-go's work queue export them: a rate over them is 0, not
    /// absent, on a controller that never failed.
    pub fn queue(&self, controller: &str) -> Arc<WorkQueue> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = queues.iter().find(|q| q.controller == controller) {
            return q.clone();
        }
        let label = ControllerLabel {
            controller: controller.to_string(),
        };
        let name = runtime::NameLabel {
            name: controller.to_string(),
        };
        // A series exists, at 0, once asked for.
        let _ = self.runtime.errors.get_or_create(&label);
        let _ = self.runtime.retries.get_or_create(&name);
        let q = Arc::new(WorkQueue::new(
            controller,
            queue::Series {
                depth: self.queue_depth.get_or_create(&label).clone(),
                adds: self.queue_adds.get_or_create(&label).clone(),
                latency: self.queue_latency.get_or_create(&label).clone(),
            },
            queue::Series {
                depth: self.runtime.queue_depth.get_or_create(&name).clone(),
                adds: self.runtime.queue_adds.get_or_create(&name).clone(),
                latency: self.runtime.queue_latency.get_or_create(&name).clone(),
            },
        ));
        queues.push(q.clone());
        q
    }

    /// Count one finished reconcile of `controller`: its duration, result and error kind.
    pub fn observe_reconcile(&self, controller: &str, seconds: f64, result: &str, error: Option<&str>) {
        let label = ControllerLabel {
            controller: controller.to_string(),
        };
        self.reconciles
            .get_or_create(&ResultLabels {
                controller: controller.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.reconcile_duration.get_or_create(&label).observe(seconds);
        self.runtime.observe(controller, seconds, result);
        if let Some(e) = error {
            self.reconcile_errors
                .get_or_create(&ErrorLabels {
                    controller: controller.to_string(),
                    error: e.to_string(),
                })
                .inc();
        }
    }

    /// `controller` runs at most `n` reconciles at once.
    pub fn set_max_concurrent(&self, controller: &str, n: u16) {
        self.runtime
            .max_concurrent
            .get_or_create(&ControllerLabel {
                controller: controller.to_string(),
            })
            .set(i64::from(n));
    }

    /// Whether this replica leads, on Lease `lease` (`baton_leader` and client-go's
    /// `leader_election_master_status`).
    pub fn set_leader(&self, lease: &str, leading: bool) {
        self.leader.set(i64::from(leading));
        self.runtime
            .leader
            .get_or_create(&runtime::NameLabel {
                name: lease.to_string(),
            })
            .set(i64::from(leading));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        without_empty_families(&out)
    }
}

/// The exposition without the families that have no series yet (as client_golang exports
/// them: a vector without children is not gathered), which some parsers refuse.
pub fn without_empty_families(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut descriptors = String::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") {
            descriptors.clear();
        }
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("# UNIT ") {
            descriptors.push_str(line);
            descriptors.push('\n');
            continue;
        }
        if line == "# EOF" {
            descriptors.clear();
        } else {
            out.push_str(&descriptors);
            descriptors.clear();
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_without_series_are_left_out() {
        let text = "# HELP a A.\n# TYPE a counter\n# HELP b B.\n# TYPE b gauge\nb 1\nb{x=\"y\"} 2\n# HELP c C.\n# TYPE c gauge\n# EOF\n";
        assert_eq!(
            without_empty_families(text),
            "# HELP b B.\n# TYPE b gauge\nb 1\nb{x=\"y\"} 2\n# EOF\n"
        );
    }
}
