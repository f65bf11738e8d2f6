//! Why no pod may take a listener, from what the caches show of the selected pods: none
//! selected, none Ready, all draining or terminating, or their agents do not answer. The status
//! says it (the `Ready` message after [`CANNOT_MOVE`]) whenever a listener waits.
//!
//! [`CANNOT_MOVE`]: crate::api::listenerset::view::CANNOT_MOVE

use super::{Input, PodFacts};
use crate::listeners::assigner::PodView;

/// Why no pod may take a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// No pod matches `spec.selector`, or none that is not stopped, or some are and none of them
    /// is Ready, not draining and not terminating: `not_ready` are not Ready, `draining` are Ready
    /// but draining or terminating.
    NoEligiblePod {
        selected: usize,
        not_ready: usize,
        draining: usize,
    },
    /// Selected pods may take listeners but their agents do not answer (by name, sorted).
    AgentsNotRenewing { pods: Vec<String> },
}

/// Why no pod may take a listener, or `None` when one may (`views`: the decision's pods, whose
/// `eligible` includes an answering agent).
pub fn blocked(input: &Input, views: &[PodView]) -> Option<Blocked> {
    if views.iter().any(|v| v.eligible) {
        return None;
    }
    let selected: Vec<&PodFacts> = input
        .pods
        .iter()
        .filter(|p| p.selected && !input.stopped.contains(&p.uid))
        .collect();
    let mut silent: Vec<String> = selected.iter().filter(|p| p.eligible).map(|p| p.name.clone()).collect();
    if !silent.is_empty() {
        silent.sort();
        return Some(Blocked::AgentsNotRenewing { pods: silent });
    }
    let draining = selected.iter().filter(|p| p.ready).count();
    Some(Blocked::NoEligiblePod {
        selected: selected.len(),
        not_ready: selected.len() - draining,
        draining,
    })
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::NoEligiblePod { selected: 0, .. } => f.write_str("no eligible pod (no pod matches spec.selector)"),
            Blocked::NoEligiblePod {
                selected: 1,
                draining: 0,
                ..
            } => f.write_str("no eligible pod (the one pod matching spec.selector is not Ready)"),
            Blocked::NoEligiblePod {
                selected, draining: 0, ..
            } => write!(
                f,
                "no eligible pod (none of the {selected} pods matching spec.selector is Ready)"
            ),
            Blocked::NoEligiblePod {
                selected: 1,
                not_ready: 0,
                ..
            } => f.write_str("no eligible pod (the one pod matching spec.selector is draining or terminating)"),
            Blocked::NoEligiblePod {
                selected, not_ready: 0, ..
            } => write!(
                f,
                "no eligible pod (all {selected} pods matching spec.selector are draining or terminating)"
            ),
            Blocked::NoEligiblePod {
                selected,
                not_ready,
                draining,
            } => write!(
                f,
                "no eligible pod (of the {selected} pods matching spec.selector, {not_ready} not Ready and \
                 {draining} draining or terminating)"
            ),
            Blocked::AgentsNotRenewing { pods } => {
                let more = pods.len().saturating_sub(10);
                let mut names = pods.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
                if more > 0 {
                    names.push_str(&format!(" and {more} more"));
                }
                let s = if pods.len() == 1 { "" } else { "s" };
                write!(
                    f,
                    "agents not renewing (no agent answers on pod{s} {names}: Leases expired or never acknowledged)"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listeners::decide::tests::{pod, registered, secs, Scene};
    use crate::listeners::decide::Memory;
    use tokio::time::Instant;

    /// What a decision about listener `l1` and `pods` says blocks it.
    fn why(pods: Vec<PodFacts>) -> Option<String> {
        let t = Instant::now();
        let mut scene = Scene::new(&["l1"], &[], t);
        scene.pods = pods;
        scene.decide(t, &mut Memory::default()).blocked.map(|b| b.to_string())
    }

    #[test]
    fn an_eligible_pod_blocks_nothing() {
        assert_eq!(why(vec![pod("a")]), None);
    }

    #[test]
    fn no_pod_selected_none_ready_or_all_draining_each_say_so() {
        let other = PodFacts {
            selected: false,
            ..pod("x")
        };
        assert_eq!(
            why(vec![other.clone()]).as_deref(),
            Some("no eligible pod (no pod matches spec.selector)")
        );
        let unready = |n: &str| PodFacts {
            eligible: false,
            ready: false,
            ..pod(n)
        };
        let draining = |n: &str| PodFacts {
            eligible: false,
            ..pod(n)
        };
        assert_eq!(
            why(vec![unready("a"), other]).as_deref(),
            Some("no eligible pod (the one pod matching spec.selector is not Ready)")
        );
        assert_eq!(
            why(vec![unready("a"), unready("b")]).as_deref(),
            Some("no eligible pod (none of the 2 pods matching spec.selector is Ready)")
        );
        assert_eq!(
            why(vec![draining("a"), draining("b")]).as_deref(),
            Some("no eligible pod (all 2 pods matching spec.selector are draining or terminating)")
        );
        assert_eq!(
            why(vec![draining("a"), unready("b"), unready("c")]).as_deref(),
            Some("no eligible pod (of the 3 pods matching spec.selector, 2 not Ready and 1 draining or terminating)")
        );
    }

    #[test]
    fn ready_pods_whose_agents_stopped_renewing_are_named() {
        let t = Instant::now();
        let scene = Scene::new(&["l1"], &["b", "a"], t)
            .live("a", registered("a", t))
            .live("b", registered("b", t));
        let d = scene.decide(t + secs(60), &mut Memory::default());
        assert_eq!(
            d.blocked.map(|b| b.to_string()).as_deref(),
            Some("agents not renewing (no agent answers on pods a, b: Leases expired or never acknowledged)")
        );
    }
}
