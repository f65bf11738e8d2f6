//! What the shell reads for evening out (see [`crate::listeners::assigner::Balancing`]): the
//! policy in force, `spec.rebalance` resolved, how long each holder has held its Lease, a pod's
//! weight and revision; and what it reports: `status.rebalance`, the burst Events, the metrics.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::{Resource, ResourceExt};

use super::{publish, Context};
use crate::api::listenerset::lease::CachedLease;
use crate::api::listenerset::rebalance::{pod_weight, RebalancePolicy, RebalanceStatus};
use crate::api::listenerset::{ListenerSet, ListenerSetStatus, EVENT_REBALANCED, EVENT_REBALANCING};
use crate::api::pod::CachedPod;
use crate::api::rollout::{labels, RolloutPhase};
use crate::events::Severity as EventType;
use crate::listeners::decide::{Burst, Decision, Rebalance};
use kube::runtime::reflector::{ObjectRef, Store};

/// The policy in force: the spec's; unset, the one the status records; without one, `Balanced`
/// for a set no controller has reconciled yet and `Sticky` for one a controller before evening
/// out already had (its listeners do not start moving on an upgrade).
pub(super) fn policy(set: &ListenerSet, previous: &ListenerSetStatus) -> RebalancePolicy {
    let recorded = previous.rebalance.as_ref().and_then(|r| r.policy);
    let given = if previous.observed_generation.is_some() {
        RebalancePolicy::Sticky
    } else {
        RebalancePolicy::Balanced
    };
    set.spec
        .rebalance
        .as_ref()
        .and_then(|r| r.policy)
        .or(recorded)
        .unwrap_or(given)
}

/// `spec.rebalance` resolved for a `Balanced` set of `listeners` listeners; `None` for a
/// `Sticky` one (or values the spec check refuses).
pub(super) fn resolve(set: &ListenerSet, previous: &ListenerSetStatus, listeners: usize) -> Option<Rebalance> {
    if policy(set, previous) != RebalancePolicy::Balanced {
        return None;
    }
    let spec = set.spec.rebalance.clone().unwrap_or_default();
    Some(Rebalance {
        max_skew: u32::try_from(spec.max_skew.max(1)).unwrap_or(1),
        max_moves: spec.max_moves(listeners).ok()?,
        min_residence: Duration::from_secs(u64::try_from(spec.min_residence_seconds.max(0)).unwrap_or(0)),
    })
}

/// How long the Lease's holder has held it, by the wall clock (`acquireTime` is written by the
/// controller with each assignment); `None` without one.
pub(super) fn held_for(lease: &CachedLease, now: jiff::Timestamp) -> Option<Duration> {
    let acquired = lease.spec.acquire_time.as_ref()?.0;
    Duration::try_from(now.duration_since(acquired))
        .ok()
        .or(Some(Duration::ZERO))
}

/// A pod's weight (1 when its annotation is missing or not understood).
pub(super) fn weight(pod: &CachedPod) -> u32 {
    pod_weight(pod.metadata.annotations.as_ref()).unwrap_or(1)
}

/// `(workload, revision)` of a pod a Rollout or a Deployment made: a Rollout's pods carry its
/// name and `baton.dev/revision-hash`; a Deployment's carry `pod-template-hash` and are owned by
/// its ReplicaSet `<deployment>-<hash>`. Two revisions among a Deployment's pods are a rollout
/// under way (or paused mid-way), never a steady state. A StatefulSet's pods are left out: a
/// partition keeps two revisions for as long as the user wants, and nothing here reads the
/// StatefulSet to tell that from a rollout.
pub(super) fn revision(pod: &CachedPod) -> Option<(String, String)> {
    if let (Some(rollout), Some(hash)) = (pod.labels.get(labels::ROLLOUT), pod.labels.get(labels::REVISION_HASH)) {
        return Some((format!("{ROLLOUT_WORKLOAD}{rollout}"), hash.to_string()));
    }
    let hash = pod.labels.get(POD_TEMPLATE_HASH)?;
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")?;
    let deployment = owner.name.strip_suffix(hash)?.strip_suffix('-')?;
    Some((format!("{DEPLOYMENT_WORKLOAD}{deployment}"), hash.to_string()))
}

/// The Rollouts of the pods `set` selects, by the workload key of [`revision`], as the Rollout
/// controller's cache (no request) shows them: `(settled, under_way)`. Settled: Healthy for its
/// generation (two revisions among its pods are then a pin, on purpose); under way: anything else
/// (a batch, a pause, a scale whose pods do not all exist yet). Empty without that cache or for a
/// `Sticky` set.
pub(super) fn rollouts_of(
    ctx: &Context,
    set: &ListenerSet,
    previous: &ListenerSetStatus,
    pods: &Store<CachedPod>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut settled, mut under_way) = (BTreeSet::new(), BTreeSet::new());
    let Some(rollouts) = ctx.rollouts.as_ref() else {
        return (settled, under_way);
    };
    if policy(set, previous) != RebalancePolicy::Balanced {
        return (settled, under_way);
    }
    let ns = set.namespace().unwrap_or_default();
    let workloads: BTreeSet<String> = pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|p| crate::api::pod::selector_matches_labels(&set.spec.selector, &p.labels))
        .filter_map(|p| revision(p).map(|(w, _)| w))
        .collect();
    for workload in workloads {
        let Some(name) = workload.strip_prefix(ROLLOUT_WORKLOAD) else {
            continue;
        };
        let Some(r) = rollouts.get(&ObjectRef::new(name).within(&ns)) else {
            continue;
        };
        let status = r.status.as_ref();
        let current = status.and_then(|s| s.observed_generation) == r.metadata.generation;
        if current && status.and_then(|s| s.phase) == Some(RolloutPhase::Healthy) {
            settled.insert(workload);
        } else {
            under_way.insert(workload);
        }
    }
    (settled, under_way)
}

