//! baton: batched, health-gated rollouts and zero-duplicate listener handover for Kubernetes.
//!
//! # Map
//!
//! baton is four crates whose edges are its layers; this one is the `baton` command.
//!
//! * [`api`] — the crate `baton-api`: the custom resources (`Rollout`, `ListenerSet`) and every
//!   wire contract the controller, agent, CLI and users share: annotations, labels, finalizers,
//!   condition reasons. It depends on no other baton crate.
//! * [`agent`] — the crate `baton-agent` (on `baton-api` and kube's client only, so an
//!   application embeds it without the controller): runs beside (or inside) the application,
//!   renews its pod's listener Leases and tells the application what to run.
//! * The crate `baton-controller` (on `baton-api`), re-exported here module by module:
//!   [`rollout`] (the planner and the Rollout controller), [`listeners`] (the listener decision
//!   and the ListenerSet controller), [`election`], [`operator`] (the shared caches and the
//!   wiring), and underneath them [`cache`], [`backoff`], [`error`], [`events`], [`metrics`],
//!   [`probes`], [`throttle`], [`webhooks`], [`malloc`].
//! * This crate: [`telemetry`] — logging; [`session`] — kubectl's flags, the client they make, errors in kubectl's
//!   words; [`actions`] — what an operator does to a Rollout (promote, abort, undo, pin …, and
//!   the judgement of whether it applies), shared by the CLI and the dashboard; [`dashboard`] —
//!   `baton dashboard`, the live web view with the actions; [`cli`] — the `baton` command (also
//!   `kubectl baton`); with the `demo` feature (on by default, off in the container image) it
//!   also runs `baton demo` (module `demo`, with the embedded simulator).
//!
//! Dependencies point one way: `baton-api` ← `baton-agent`, `baton-controller` ← `baton` (the
//! compiler keeps those edges); inside this crate `session`, `stdout` ← `actions` ← `dashboard`
//! ← `demo` ← `cli`. A unit test (`layers`) reads the sources and fails on any other edge;
//! another (`wire`) fails on a wire word (key, reason, condition type) spelled outside
//! `baton-api`.
//!
//! # A rollout, end to end
//!
//! `kubectl apply` changes a Rollout's template → the Rollout watch wakes
//! [`rollout::controller`] → the planner compares the template's revision with the pods'
//! revision labels and plans the next batch (create a ControllerRevision, delete and create
//! pods within `maxSurge`/`maxUnavailable`) → the controller applies it and writes status →
//! pod readiness changes wake it again, until every batch is healthy (or a failed batch rolls
//! back, decided in the same planner).
//!
//! # A listener handover, end to end
//!
//! A pod is deleted → its agent stops the pod's listeners and releases their Leases → the pod
//! and Lease watches wake [`listeners::controller`] → the assigner picks a new pod for each
//! released listener and the controller writes its Lease (holder, owner reference to the pod,
//! fencing token + 1) → the new pod's agent sees the Lease name its pod, renews it and starts
//! the listener. A holder that stops renewing loses the listener once its Lease expires on the
//! controller's monotonic clock; the agent stops its listener before that point.
pub mod actions;
/// The agent library: [`baton_agent`], re-exported.
pub use baton_agent as agent;
/// The custom resources and the wire protocol: [`baton_api`], re-exported.
pub use baton_api as api;
pub use baton_controller::{
    backoff, cache, election, error, events, listeners, malloc, metrics, operator, probes, rollout, throttle, webhooks,
};
pub mod cli;
pub mod dashboard;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(test)]
mod house;
#[cfg(test)]
mod layers;
pub mod session;
pub mod stdout;
pub mod telemetry;
#[cfg(test)]
mod wire;
