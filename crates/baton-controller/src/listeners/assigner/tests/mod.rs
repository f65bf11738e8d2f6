//! Unit tests of the parent module: fixtures and a move applier shared by the example-based
//! tests (`assign`, `views`) and the property tests (`properties`).
use super::*;
use crate::api::listenerset::RELEASE_REQUESTED_ANNOTATION;
use crate::api::pod::DRAIN_ANNOTATION;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use proptest::prelude::*;
use std::collections::BTreeSet;

mod assign;
mod properties;
mod rebalance;
mod views;

fn l(id: &str) -> ListenerView {
    ListenerView {
        id: id.into(),
        ..Default::default()
    }
}
fn suspended(id: &str) -> ListenerView {
    ListenerView {
        id: id.into(),
        suspended: true,
        ..Default::default()
    }
}
fn pod(name: &str) -> PodView {
    PodView {
        weight: 1,
        name: name.into(),
        uid: format!("uid-{name}"),
        eligible: true,
        rank: 0,
    }
}
fn unfit(name: &str) -> PodView {
    PodView {
        eligible: false,
        ..pod(name)
    }
}
fn held(listener: &str, holder: &str) -> LeaseView {
    LeaseView {
        held_for: None,
        successor: None,
        rebalancing: false,
        listener: listener.into(),
        holder: Some(holder.into()),
        holder_uid: Some(format!("uid-{holder}")),
        expired: false,
        transitions: 3,
        resource_version: format!("rv-{listener}"),
        release_requested: false,
        renewed: true,
    }
}
/// `listener`'s Lease held by `holder`, asked to be released to `successor` (of uid `uid-<name>`).
fn on_its_way(listener: &str, holder: &str, successor: &str) -> LeaseView {
    LeaseView {
        release_requested: true,
        successor: Some((successor.into(), format!("uid-{successor}"))),
        ..held(listener, holder)
    }
}
fn released(listener: &str) -> LeaseView {
    LeaseView {
        holder: None,
        holder_uid: None,
        ..held(listener, "x")
    }
}
fn assign_to(listener: &str, pod: &str, rv: Option<&str>, transitions: i32) -> Move {
    Move::Assign {
        listener: listener.into(),
        pod: pod.into(),
        pod_uid: format!("uid-{pod}"),
        from_resource_version: rv.map(String::from),
        transitions,
    }
}
fn release(listener: &str, holder: &str, reason: ReleaseReason) -> Move {
    Move::RequestRelease {
        listener: listener.into(),
        holder: holder.into(),
        resource_version: format!("rv-{listener}"),
        reason,
        to: None,
    }
}

/// A release request handing `listener` to `pod` with fencing token `token`.
fn release_to(listener: &str, holder: &str, reason: ReleaseReason, pod: &str, token: i32) -> Move {
    Move::RequestRelease {
        listener: listener.into(),
        holder: holder.into(),
        resource_version: format!("rv-{listener}"),
        reason,
        to: Some(Successor {
            pod: pod.into(),
            uid: format!("uid-{pod}"),
            token,
        }),
    }
}

/// Apply moves the way the controller would (each write succeeds).
fn apply(moves: &[Move], pods: &[PodView], leases: &[LeaseView]) -> Vec<LeaseView> {
    let mut map: BTreeMap<String, LeaseView> = leases.iter().map(|l| (l.listener.clone(), l.clone())).collect();
    for m in moves {
        match m {
            Move::Assign {
                listener,
                pod,
                pod_uid,
                from_resource_version,
                transitions,
            } => {
                assert_eq!(
                    map.get(listener).map(|l| l.resource_version.clone()),
                    from_resource_version.clone()
                );
                assert!(pods.iter().any(|p| &p.name == pod && &p.uid == pod_uid));
                map.insert(
                    listener.clone(),
                    LeaseView {
                        held_for: None,
                        successor: None,
                        rebalancing: false,
                        listener: listener.clone(),
                        holder: Some(pod.clone()),
                        holder_uid: Some(pod_uid.clone()),
                        expired: false,
                        transitions: *transitions,
                        resource_version: format!("rv-{listener}-{transitions}"),
                        release_requested: false,
                        renewed: true,
                    },
                );
            }
            Move::RequestRelease {
                listener, reason, to, ..
            } => {
                if let Some(lease) = map.get_mut(listener) {
                    lease.release_requested = true;
                    lease.successor = to.as_ref().map(|s| (s.pod.clone(), s.uid.clone()));
                    lease.rebalancing = *reason == ReleaseReason::Rebalance;
                    lease.resource_version.push('r');
                }
            }
            Move::DeleteLease { listener, .. } => {
                map.remove(listener);
            }
            Move::RemoveFinalizer { .. } | Move::Adopt { .. } => unreachable!("the assigner never emits {m:?}"),
        }
    }
    map.into_values().collect()
}

/// Agents of live pods act on release requests.
fn agents_release(pods: &[PodView], leases: &mut [LeaseView]) {
    for lease in leases.iter_mut() {
        let live = Index::new(pods).live_holder(lease).is_some();
        if live && lease.release_requested {
            lease.holder = None;
            lease.resource_version.push('x');
        }
    }
}

/// Agents that know the successor a request names hand their listeners over to it (the others
/// release them bare).
fn agents_hand_over(pods: &[PodView], leases: &mut [LeaseView]) {
    for lease in leases.iter_mut() {
        let live = Index::new(pods).live_holder(lease).is_some();
        if let (true, true, Some((pod, uid))) = (live, lease.release_requested, lease.successor.take()) {
            lease.holder = Some(pod);
            lease.holder_uid = Some(uid);
            lease.transitions += 1;
            lease.release_requested = false;
            lease.rebalancing = false;
            lease.renewed = false;
            lease.resource_version.push('h');
        }
    }
}

fn loads(pods: &[PodView], leases: &[LeaseView]) -> BTreeMap<String, usize> {
    let index = Index::new(pods);
    let mut load: BTreeMap<String, usize> = pods
        .iter()
        .filter(|p| p.eligible)
        .map(|p| (p.name.clone(), 0))
        .collect();
    for lease in leases {
        if let Some(p) = index.live_holder(lease).filter(|p| p.eligible) {
            *load.entry(p.name.clone()).or_default() += 1;
        }
    }
    load
}

fn assigned_pods(moves: &[Move]) -> Vec<&str> {
    moves
        .iter()
        .filter_map(|m| match m {
            Move::Assign { pod, .. } => Some(pod.as_str()),
            _ => None,
        })
        .collect()
}
