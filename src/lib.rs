//! baton: batched, health-gated rollouts and zero-duplicate listener handover for Kubernetes.
//!
//! # Map
//!
//! * [`api`] — the crate `baton-api`: the custom resources (`Rollout`, `ListenerSet`) and every
//!   wire contract the controller, agent, CLI and users share: annotations, labels, finalizers,
//!   condition reasons. Everything else depends on it; it depends on no other baton crate.
//! * [`rollout`] — the Rollout controller. [`rollout::planner`] decides (pure: spec + observed
//!   pods and revisions + `now` → actions, status, events); [`rollout::controller`] reads the
//!   caches, calls the planner and applies the result.
//! * [`listeners`] — the ListenerSet controller. [`listeners::decide`] makes one reconcile's
//!   decisions (pure: the caches' views, its memory and `now` → Lease writes, the status
//!   summary, each assignment's kind, requeue), placing listeners with [`listeners::assigner`];
//!   [`listeners::controller`] reads the caches and carries the writes out as conditional Lease
//!   updates.
//! * [`agent`] — the crate `baton-agent` (on `baton-api` and kube's client only, so an
//!   application embeds it without the controller): runs beside (or inside) the application,
//!   renews its pod's listener Leases and tells the application what to run.
//! * [`election`] — leader election on a Lease; only the leader runs the reconcilers.
//! * [`operator`] — wiring: the watch caches the two controllers share (pods and listener
//!   Leases, and the lookups that tie them: does a pod hold listeners, which Rollout waits for
//!   a draining pod), both controllers, startup checks and shutdown.
//! * Underneath: [`cache`] (watch readiness, tolerant decoding), [`backoff`], [`error`],
//!   [`events`], [`metrics`], [`probes`], [`telemetry`], [`throttle`] (client-side rate limit
//!   and `Retry-After`), [`notify`] (webhook delivery for both controllers' notifications, and
//!   the HTTP client of checks).
//! * [`actions`] — what an operator does to a Rollout (promote, abort, undo, pin …, and the
//!   judgement of whether it applies), shared by the CLI and the dashboard; [`session`] —
//!   kubectl's flags, the client they make, errors in kubectl's words.
//! * [`dashboard`] — `baton dashboard`, the live web view with the actions.
//! * [`cli`] — the `baton` command (also `kubectl baton`); with the `demo` feature (on by
//!   default, off in the container image) it also runs `baton demo` (module `demo`, with the
//!   embedded simulator).
//!
//! Dependencies point one way, down this list: `api` ← `agent` (crates: the compiler keeps
//! those two edges) ← the utilities (with `session`) ← the
//! subsystems (`rollout`, `listeners`, `agent`, `election`, none using another) ← `operator`,
//! `actions` ← `dashboard` ← `demo` ← `cli`. A unit test (`layers`) reads the sources and fails
//! on any other edge; another (`wire`) fails on a wire word (key, reason, condition type) spelled
//! outside `api`.
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
pub mod backoff;
pub mod cache;
pub mod cli;
pub mod dashboard;
#[cfg(feature = "demo")]
pub mod demo;
pub mod election;
pub mod error;
pub mod events;
#[cfg(test)]
mod house;
#[cfg(test)]
mod layers;
pub mod listeners;
pub mod malloc;
pub mod metrics;
pub mod notify;
pub mod operator;
pub mod probes;
pub mod rollout;
pub mod session;
pub mod stdout;
pub mod telemetry;
pub mod throttle;
#[cfg(test)]
mod wire;
