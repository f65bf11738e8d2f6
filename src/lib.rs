//! baton: batched, health-gated rollouts and zero-duplicate listener handover for Kubernetes.
pub mod api;
pub mod listeners;
pub mod rollout;
