//! When a replacement pod may start (`spec.strategy.podReplacementPolicy`), as KEP-3973's
//! `podReplacementPolicy` for Jobs and Deployments.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// When the pod replacing another may be created: `TerminationStarted` (once the old pod is
/// terminating; terminating pods do not count against `maxSurge`) or `TerminationComplete` (once
/// it is gone). Absent: `TerminationComplete` while a pod of the Rollout holds listeners, else
/// `TerminationStarted`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PodReplacementPolicy {
    /// As soon as the old pod is terminating: terminating pods do not count against `maxSurge`
    /// (so more than `replicas + maxSurge` pods may briefly exist), and a replacement takes
    /// one reconcile.
    TerminationStarted,
    /// Only once the old pod is gone: terminating pods count against `maxSurge`.
    TerminationComplete,
}

impl PodReplacementPolicy {
    /// The policy in force: the one set, else `TerminationComplete` while any of the Rollout's
    /// pods holds listeners (they hand them over while terminating), else `TerminationStarted`.
    pub fn effective(set: Option<Self>, listeners_held: bool) -> Self {
        match set {
            Some(p) => p,
            None if listeners_held => PodReplacementPolicy::TerminationComplete,
            None => PodReplacementPolicy::TerminationStarted,
        }
    }
}
