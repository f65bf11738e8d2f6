//! The Rollout controller: a pure planner and the reconciler that applies its plans.
pub mod announce;
pub mod check_runs;
pub mod controller;
pub mod expectations;
pub mod jobs;
pub mod planner;
pub mod status_write;
pub mod workload;
