//! The baton controller: batched, health-gated Rollouts and zero-duplicate listener handover,
//! as the reconcilers `baton controller` runs.
//!
//! # Map
//!
//! * [`rollout`] — the Rollout controller. [`rollout::planner`] decides (pure: spec + observed
//!   pods and revisions + `now` → actions, status, events); [`rollout::controller`] reads the
//!   caches, calls the planner and applies the result.
//! * [`listeners`] — the ListenerSet controller. [`listeners::decide`] makes one reconcile's
//!   decisions (pure: the caches' views, its memory and `now` → Lease writes, the status
//!   summary, each assignment's kind, requeue), placing listeners with [`listeners::assigner`];
//!   [`listeners::controller`] reads the caches and carries the writes out as conditional Lease
//!   updates.
//! * [`election`] — leader election on a Lease; only the leader runs the reconcilers.
//! * [`operator`] — wiring: the watch caches the two controllers share (pods and listener
//!   Leases, and the lookups that tie them: does a pod hold listeners, which Rollout waits for
//!   a draining pod), both controllers, startup checks and shutdown.
//! * Underneath: [`cache`] (watch readiness, tolerant decoding), [`backoff`], [`error`],
//!   [`events`], [`metrics`], [`probes`], [`throttle`] (client-side rate limit
//!   and `Retry-After`), [`webhooks`] (webhook delivery for both controllers' notifications, and
//!   the HTTP client of checks), [`malloc`] (handing freed memory back).
//!
//! The custom resources and every wire word are the crate `baton-api`; this crate never uses
//! the agent (`baton-agent`), the CLI or the dashboard (the crate `baton`, which depends on this
//! one). Inside the crate, dependencies point one way, down this list: the utilities ← the
//! subsystems (`rollout`, `listeners`, `election`, none using another) ← `operator`; a unit test
//! (`layers`) reads the sources and fails on any other edge.
//!
//! The key types, at the root: [`Operator`] and [`Operators`] (the caches and both controllers
//! of a namespace, or of several) with [`OperatorConfig`], [`ElectionConfig`] (leader
//! election), and [`Error`].

use baton_api as api;

pub mod backoff;
pub mod cache;
pub mod election;
pub mod error;
pub mod events;
#[cfg(test)]
mod layers;
pub mod listeners;
pub mod malloc;
pub mod metrics;
pub mod operator;
pub mod probes;
pub mod rollout;
pub mod throttle;
pub mod webhooks;

pub use election::ElectionConfig;
pub use error::Error;
pub use operator::{Operator, OperatorConfig, Operators};