/// How [`revision`] names a Rollout: `Rollout <name>`.
const ROLLOUT_WORKLOAD: &str = "Rollout ";
const DEPLOYMENT_WORKLOAD: &str = "Deployment ";
/// The label the Deployment controller puts on its ReplicaSets' pods.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// `status.rebalance` from the decision.
pub(super) fn status(set: &ListenerSet, previous: &ListenerSetStatus, decision: &Decision) -> RebalanceStatus {
    let b = &decision.balance;
    RebalanceStatus {
        policy: Some(policy(set, previous)),
        skew: i32::try_from(b.skew).unwrap_or(i32::MAX),
        moves_in_progress: i32::try_from(b.in_progress).unwrap_or(i32::MAX),
        moves_last_minute: i32::try_from(decision.moves_last_minute).unwrap_or(i32::MAX),
        waiting: b.waiting.clone(),
    }
}

/// The Event of a burst's start or end, and the metrics of the moves.
pub(super) fn report(ctx: &Context, set: &ListenerSet, decision: &Decision) {
    let (ns, name) = (set.namespace().unwrap_or_default(), set.name_any());
    if decision.balance.requested > 0 {
        ctx.metrics.objects.rebalanced(&ns, &name, decision.balance.requested);
    }
    let max_skew = set.spec.rebalance.as_ref().map_or(1, |r| r.max_skew);
    let message = match decision.burst {
        Some(Burst::Started { moves, skew }) => format!(
            "evening out listeners: skew {skew} is above maxSkew {max_skew}; moving {moves} now, at most {} at once",
            set.spec
                .rebalance
                .clone()
                .unwrap_or_default()
                .max_moves(usize::try_from(decision.summary.listeners).unwrap_or(0))
                .unwrap_or(1)
        ),
        Some(Burst::Ended { moves, took, skew }) => {
            format!(
                "balanced: skew {skew} after {moves} moves in {:.1} s",
                took.as_secs_f64()
            )
        }
        None => return,
    };
    let reason = match decision.burst {
        Some(Burst::Started { .. }) => EVENT_REBALANCING,
        _ => EVENT_REBALANCED,
    };
    publish(ctx, &set.object_ref(&()), EventType::Normal, reason, &message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::listenerset::RebalanceSpec;

    fn pod(labels: &[(&str, &str)], owner: Option<(&str, &str)>) -> CachedPod {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "p", "uid": "u",
                "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
                "ownerReferences": owner.map(|(kind, name)| vec![serde_json::json!(
                    {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "o", "controller": true})]).unwrap_or_default()
            }
        }))
        .expect("a pod");
        serde_json::from_value(serde_json::to_value(pod).expect("json")).expect("a cached pod")
    }

    #[test]
    fn a_pods_revision_names_the_workload_that_made_it() {
        let d = pod(&[("pod-template-hash", "7d9f")], Some(("ReplicaSet", "web-7d9f")));
        assert_eq!(revision(&d), Some(("Deployment web".into(), "7d9f".into())));
        let r = pod(
            &[(labels::ROLLOUT, "api"), (labels::REVISION_HASH, "abc")],
            Some(("Rollout", "api")),
        );
        assert_eq!(revision(&r), Some(("Rollout api".into(), "abc".into())));
        // A ReplicaSet of its own (not a Deployment's), a StatefulSet's pod, a bare pod: unknown.
        let rs = pod(&[("pod-template-hash", "7d9f")], Some(("ReplicaSet", "web")));
        assert_eq!(revision(&rs), None);
        let sts = pod(&[("controller-revision-hash", "db-5c8")], Some(("StatefulSet", "db")));
        assert_eq!(revision(&sts), None);
        assert_eq!(revision(&pod(&[], None)), None);
    }

    fn set(policy: Option<RebalancePolicy>) -> ListenerSet {
        let mut s = ListenerSet::new("s", Default::default());
        s.spec.rebalance = policy.map(|p| RebalanceSpec {
            policy: Some(p),
            ..Default::default()
        });
        s
    }

    #[test]
    fn new_sets_are_balanced_sets_from_before_stay_sticky_and_the_spec_wins() {
        let fresh = ListenerSetStatus::default();
        let upgraded = ListenerSetStatus {
            observed_generation: Some(3),
            ..Default::default()
        };
        assert_eq!(policy(&set(None), &fresh), RebalancePolicy::Balanced);
        assert_eq!(policy(&set(None), &upgraded), RebalancePolicy::Sticky);
        let recorded = ListenerSetStatus {
            rebalance: Some(RebalanceStatus {
                policy: Some(RebalancePolicy::Balanced),
                ..Default::default()
            }),
            ..upgraded.clone()
        };
        assert_eq!(policy(&set(None), &recorded), RebalancePolicy::Balanced);
        assert_eq!(
            policy(&set(Some(RebalancePolicy::Balanced)), &upgraded),
            RebalancePolicy::Balanced
        );
        assert_eq!(
            policy(&set(Some(RebalancePolicy::Sticky)), &fresh),
            RebalancePolicy::Sticky
        );
        assert!(resolve(&set(Some(RebalancePolicy::Sticky)), &fresh, 10).is_none());
        let r = resolve(&set(None), &fresh, 2000).expect("balanced");
        assert_eq!((r.max_skew, r.max_moves, r.min_residence.as_secs()), (1, 200, 60));
    }
}
