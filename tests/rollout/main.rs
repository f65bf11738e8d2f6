//! Acceptance tests of the Rollout controller: batched update, single-instance and batch
//! rollback, automatic rollback, whole-service undo, controller crash and partition, API faults,
//! invalid specs, hooks and checks, drains, scale, repair, superseding specs, `spec.paused`, the
//! runtime actions (promote, abort, retry, restart), Flux's and Argo CD's view, and a Rollout
//! taking over a Deployment (`spec.workloadRef`).
//!
//! They run on both backends (`tests/support`): baton-sim, where every test starts its own
//! simulator, and the real control plane (`BATON_TEST_CLUSTER=real`: kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok's nodes), where every test works in a namespace
//! of its own. Tests that need what only baton-sim offers (its fault rules) are named
//! `sim_only_…` and skipped there (`-- --skip sim_only`). Every test starts its own operator,
//! waits on conditions with deadlines (never a fixed sleep), and asserts on the Rollout's status,
//! its pods and its events.k8s.io/v1 Events.
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
