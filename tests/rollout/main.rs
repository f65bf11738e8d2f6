//! Acceptance tests of the Rollout controller against the API server simulator: batched update,
//! single-instance and batch rollback, automatic rollback, whole-service undo, controller crash,
//! API faults, invalid specs, drains, scale, repair,
//! superseding specs, `spec.paused`, the runtime actions (promote, abort, retry, restart) and
//! a Rollout taking over a Deployment (`spec.workloadRef`).
//!
//! Every test starts its own simulator and operator, waits on conditions with deadlines (never a
//! fixed sleep), and asserts on the Rollout's status, its pods and its events.k8s.io/v1 Events.
#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod argocd;
mod batches;
mod checks;
mod drain;
mod events;
mod events_order;
mod flux;
mod gate;
mod hooks;
mod invalid_spec;
mod notifications;
mod pins;
mod prometheus;
mod resilience;
mod rollback;
mod runtime_actions;
mod scaling;
mod targets;
mod workload_ref;
