//! What the controller tells its operators — its /metrics and its JSON log — and the chart's
//! Grafana dashboard and Prometheus alert rules that read them, with the real `baton controller`
//! process against the simulator (agents in the simulated pods), in one test binary:
//!
//! * [`exports`]: /metrics parsed by an OpenMetrics parser — names, types, labels, per-object
//!   series that neither merge across namespaces nor outlive their object, a handover's gap —
//!   the JSON log's reconcile lines, and `baton demo` serving /metrics;
//! * [`dashboard_queries`]: every metric the dashboard and the alert rules name is exported, and
//!   a real Prometheus scraping the controller answers every dashboard query and evaluates every
//!   rule.
//!
//! The heaviest scenarios hold one lock for their whole run ([`listener_world::serial`]), so that
//! no two of them share the cores.
#[path = "../support/listener_world.rs"]
mod listener_world;
#[path = "../support/process.rs"]
mod process;

mod dashboard_queries;
mod exports;
