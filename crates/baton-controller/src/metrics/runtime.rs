//! The same facts under controller-runtime's and client-go's metric names, so the dashboards
//! and alerts teams already run for Go operators match baton too:
//!
//! * `controller_runtime_reconcile_total{controller,result}` (`success`, `requeue_after`,
//!   `error`), `controller_runtime_reconcile_errors_total{controller}`,
//!   `controller_runtime_reconcile_time_seconds{controller}`,
//!   `controller_runtime_max_concurrent_reconciles{controller}`,
//!   `controller_runtime_active_workers{controller}`;
//! * `workqueue_depth{name}`, `workqueue_adds_total{name}`,
//!   `workqueue_queue_duration_seconds{name}`, `workqueue_work_duration_seconds{name}`,
//!   `workqueue_retries_total{name}` (client-go's workqueue metrics; `name` is the controller);
//! * `rest_client_requests_total{code,method,host}` (client-go's);
//! * `leader_election_master_status{name}` (client-go's leader election; `name` is the Lease).
//!
//! baton's own `baton_*` families stay: the twins are fed at the same points.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{duration_histogram, ControllerLabel, ResultLabels};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabel {
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestLabels {
    pub code: String,
    pub method: String,
    pub host: String,
}

/// The controller-runtime and client-go named families.
pub struct Runtime {
    pub reconciles: Family<ResultLabels, Counter>,
    pub errors: Family<ControllerLabel, Counter>,
    pub max_concurrent: Family<ControllerLabel, Gauge>,
    pub queue_depth: Family<NameLabel, Gauge>,
    pub queue_adds: Family<NameLabel, Counter>,
    pub queue_latency: Family<NameLabel, Histogram>,
    pub work_duration: Family<NameLabel, Histogram>,
    pub retries: Family<NameLabel, Counter>,
    pub rest_requests: Family<RestLabels, Counter>,
    pub leader: Family<NameLabel, Gauge>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            reconciles: Family::default(),
            errors: Family::default(),
            max_concurrent: Family::default(),
            queue_depth: Family::default(),
            queue_adds: Family::default(),
            queue_latency: Family::new_with_constructor(duration_histogram),
            work_duration: Family::new_with_constructor(duration_histogram),
            retries: Family::default(),
            rest_requests: Family::default(),
            leader: Family::default(),
        }
    }
}

/// controller-runtime's `result` label for baton's: a requeue is always after a duration.
pub fn result_label(baton: &str) -> &'static str {
    match baton {
        "success" => "success",
        "requeue" => "requeue_after",
        _ => "error",
    }
}

impl Runtime {
    /// Register the families in `root` (no prefix); `duration` and `active` are baton's own
    /// families with the `controller` label, shared.
    pub fn register(
        &self,
        root: &mut Registry,
        duration: &Family<ControllerLabel, Histogram>,
        active: &Family<ControllerLabel, Gauge>,
    ) {
        let cr = root.sub_registry_with_prefix("controller_runtime");
        cr.register(
            "reconcile",
            "Total number of reconciliations per controller",
            self.reconciles.clone(),
        );
        cr.register(
            "reconcile_errors",
            "Total number of reconciliation errors per controller",
            self.errors.clone(),
        );
        cr.register(
            "reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            duration.clone(),
        );
        cr.register(
            "max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            self.max_concurrent.clone(),
        );
        cr.register(
            "active_workers",
            "Number of currently used workers per controller",
            active.clone(),
        );
        let wq = root.sub_registry_with_prefix("workqueue");
        wq.register("depth", "Current depth of workqueue", self.queue_depth.clone());
        wq.register(
            "adds",
            "Total number of adds handled by workqueue",
            self.queue_adds.clone(),
        );
        wq.register(
            "queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            self.queue_latency.clone(),
        );
        wq.register(
            "work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            self.work_duration.clone(),
        );
        wq.register(
            "retries",
            "Total number of retries handled by workqueue",
            self.retries.clone(),
        );
        root.sub_registry_with_prefix("rest_client").register(
            "requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            self.rest_requests.clone(),
        );
        root.sub_registry_with_prefix("leader_election").register(
            "master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease",
            self.leader.clone(),
        );
    }

    /// One finished reconcile of `controller`.
    pub fn observe(&self, controller: &str, seconds: f64, result: &str) {
        self.reconciles
            .get_or_create(&ResultLabels {
                controller: controller.to_string(),
                result: result_label(result).to_string(),
            })
            .inc();
        let name = NameLabel {
            name: controller.to_string(),
        };
        self.work_duration.get_or_create(&name).observe(seconds);
        if result == "error" {
            self.errors
                .get_or_create(&ControllerLabel {
                    controller: controller.to_string(),
                })
                .inc();
            self.retries.get_or_create(&name).inc();
        }
    }
}
