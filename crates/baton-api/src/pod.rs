//! What the controllers read off pods and label selectors, and the pod annotation they share
//! (`baton.dev/drain`), each in one place.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::core::{Expression, Selector, SelectorExt};

mod cached;
mod labels;
pub(crate) use cached::null_default;
pub use cached::{CachedContainer, CachedPod, CachedPodStatus, CachedState, ReadyCondition};
pub use labels::Labels;

/// Pod annotation: the pod is to hand its listeners over (it is *draining*).
///
/// One meaning for every reader ([`drain`]): present with any value but `"false"`, the pod is
/// draining. The ListenerSet controller gives it no new listeners and asks it to release the
/// ones it holds; the Rollout controller does not count it as serving or available.
///
/// The Rollout controller writes the time it asked ([`drain_value`]) before it deletes a pod
/// that holds listeners, waits (bounded by its drain timeout, counted from that time) until
/// the pod holds none, and removes the annotation again if it wants the pod back. Any other
/// value (`"true"` set by hand, say) is a person's request: the Rollout controller never removes
/// it; if it replaces that pod, it first writes the time, from which its bounded wait counts.
pub const DRAIN_ANNOTATION: &str = "baton.dev/drain";

/// What the [`DRAIN_ANNOTATION`] on a pod says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Asked at this time (an RFC 3339 value: what the Rollout controller writes).
    Since(Timestamp),
    /// Asked by hand, at a time nobody recorded (any other value but `"false"`).
    ByHand,
}

/// The pod's drain request, if it is draining (see [`DRAIN_ANNOTATION`]).
pub fn drain(meta: &ObjectMeta) -> Option<Drain> {
    let value = meta.annotations.as_ref()?.get(DRAIN_ANNOTATION)?;
    if value == "false" {
        return None;
    }
    Some(value.parse().map_or(Drain::ByHand, Drain::Since))
}

/// Whether the pod is draining (see [`DRAIN_ANNOTATION`]).
pub fn is_draining(meta: &ObjectMeta) -> bool {
    drain(meta).is_some()
}

/// The [`DRAIN_ANNOTATION`] value for a drain asked at `at`.
pub fn drain_value(at: Timestamp) -> String {
    at.to_string()
}

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
    CachedPod::from(pod).has_stopped()
}

/// Whether `labels` satisfy `selector`, with the API server's semantics (those of
/// [`kube::core::Selector`]): an empty selector matches everything; one that cannot be parsed
/// (an unknown operator, `In` without values) matches nothing.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    Selector::try_from(selector.clone()).is_ok_and(|s| s.matches(labels))
}

/// [`selector_matches`] for a cached pod's [`Labels`], with the same semantics (those of
/// `kube::core::Expression`).
pub fn selector_matches_labels(selector: &LabelSelector, labels: &Labels) -> bool {
    let Ok(selector) = Selector::try_from(selector.clone()) else {
        return false;
    };
    selector.into_iter().all(|e| match &e {
        Expression::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
        Expression::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
        Expression::Exists(k) => labels.get(k).is_some(),
        Expression::DoesNotExist(k) => labels.get(k).is_none(),
        Expression::Equal(k, value) => labels.get(k) == Some(value.as_str()),
        Expression::NotEqual(k, value) => labels.get(k) != Some(value.as_str()),
    })
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
        let both = |sel: &LabelSelector, l: &BTreeMap<String, String>| {
            let (map, compact) = (selector_matches(sel, l), selector_matches_labels(sel, &Labels::from(l)));
            assert_eq!(map, compact, "{sel:?} on {l:?}");
            map
        };
        assert!(both(&sel, &labels(&[("app", "a")])));
        assert!(!both(&sel, &labels(&[("app", "a"), ("tier", "db")])));
        assert!(!both(&sel, &labels(&[("app", "b")])));
        assert!(both(&sel, &labels(&[("app", "a"), ("tier", "web")])));
        let every = LabelSelector {
            match_labels: None,
            match_expressions: Some(
                [("In", "x"), ("NotIn", "x"), ("Exists", ""), ("DoesNotExist", "")]
                    .iter()
                    .map(|(op, v)| LabelSelectorRequirement {
                        key: format!("k-{op}"),
                        operator: op.to_string(),
                        values: (!v.is_empty()).then(|| vec![v.to_string()]),
                    })
                    .collect(),
            ),
        };
        for l in [
            labels(&[]),
            labels(&[("k-In", "x"), ("k-Exists", "")]),
            labels(&[("k-In", "x"), ("k-NotIn", "y"), ("k-Exists", "1")]),
            labels(&[("k-In", "x"), ("k-NotIn", "x"), ("k-Exists", "1")]),
            labels(&[("k-In", "x"), ("k-Exists", "1"), ("k-DoesNotExist", "")]),
        ] {
            both(&every, &l);
        }
        assert!(both(&every, &labels(&[("k-In", "x"), ("k-Exists", "")])));
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
        assert!(!selector_matches_labels(
            &bad,
            &Labels::from(&labels(&[("tier", "db")]))
        ));
    }

    fn annotated(value: &str) -> ObjectMeta {
        ObjectMeta {
            annotations: Some([(DRAIN_ANNOTATION.to_string(), value.to_string())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn drain_has_one_meaning() {
        let at: Timestamp = "2026-01-02T03:04:05.123456Z".parse().unwrap();
        assert_eq!(drain(&annotated(&drain_value(at))), Some(Drain::Since(at)));
        // A hand-set value drains as surely as the controller's own.
        assert_eq!(drain(&annotated("true")), Some(Drain::ByHand));
        assert_eq!(drain(&annotated("")), Some(Drain::ByHand));
        assert_eq!(drain(&annotated("false")), None);
        assert_eq!(drain(&ObjectMeta::default()), None);
        assert!(is_draining(&annotated("yes")));
        assert!(!is_draining(&annotated("false")));
    }
}
