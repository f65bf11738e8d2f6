//! Rollout controller.
pub mod planner;
