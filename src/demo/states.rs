//! The states of the demo's Rollout that the scenario waits for, as predicates (the chart's
//! RBAC test replays the scenario and waits for the same states).
use crate::api::rollout::{Rollout, RolloutPhase, RolloutStatus};

/// The status, when it describes the current generation and says `phase`.
fn settled(r: &Rollout, phase: RolloutPhase) -> Option<&RolloutStatus> {
    r.status
        .as_ref()
        .filter(|st| st.observed_generation == r.metadata.generation && st.phase == Some(phase))
}

/// Healthy, with its `replicas` instances all ready on `version`.
pub fn healthy_on(r: &Rollout, version: &str, replicas: usize) -> bool {
    settled(r, RolloutPhase::Healthy).is_some_and(|st| {
        st.instances.len() == replicas
            && st
                .instances
                .iter()
                .all(|i| i.ready && i.version.as_deref() == Some(version))
    })
}

/// Rolled back: every instance ready on `version`.
pub fn rolled_back_to(r: &Rollout, version: &str) -> bool {
    settled(r, RolloutPhase::RolledBack).is_some_and(|st| {
        st.instances
            .iter()
            .all(|i| i.ready && i.version.as_deref() == Some(version))
    })
}

/// Healthy, with `instance` ready on the `pinned` version and `others` instances ready on
/// `version`.
pub fn pinned(r: &Rollout, instance: &str, pinned: &str, version: &str, others: usize) -> bool {
    settled(r, RolloutPhase::Healthy).is_some_and(|st| {
        st.instances
            .iter()
            .any(|i| i.name == instance && i.version.as_deref() == Some(pinned) && i.ready)
            && st
                .instances
                .iter()
                .filter(|i| i.version.as_deref() == Some(version) && i.ready)
                .count()
                == others
    })
}
