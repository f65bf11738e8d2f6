//! baton: batched, health-gated rollouts and zero-duplicate listener handover for Kubernetes.
pub mod agent;
pub mod api;
pub mod backoff;
pub mod cache;
pub mod cli;
pub mod demo;
pub mod election;
pub mod error;
pub mod events;
pub mod listeners;
pub mod metrics;
pub mod operator;
pub mod probes;
pub mod rollout;
pub mod telemetry;
