//! `spec.rebalance` of a ListenerSet: whether listeners follow pods that join the set, how far
//! the pods' loads may differ, and how many listeners may be on the move at once; the
//! `baton.dev/listener-weight` pod annotation; and `status.rebalance`.

use crate::Invalid;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Pod annotation: how many listeners this pod carries relative to a pod without it (a positive
/// integer up to [`MAX_WEIGHT`]; default 1). A pod of weight 2 is given twice the listeners.
pub const WEIGHT_ANNOTATION: &str = "baton.dev/listener-weight";
/// The largest pod weight.
pub const MAX_WEIGHT: u32 = 1000;

/// Default `maxSkew`.
pub const DEFAULT_MAX_SKEW: i32 = 1;
/// Default `maxConcurrentMoves`.
pub const DEFAULT_MAX_CONCURRENT_MOVES: &str = "10%";
/// Default `minResidenceSeconds`.
pub const DEFAULT_MIN_RESIDENCE_SECONDS: i32 = 60;

// (No doc comment here: the schema of `spec.rebalance.policy` carries the field's.)
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RebalancePolicy {
    /// A listener stays where it runs; only free listeners go to the least loaded pods.
    Sticky,
    /// Listeners also move, one graceful handover each, from the most to the least loaded pods
    /// until the loads differ by at most `maxSkew`.
    Balanced,
}

impl RebalancePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RebalancePolicy::Sticky => "Sticky",
            RebalancePolicy::Balanced => "Balanced",
        }
    }
}

/// How listeners are spread over the selected pods.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceSpec {
    /// `Balanced` or `Sticky`. Unset: the policy the set's status records — `Balanced` for a
    /// set first reconciled by a controller that rebalances, `Sticky` for one a controller before
    /// rebalancing had already reconciled (nothing starts moving on an upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RebalancePolicy>,
    /// The largest allowed difference between the most and the least loaded eligible pods, in
    /// listeners beyond each pod's share (its part of the listeners in proportion to its
    /// `baton.dev/listener-weight`).
    #[serde(default = "default_max_skew")]
    #[schemars(range(min = 1))]
    pub max_skew: i32,
    /// Listeners that may be on the move at once (release asked, or assigned and not yet
    /// acknowledged), rebalancing or not: a count or a percentage of the listeners (rounded up;
    /// at least 1).
    #[serde(default = "default_max_concurrent_moves")]
    #[schemars(schema_with = "crate::rollout::int_or_string_schema")]
    pub max_concurrent_moves: IntOrString,
    /// A listener that came to its pod less than this long ago is not moved to even out loads, so
    /// a flapping pod cannot make listeners ping-pong.
    #[serde(default = "default_min_residence_seconds")]
    #[schemars(range(min = 0))]
    pub min_residence_seconds: i32,
}

impl Default for RebalanceSpec {
    fn default() -> Self {
        RebalanceSpec {
            policy: None,
            max_skew: DEFAULT_MAX_SKEW,
            max_concurrent_moves: default_max_concurrent_moves(),
            min_residence_seconds: DEFAULT_MIN_RESIDENCE_SECONDS,
        }
    }
}

fn default_max_skew() -> i32 {
    DEFAULT_MAX_SKEW
}
fn default_max_concurrent_moves() -> IntOrString {
    IntOrString::String(DEFAULT_MAX_CONCURRENT_MOVES.to_string())
}
fn default_min_residence_seconds() -> i32 {
    DEFAULT_MIN_RESIDENCE_SECONDS
}

impl RebalanceSpec {
    /// `maxConcurrentMoves` as a count for a set of `listeners` listeners (at least 1).
    pub fn max_moves(&self, listeners: usize) -> Result<u32, Invalid> {
        let total = i32::try_from(listeners).unwrap_or(i32::MAX);
        let n = crate::rollout::scaled_value(&self.max_concurrent_moves, total, true).map_err(|e| {
            Invalid::new(
                "spec.rebalance.maxConcurrentMoves",
                format!("{e}: use a count like 20 or a percentage like \"10%\""),
            )
        })?;
        Ok(u32::try_from(n.max(1)).unwrap_or(1))
    }

