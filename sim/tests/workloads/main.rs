//! Workloads run by baton-sim's controllers and kubelet, observed as a client observes them
//! (kube-rs watches and real kubectl), in one test binary:
//!
//! * [`deployments`]: `apps/v1` Deployments and ReplicaSets, through kube-rs and real kubectl;
//! * [`graceful`]: graceful pod deletion — SIGTERM to attached processes, the grace period,
//!   force deletes;
//! * [`jobs`]: `batch/v1` Jobs;
//! * [`statefulsets`]: `apps/v1` StatefulSets — ordered pods, status, ControllerRevisions,
//!   kubectl's `rollout` and `scale`.
//!
//! Every test starts a simulator of its own.
#[path = "../common/mod.rs"]
mod common;

mod deployments;
mod graceful;
mod jobs;
mod statefulsets;
