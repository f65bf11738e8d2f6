//! What the controllers read off pods and label selectors, each in one place.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

/// The pod's `Ready` condition, if it has one.
pub fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// The kubelet reports that nothing of the pod runs any more: its phase is `Succeeded` or
/// `Failed`, or every container it lists is terminated (what the kubelet writes before it
/// removes a gracefully deleted pod). A force-deleted pod's last state shows none of this: its
/// containers may still run.
pub fn has_stopped(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return true;
    }
    let all = status.container_statuses.iter().flatten();
    let init = status.init_container_statuses.iter().flatten();
    let mut any = false;
    let terminated = all.chain(init).all(|c| {
        any = true;
        c.state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some() && s.running.is_none() && s.waiting.is_none())
    });
    any && terminated
}

/// Whether `labels` satisfy `selector`, with the API server's semantics (those of
/// [`kube::core::Selector`]): an empty selector matches everything; one that cannot be parsed
/// (an unknown operator, `In` without values) matches nothing.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    Selector::try_from(selector.clone()).is_ok_and(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors_follow_the_api_server() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "a")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        assert!(selector_matches(&sel, &labels(&[("app", "a")])));
        assert!(!selector_matches(&sel, &labels(&[("app", "a"), ("tier", "db")])));
        assert!(!selector_matches(&sel, &labels(&[("app", "b")])));
        // The empty selector matches everything (the spec checks reject it where it is wrong).
        assert!(selector_matches(&LabelSelector::default(), &labels(&[("app", "a")])));
        assert!(selector_matches(&LabelSelector::default(), &BTreeMap::new()));
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "Near".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(!selector_matches(&bad, &labels(&[("tier", "db")])));
    }
}