    /// The mistakes a user can make here, each naming the field.
    pub fn problems(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        if self.max_skew < 1 {
            errors.push(Invalid::new(
                "spec.rebalance.maxSkew",
                format!(
                    "is {}: set it to at least 1 (default {DEFAULT_MAX_SKEW})",
                    self.max_skew
                ),
            ));
        }
        if let Err(e) = self.max_moves(1) {
            errors.push(e);
        }
        if self.min_residence_seconds < 0 {
            errors.push(Invalid::new(
                "spec.rebalance.minResidenceSeconds",
                format!(
                    "is {}: use 0 or more (default {DEFAULT_MIN_RESIDENCE_SECONDS})",
                    self.min_residence_seconds
                ),
            ));
        }
        errors
    }
}

/// The weight a pod's annotations give it: 1 without [`WEIGHT_ANNOTATION`]; an error naming the
/// value when it is not an integer from 1 to [`MAX_WEIGHT`].
pub fn pod_weight(annotations: Option<&BTreeMap<String, String>>) -> Result<u32, BadWeight> {
    let Some(value) = annotations.and_then(|a| a.get(WEIGHT_ANNOTATION)) else {
        return Ok(1);
    };
    match value.trim().parse::<u32>() {
        Ok(w) if (1..=MAX_WEIGHT).contains(&w) => Ok(w),
        _ => Err(BadWeight(value.clone())),
    }
}

/// A [`WEIGHT_ANNOTATION`] value that is not an integer from 1 to [`MAX_WEIGHT`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {WEIGHT_ANNOTATION}={0:?} is not an integer from 1 to {MAX_WEIGHT}; the pod is weighted 1")]
pub struct BadWeight(pub String);

/// How balanced the set is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceStatus {
    /// The policy in force (`spec.rebalance.policy`, or the one the set was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RebalancePolicy>,
    /// The difference between the most and the least loaded eligible pods, in listeners beyond
    /// each pod's share, rounded up.
    #[serde(default)]
    pub skew: i32,
    /// Listeners on the move now: release asked, or assigned and not yet acknowledged.
    #[serde(default)]
    pub moves_in_progress: i32,
    /// Listeners asked to move to even out loads in the last minute.
    #[serde(default)]
    pub moves_last_minute: i32,
    /// Why the set is not being evened out although it could be, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_default_to_one_and_refuse_nonsense() {
        assert_eq!(pod_weight(None), Ok(1));
        let a = |v: &str| BTreeMap::from([(WEIGHT_ANNOTATION.to_string(), v.to_string())]);
        assert_eq!(pod_weight(Some(&a("3"))), Ok(3));
        for bad in ["0", "-1", "1.5", "x", "1001"] {
            let e = pod_weight(Some(&a(bad))).expect_err(bad).to_string();
            assert!(e.contains(WEIGHT_ANNOTATION) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn concurrent_moves_resolve_against_the_listeners() {
        let spec = RebalanceSpec::default();
        assert_eq!(spec.max_moves(2000), Ok(200));
        assert_eq!(spec.max_moves(3), Ok(1), "rounded up, at least one");
        let spec = RebalanceSpec {
            max_concurrent_moves: IntOrString::Int(0),
            ..Default::default()
        };
        assert_eq!(spec.max_moves(100), Ok(1));
        let spec = RebalanceSpec {
            max_concurrent_moves: IntOrString::String("ten".into()),
            max_skew: 0,
            ..Default::default()
        };
        let problems = spec.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.path == "spec.rebalance.maxConcurrentMoves"));
        assert!(problems.iter().any(|p| p.path == "spec.rebalance.maxSkew"));
    }
}
