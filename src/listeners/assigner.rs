//! Pure listener assigner: listeners + pods + Leases → moves. No I/O, no clock.
//!
//! # Ownership protocol
//!
//! One `coordination.k8s.io/v1` Lease per listener, named
//! [`lease_name`](crate::api::listenerset::lease_name)`(set, listener)` and labelled
//! [`LISTENERSET_LABEL`]` = <set>`, [`LISTENER_LABEL`]` = <listener id>`.
//!
//! * **The controller is the only writer of assignments.** An [`Move::Assign`] is one write:
//!   `spec.holderIdentity = <pod name>`, `ownerReferences = [that Pod, uid included]` (so a
//!   deleted pod's Leases are garbage-collected with it), `spec.leaseTransitions =
//!   transitions` (the fencing token, bumped on every new tenure), `acquireTime = renewTime =
//!   now`, `leaseDurationSeconds = spec.leaseDurationSeconds`, and the
//!   [`RELEASE_REQUESTED_ANNOTATION`] removed. It is a create when `from_resource_version` is
//!   `None` (409 AlreadyExists = someone else won: re-reconcile) and otherwise an update
//!   conditional on that `resourceVersion` (409 Conflict = re-reconcile).
//! * **The controller never takes a Lease from a live holder.** It assigns only a Lease that
//!   is *free*: none exists, `holderIdentity` is empty (released), it has expired (judged by
//!   the controller on its own monotonic clock from the moment it last saw the Lease change,
//!   client-go style), or the holder pod no longer exists (no pod of that name, or a pod of
//!   that name with a different uid than the Lease's Pod ownerReference).
//! * **Release is requested, never forced.** To move a listener off a live holder (holder is
//!   draining, terminating, not Ready or no longer selected; listener suspended or removed;
//!   holder above `maxPerPod`) the controller emits [`Move::RequestRelease`]: it sets the
//!   annotation [`RELEASE_REQUESTED_ANNOTATION`]` = <reason>` (see [`ReleaseReason::as_str`])
//!   with an update conditional on `resource_version`, and changes nothing else. The agent,
//!   watching its Leases, stops the listener (waits for the app to confirm it stopped), then
//!   clears `spec.holderIdentity` with an update conditional on the `resourceVersion` it saw
//!   (on 409 it re-reads and retries; the listener is already stopped, so that is safe). The
//!   next reconcile sees a released Lease and assigns it. A request is not withdrawn: once
//!   asked, the holder releases even if the reason has gone away.
//! * **Agents write only liveness and release.** An agent renews (`renewTime`) only Leases
//!   whose `holderIdentity` is its pod name *and* whose Pod ownerReference uid is its pod uid,
//!   each renewal conditional on `resourceVersion`. If it cannot renew for
//!   `leaseDuration - safety margin` it stops those listeners before the controller can judge
//!   the Lease expired. On SIGTERM it stops everything and releases every Lease at once.
//! * **Removed listeners**: a Lease whose listener is no longer in the spec is asked to be
//!   released, then deleted ([`Move::DeleteLease`], with a `resourceVersion` precondition)
//!   once it is free.
//!
//! # Placement rules
//!
//! * Sticky: a listener held by an eligible pod stays there; nothing moves merely to even out
//!   counts when a pod appears. The only rebalancing is for `maxPerPod`: a pod holding more
//!   than the limit is asked to release the excess (its highest ids first).
//! * A free listener goes to the eligible pod with the fewest live Leases, ties broken by
//!   name (and, for a Lease that expired on a still-existing pod, away from that pod when it
//!   is a tie), never beyond `maxPerPod`. Listeners are placed in id order.
//! * A listener held by a live but non-eligible pod is asked to move only when an eligible pod
//!   has room for it (make-before-break: if nowhere can take it, it keeps running where it
//!   is). Requests already outstanding reserve room first.
//! * Suspended listeners are released and never assigned. With no eligible pod nothing is
//!   assigned; such listeners are pending (see [`summarize`]).

use crate::api::listenerset::{DRAIN_ANNOTATION, LISTENERSET_LABEL, LISTENER_LABEL, RELEASE_REQUESTED_ANNOTATION};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

/// A listener of the set (after merging `listeners` and `listenersFrom`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerView {
    pub id: String,
    pub suspended: bool,
    /// Highest fencing token recorded for this listener (e.g. `status.assignments[].
    /// transitions`), so that a Lease recreated after garbage collection continues the
    /// sequence instead of restarting at 0. `None` if unknown.
    pub last_transitions: Option<i32>,
}

/// An existing pod. Pass every existing pod that matches the selector **and** every existing
/// pod named as a Lease holder even if it no longer matches (with `eligible: false`): a pod
/// missing from this list is treated as gone and its Leases are taken over at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub uid: String,
    /// Ready, not terminating, not draining, matches the selector.
    pub eligible: bool,
}

/// A listener Lease of the set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseView {
    /// The [`LISTENER_LABEL`] value.
    pub listener: String,
    /// `spec.holderIdentity`: pod name; `None` (or empty) = released / never held.
    pub holder: Option<String>,
    /// uid from the Lease's Pod ownerReference, if any.
    pub holder_uid: Option<String>,
    /// Judged by the caller on its monotonic clock.
    pub expired: bool,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
    pub resource_version: String,
    /// [`RELEASE_REQUESTED_ANNOTATION`] is present.
    pub release_requested: bool,
}

/// Why the controller asks a holder to release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReleaseReason {
    /// The holder is alive but not eligible (draining, terminating, not Ready, unselected).
    HolderNotEligible,
    /// The listener is suspended.
    Suspended,
    /// The listener is no longer in the spec.
    Removed,
    /// The holder holds more than `maxPerPod`.
    OverLimit,
}

impl ReleaseReason {
    /// Value of the [`RELEASE_REQUESTED_ANNOTATION`].
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::HolderNotEligible => "holder-not-eligible",
            ReleaseReason::Suspended => "suspended",
            ReleaseReason::Removed => "removed",
            ReleaseReason::OverLimit => "over-limit",
        }
    }
}

/// One write the controller should make. Each is independent of the others and conditional,
/// so they may be applied in any order, and a failed one is simply retried next reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Move {
    /// Give the listener's free Lease to `pod`.
    Assign {
        listener: String,
        pod: String,
        pod_uid: String,
        /// Lease `resourceVersion` the update is conditional on; `None` = create the Lease.
        from_resource_version: Option<String>,
        /// New `spec.leaseTransitions` (fencing token).
        transitions: i32,
    },
    /// Set [`RELEASE_REQUESTED_ANNOTATION`]` = reason.as_str()` on the listener's Lease.
    RequestRelease {
        listener: String,
        holder: String,
        resource_version: String,
        reason: ReleaseReason,
    },
    /// Delete the Lease of a removed listener (precondition: `resource_version`).
    DeleteLease { listener: String, resource_version: String },
}

impl Move {
    /// The listener this move is about.
    pub fn listener(&self) -> &str {
        match self {
            Move::Assign { listener, .. }
            | Move::RequestRelease { listener, .. }
            | Move::DeleteLease { listener, .. } => listener,
        }
    }
}

struct Index<'a> {
    pods: BTreeMap<&'a str, &'a PodView>,
}

impl<'a> Index<'a> {
    fn new(pods: &'a [PodView]) -> Self {
        let mut map = BTreeMap::new();
        for pod in pods {
            map.entry(pod.name.as_str()).or_insert(pod);
        }
        Index { pods: map }
    }

    /// The pod named as holder, if it still exists (same uid when the Lease records one).
    fn holder_pod(&self, lease: &LeaseView) -> Option<&'a PodView> {
        let name = lease.holder.as_deref().filter(|h| !h.is_empty())?;
        let pod = self.pods.get(name)?;
        match &lease.holder_uid {
            Some(uid) if *uid != pod.uid => None,
            _ => Some(pod),
        }
    }

    /// The live holder: the holder pod exists and the Lease has not expired.
    fn live_holder(&self, lease: &LeaseView) -> Option<&'a PodView> {
        if lease.expired {
            None
        } else {
            self.holder_pod(lease)
        }
    }
}

fn by_key<'a, T>(items: &'a [T], key: impl Fn(&'a T) -> &'a str) -> BTreeMap<&'a str, &'a T> {
    let mut map = BTreeMap::new();
    for item in items {
        map.entry(key(item)).or_insert(item);
    }
    map
}

/// Decide the moves that bring Leases towards the spec. See the module doc for the rules.
///
/// Duplicate listener ids, pod names or Lease listeners are ignored after the first.
/// `max_per_pod == 0` means no limit.
pub fn assign(listeners: &[ListenerView], pods: &[PodView], leases: &[LeaseView], max_per_pod: u32) -> Vec<Move> {
    let index = Index::new(pods);
    let spec = by_key(listeners, |l| l.id.as_str());
    let leases = by_key(leases, |l| l.listener.as_str());
    let limit = if max_per_pod == 0 {
        usize::MAX
    } else {
        usize::try_from(max_per_pod).unwrap_or(usize::MAX)
    };

    // Live Leases per eligible pod (whatever the listener's fate), and those that are or
    // will be asked to leave it anyway (release outstanding, listener suspended or removed).
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    let mut releasing: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in index.pods.values().filter(|p| p.eligible) {
        load.insert(pod.name.as_str(), 0);
    }
    for lease in leases.values() {
        if let Some(pod) = index.live_holder(lease).filter(|p| p.eligible) {
            *load.entry(pod.name.as_str()).or_default() += 1;
            let leaving = lease.release_requested || spec.get(lease.listener.as_str()).is_none_or(|l| l.suspended);
            if leaving {
                *releasing.entry(pod.name.as_str()).or_default() += 1;
            }
        }
    }

    let mut releases = Vec::new();
    let mut assigns = Vec::new();
    let mut deletes = Vec::new();
    let mut free: Vec<(&ListenerView, Option<&LeaseView>)> = Vec::new();
    // Listeners on live, non-eligible holders: (lease, holder).
    let mut stranded: Vec<(&LeaseView, &PodView)> = Vec::new();
    // Listeners staying on eligible pods, not yet asked to release, by pod.
    let mut sticky: BTreeMap<&str, Vec<&LeaseView>> = BTreeMap::new();
    // Listeners that will need a new home once their outstanding release happens.
    let mut reserved = 0usize;

    let request = |lease: &LeaseView, holder: &PodView, reason| Move::RequestRelease {
        listener: lease.listener.clone(),
        holder: holder.name.clone(),
        resource_version: lease.resource_version.clone(),
        reason,
    };

    for (id, listener) in &spec {
        let lease = leases.get(id).copied();
        match lease.and_then(|l| index.live_holder(l).map(|p| (l, p))) {
            Some((lease, holder)) => {
                if listener.suspended {
                    if !lease.release_requested {
                        releases.push(request(lease, holder, ReleaseReason::Suspended));
                    }
                } else if lease.release_requested {
                    reserved += 1;
                } else if holder.eligible {
                    sticky.entry(holder.name.as_str()).or_default().push(lease);
                } else {
                    stranded.push((lease, holder));
                }
            }
            None => {
                if !listener.suspended {
                    free.push((listener, lease));
                }
            }
        }
    }

    for (id, lease) in &leases {
        if spec.contains_key(id) {
            continue;
        }
        match index.live_holder(lease) {
            Some(holder) => {
                if !lease.release_requested {
                    releases.push(request(lease, holder, ReleaseReason::Removed));
                }
            }
            None => deletes.push(Move::DeleteLease {
                listener: lease.listener.clone(),
                resource_version: lease.resource_version.clone(),
            }),
        }
    }

    // maxPerPod: ask over-full pods to shed their excess, highest ids first.
    let mut shed = 0usize;
    for (pod, held) in &load {
        let pending = releasing.get(pod).copied().unwrap_or(0);
        let excess = held.saturating_sub(limit).saturating_sub(pending);
        if excess == 0 {
            continue;
        }
        if let (Some(kept), Some(holder)) = (sticky.get(pod), index.pods.get(pod)) {
            for lease in kept.iter().rev().take(excess) {
                releases.push(request(lease, holder, ReleaseReason::OverLimit));
                shed += 1;
            }
        }
    }

    // Free listeners: fewest live Leases first, then name.
    for (listener, lease) in free {
        let previous = lease
            .filter(|l| l.expired)
            .and_then(|l| index.holder_pod(l))
            .map(|p| p.name.as_str());
        let target = load
            .iter()
            .filter(|(_, held)| **held < limit)
            .min_by_key(|(name, held)| (**held, previous == Some(**name), **name))
            .map(|(name, _)| *name);
        let Some(name) = target else { continue };
        let Some(pod) = index.pods.get(name) else {
            continue;
        };
        if let Some(held) = load.get_mut(name) {
            *held += 1;
        }
        let last = listener.last_transitions;
        let (from_resource_version, transitions) = match lease {
            Some(l) => (
                Some(l.resource_version.clone()),
                l.transitions.max(last.unwrap_or(0)).saturating_add(1),
            ),
            None => (None, last.map_or(0, |t| t.saturating_add(1))),
        };
        assigns.push(Move::Assign {
            listener: listener.id.clone(),
            pod: pod.name.clone(),
            pod_uid: pod.uid.clone(),
            from_resource_version,
            transitions,
        });
    }

    // Stranded listeners move only where there is room (make-before-break).
    let room = if load.is_empty() {
        0
    } else if max_per_pod == 0 {
        usize::MAX
    } else {
        load.values().map(|held| limit.saturating_sub(*held)).sum()
    };
    let mut room = room.saturating_sub(reserved).saturating_sub(shed);
    for (lease, holder) in stranded {
        if room == 0 {
            break;
        }
        room -= 1;
        releases.push(request(lease, holder, ReleaseReason::HolderNotEligible));
    }

    releases.sort_by(|a, b| a.listener().cmp(b.listener()));
    releases.extend(assigns);
    releases.extend(deletes);
    releases
}

/// What a listener is doing right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerState {
    /// Held by a live pod whose Lease has not expired.
    Running { pod: String, transitions: i32 },
    /// No holder (no Lease, or released).
    Pending,
    /// The holder pod is gone or its Lease expired.
    Orphaned { holder: String },
    /// Suspended and not running.
    Suspended,
}

/// Counts for `ListenerSet.status`; `running + pending + orphaned + suspended == listeners`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub listeners: i32,
    pub running: i32,
    pub pending: i32,
    pub orphaned: i32,
    pub suspended: i32,
    /// Every listener of the spec, in id order.
    pub states: Vec<(String, ListenerState)>,
}

/// Summarise the state of every listener in the spec (Leases of removed listeners are not
/// counted). A suspended listener still running (release outstanding) counts as running.
pub fn summarize(listeners: &[ListenerView], pods: &[PodView], leases: &[LeaseView]) -> Summary {
    let index = Index::new(pods);
    let spec = by_key(listeners, |l| l.id.as_str());
    let leases = by_key(leases, |l| l.listener.as_str());
    let mut summary = Summary::default();
    for (id, listener) in spec {
        let lease = leases.get(id).copied();
        let live = lease.and_then(|l| index.live_holder(l).map(|p| (l, p)));
        let holder = lease.and_then(|l| l.holder.as_deref().filter(|h| !h.is_empty()));
        let state = match (live, holder) {
            (Some((lease, pod)), _) => ListenerState::Running {
                pod: pod.name.clone(),
                transitions: lease.transitions,
            },
            _ if listener.suspended => ListenerState::Suspended,
            (None, Some(holder)) => ListenerState::Orphaned {
                holder: holder.to_string(),
            },
            (None, None) => ListenerState::Pending,
        };
        let counter = match state {
            ListenerState::Running { .. } => &mut summary.running,
            ListenerState::Pending => &mut summary.pending,
            ListenerState::Orphaned { .. } => &mut summary.orphaned,
            ListenerState::Suspended => &mut summary.suspended,
        };
        *counter = counter.saturating_add(1);
        summary.listeners = summary.listeners.saturating_add(1);
        summary.states.push((id.to_string(), state));
    }
    summary
}

/// Whether a pod may receive listeners: Ready, not terminating, not draining (annotation
/// [`DRAIN_ANNOTATION`] present with any value but `"false"`). Selector matching is the
/// caller's part.
pub fn pod_is_eligible(pod: &Pod) -> bool {
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let draining = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DRAIN_ANNOTATION))
        .is_some_and(|v| v != "false");
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && !terminating && !draining
}

/// A [`PodView`] of `pod`; `None` if it has no name or uid. `selected` = it matches the
/// ListenerSet's selector.
pub fn pod_view(pod: &Pod, selected: bool) -> Option<PodView> {
    Some(PodView {
        name: pod.metadata.name.clone()?,
        uid: pod.metadata.uid.clone()?,
        eligible: selected && pod_is_eligible(pod),
    })
}

/// A [`LeaseView`] of a listener Lease of set `set`; `None` if the Lease does not carry
/// [`LISTENERSET_LABEL`]` = set` and a [`LISTENER_LABEL`]. `expired` is the caller's judgement.
pub fn lease_view(lease: &Lease, set: &str, expired: bool) -> Option<LeaseView> {
    let labels = lease.metadata.labels.as_ref()?;
    if labels.get(LISTENERSET_LABEL).map(String::as_str) != Some(set) {
        return None;
    }
    let listener = labels.get(LISTENER_LABEL)?.clone();
    let spec = lease.spec.as_ref();
    let holder_uid = lease
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Pod" && o.api_version == "v1")
        .map(|o| o.uid.clone());
    Some(LeaseView {
        listener,
        holder: spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty()),
        holder_uid,
        expired,
        transitions: spec.and_then(|s| s.lease_transitions).unwrap_or(0),
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
        release_requested: lease
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(RELEASE_REQUESTED_ANNOTATION)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

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
            last_transitions: None,
        }
    }
    fn pod(name: &str) -> PodView {
        PodView {
            name: name.into(),
            uid: format!("uid-{name}"),
            eligible: true,
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
            listener: listener.into(),
            holder: Some(holder.into()),
            holder_uid: Some(format!("uid-{holder}")),
            expired: false,
            transitions: 3,
            resource_version: format!("rv-{listener}"),
            release_requested: false,
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
                            listener: listener.clone(),
                            holder: Some(pod.clone()),
                            holder_uid: Some(pod_uid.clone()),
                            expired: false,
                            transitions: *transitions,
                            resource_version: format!("rv-{listener}-{transitions}"),
                            release_requested: false,
                        },
                    );
                }
                Move::RequestRelease { listener, .. } => {
                    if let Some(lease) = map.get_mut(listener) {
                        lease.release_requested = true;
                        lease.resource_version.push('r');
                    }
                }
                Move::DeleteLease { listener, .. } => {
                    map.remove(listener);
                }
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

    #[test]
    fn new_listeners_spread_to_fewest_then_by_name() {
        let moves = assign(&[l("a"), l("b"), l("c")], &[pod("p2"), pod("p1")], &[], 0);
        assert_eq!(
            moves,
            vec![
                assign_to("a", "p1", None, 0),
                assign_to("b", "p2", None, 0),
                assign_to("c", "p1", None, 0),
            ]
        );
    }

    #[test]
    fn existing_load_counts() {
        let moves = assign(
            &[l("a"), l("b"), l("c")],
            &[pod("p1"), pod("p2")],
            &[held("a", "p1"), held("b", "p1")],
            0,
        );
        assert_eq!(moves, vec![assign_to("c", "p2", None, 0)]);
    }

    #[test]
    fn no_eligible_pod_means_nothing_assigned_and_pending() {
        let listeners = [l("a"), l("b")];
        let pods = [unfit("p1")];
        assert_eq!(assign(&listeners, &pods, &[], 0), vec![]);
        assert_eq!(assign(&listeners, &[], &[released("a")], 0), vec![]);
        let summary = summarize(&listeners, &pods, &[released("a")]);
        assert_eq!((summary.listeners, summary.pending), (2, 2));
    }

    #[test]
    fn sticky_and_a_returning_pod_moves_nothing() {
        // p1 was deleted: its listeners went to p2; then p1 comes back.
        let listeners = [l("a"), l("b"), l("c")];
        let pods = [pod("p2")];
        let leases = [held("a", "p1"), held("b", "p1"), held("c", "p2")];
        let moves = assign(&listeners, &pods, &leases, 0);
        assert_eq!(
            moves,
            vec![
                assign_to("a", "p2", Some("rv-a"), 4),
                assign_to("b", "p2", Some("rv-b"), 4),
            ]
        );
        let leases = apply(&moves, &pods, &leases);
        let pods = [pod("p1"), pod("p2")];
        assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
    }

    #[test]
    fn deleted_holder_is_taken_over_at_once() {
        let moves = assign(&[l("a")], &[pod("p2")], &[held("a", "p1")], 0);
        assert_eq!(moves, vec![assign_to("a", "p2", Some("rv-a"), 4)]);
    }

    #[test]
    fn same_name_new_uid_is_a_new_pod() {
        let mut reborn = pod("p1");
        reborn.uid = "uid-p1-new".into();
        let moves = assign(&[l("a")], std::slice::from_ref(&reborn), &[held("a", "p1")], 0);
        assert_eq!(
            moves,
            vec![Move::Assign {
                listener: "a".into(),
                pod: "p1".into(),
                pod_uid: "uid-p1-new".into(),
                from_resource_version: Some("rv-a".into()),
                transitions: 4,
            }]
        );
        // Without an ownerReference uid the name alone identifies the holder.
        let mut no_uid = held("a", "p1");
        no_uid.holder_uid = None;
        assert_eq!(assign(&[l("a")], &[reborn], &[no_uid], 0), vec![]);
    }

    #[test]
    fn expired_lease_is_free_and_prefers_another_pod_on_a_tie() {
        let mut lease = held("a", "p1");
        lease.expired = true;
        let moves = assign(&[l("a")], &[pod("p1"), pod("p2")], &[lease.clone()], 0);
        assert_eq!(moves, vec![assign_to("a", "p2", Some("rv-a"), 4)]);
        // ...but load comes first.
        let moves = assign(&[l("a"), l("b")], &[pod("p1"), pod("p2")], &[lease, held("b", "p2")], 0);
        assert_eq!(moves, vec![assign_to("a", "p1", Some("rv-a"), 4)]);
    }

    #[test]
    fn released_lease_is_assigned_and_annotation_cleared_by_assign() {
        let mut lease = released("a");
        lease.release_requested = true;
        let moves = assign(&[l("a")], &[pod("p1")], &[lease], 0);
        assert_eq!(moves, vec![assign_to("a", "p1", Some("rv-a"), 4)]);
    }

    #[test]
    fn live_ineligible_holder_is_asked_to_release_never_overtaken() {
        let listeners = [l("a")];
        let pods = [unfit("p1"), pod("p2")];
        let leases = [held("a", "p1")];
        let moves = assign(&listeners, &pods, &leases, 0);
        assert_eq!(moves, vec![release("a", "p1", ReleaseReason::HolderNotEligible)]);
        let mut leases = apply(&moves, &pods, &leases);
        assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
        agents_release(&pods, &mut leases);
        let moves = assign(&listeners, &pods, &leases, 0);
        assert_eq!(moves, vec![assign_to("a", "p2", Some("rv-arx"), 4)]);
    }

    #[test]
    fn ineligible_holder_keeps_running_when_nowhere_has_room() {
        let pods = [unfit("p1"), pod("p2")];
        // No eligible pod at all.
        assert_eq!(assign(&[l("a")], &pods[..1], &[held("a", "p1")], 0), vec![]);
        // p2 is full.
        let leases = [held("a", "p1"), held("b", "p1"), held("c", "p2")];
        assert_eq!(assign(&[l("a"), l("b"), l("c")], &pods, &leases, 1), vec![]);
        // p2 has room for one.
        let moves = assign(&[l("a"), l("b"), l("c")], &pods, &leases, 2);
        assert_eq!(moves, vec![release("a", "p1", ReleaseReason::HolderNotEligible)]);
        // An outstanding request reserves that room.
        let mut leases = leases;
        leases[0].release_requested = true;
        assert_eq!(assign(&[l("a"), l("b"), l("c")], &pods, &leases, 2), vec![]);
    }

    #[test]
    fn suspended_listeners_are_released_and_never_assigned() {
        let pods = [pod("p1")];
        let moves = assign(&[suspended("a")], &pods, &[held("a", "p1")], 0);
        assert_eq!(moves, vec![release("a", "p1", ReleaseReason::Suspended)]);
        let mut asked = held("a", "p1");
        asked.release_requested = true;
        assert_eq!(assign(&[suspended("a")], &pods, &[asked], 0), vec![]);
        assert_eq!(assign(&[suspended("a")], &pods, &[released("a")], 0), vec![]);
        assert_eq!(assign(&[suspended("a")], &pods, &[], 0), vec![]);
        let mut expired = held("a", "p1");
        expired.expired = true;
        assert_eq!(assign(&[suspended("a")], &pods, &[expired], 0), vec![]);
    }

    #[test]
    fn removed_listeners_are_released_then_deleted() {
        let pods = [pod("p1")];
        let moves = assign(&[], &pods, &[held("gone", "p1")], 0);
        assert_eq!(moves, vec![release("gone", "p1", ReleaseReason::Removed)]);
        let mut asked = held("gone", "p1");
        asked.release_requested = true;
        assert_eq!(assign(&[], &pods, &[asked], 0), vec![]);
        let delete = vec![Move::DeleteLease {
            listener: "gone".into(),
            resource_version: "rv-gone".into(),
        }];
        assert_eq!(assign(&[], &pods, &[released("gone")], 0), delete);
        assert_eq!(assign(&[], &[], &[held("gone", "p1")], 0), delete);
        let mut expired = held("gone", "p1");
        expired.expired = true;
        assert_eq!(assign(&[], &pods, &[expired], 0), delete);
    }

    #[test]
    fn max_per_pod_limits_assignment() {
        let moves = assign(&[l("a"), l("b"), l("c")], &[pod("p1")], &[], 2);
        assert_eq!(
            moves,
            vec![assign_to("a", "p1", None, 0), assign_to("b", "p1", None, 0)]
        );
    }

    #[test]
    fn over_limit_pods_shed_highest_ids() {
        let listeners = [l("a"), l("b"), l("c"), l("d")];
        let pods = [pod("p1"), pod("p2")];
        let leases = [held("a", "p1"), held("b", "p1"), held("c", "p1"), held("d", "p1")];
        let moves = assign(&listeners, &pods, &leases, 2);
        assert_eq!(
            moves,
            vec![
                release("c", "p1", ReleaseReason::OverLimit),
                release("d", "p1", ReleaseReason::OverLimit),
            ]
        );
        let mut leases = apply(&moves, &pods, &leases);
        assert_eq!(assign(&listeners, &pods, &leases, 2), vec![]);
        agents_release(&pods, &mut leases);
        let moves = assign(&listeners, &pods, &leases, 2);
        assert_eq!(assigned_pods(&moves), vec!["p2", "p2"]);
    }

    #[test]
    fn over_limit_counts_listeners_already_leaving() {
        let listeners = [l("a"), l("b"), suspended("c")];
        let pods = [pod("p1"), pod("p2")];
        let mut asked = held("b", "p1");
        asked.release_requested = true;
        let leases = [held("a", "p1"), asked, held("c", "p1"), held("x", "p1")];
        // p1 holds 4 with max 1, but b, c and x are leaving anyway: a stays.
        let moves = assign(&listeners, &pods, &leases, 1);
        assert_eq!(
            moves,
            vec![
                release("c", "p1", ReleaseReason::Suspended),
                release("x", "p1", ReleaseReason::Removed),
            ]
        );
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

    #[test]
    fn fencing_token_continues_after_lease_recreation() {
        let listener = ListenerView {
            last_transitions: Some(7),
            ..l("a")
        };
        let moves = assign(std::slice::from_ref(&listener), &[pod("p1")], &[], 0);
        assert_eq!(moves, vec![assign_to("a", "p1", None, 8)]);
        let moves = assign(&[listener], &[pod("p1")], &[released("a")], 0);
        assert_eq!(moves, vec![assign_to("a", "p1", Some("rv-a"), 8)]);
    }

    #[test]
    fn rolling_deploy_make_before_break() {
        // Two old pods, then a new pod appears and the old ones are drained one by one.
        let listeners: Vec<_> = ["a", "b", "c", "d"].into_iter().map(l).collect();
        let mut pods = vec![pod("old1"), pod("old2")];
        let mut leases = apply(&assign(&listeners, &pods, &[], 0), &pods, &[]);
        assert_eq!(loads(&pods, &leases).values().copied().collect::<Vec<_>>(), [2, 2]);
        pods.push(pod("new1"));
        assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
        pods[0].eligible = false; // drain old1
        for _ in 0..3 {
            let moves = assign(&listeners, &pods, &leases, 0);
            leases = apply(&moves, &pods, &leases);
            agents_release(&pods, &mut leases);
        }
        pods.remove(0);
        assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
        let load = loads(&pods, &leases);
        assert_eq!(load.values().sum::<usize>(), 4);
        assert_eq!(load.get("old2"), Some(&2));
        assert_eq!(load.get("new1"), Some(&2));
    }

    #[test]
    fn summary_counts() {
        let listeners = [l("a"), l("b"), l("c"), l("d"), suspended("e"), suspended("f")];
        let mut expired = held("c", "p1");
        expired.expired = true;
        let leases = [
            held("a", "p1"),
            held("b", "gone"),
            expired,
            held("f", "p1"),
            held("removed", "p1"),
        ];
        let s = summarize(&listeners, &[pod("p1")], &leases);
        assert_eq!(
            (s.listeners, s.running, s.pending, s.orphaned, s.suspended),
            (6, 2, 1, 2, 1)
        );
        assert_eq!(
            s.states[0],
            (
                "a".to_string(),
                ListenerState::Running {
                    pod: "p1".into(),
                    transitions: 3
                }
            )
        );
        assert_eq!(s.states[1].1, ListenerState::Orphaned { holder: "gone".into() });
        assert_eq!(s.states[3].1, ListenerState::Pending);
    }

    fn k8s_pod(ready: bool, annotations: &[(&str, &str)], terminating: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p1".into()),
                uid: Some("u1".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                deletion_timestamp: terminating.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_views() {
        let view = pod_view(&k8s_pod(true, &[], false), true);
        assert_eq!(
            view,
            Some(PodView {
                name: "p1".into(),
                uid: "u1".into(),
                eligible: true
            })
        );
        assert_eq!(
            pod_view(&k8s_pod(true, &[], false), false).map(|p| p.eligible),
            Some(false)
        );
        assert!(!pod_is_eligible(&k8s_pod(false, &[], false)));
        assert!(!pod_is_eligible(&k8s_pod(true, &[], true)));
        assert!(!pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "true")], false)));
        assert!(!pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "")], false)));
        assert!(pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "false")], false)));
        assert_eq!(pod_view(&Pod::default(), true), None);
    }

    #[test]
    fn lease_views() {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some("sxt-a".into()),
                resource_version: Some("42".into()),
                labels: Some(
                    [
                        (LISTENERSET_LABEL.to_string(), "sxt".to_string()),
                        (LISTENER_LABEL.to_string(), "a".to_string()),
                    ]
                    .into(),
                ),
                annotations: Some([(RELEASE_REQUESTED_ANNOTATION.to_string(), "suspended".to_string())].into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: "p1".into(),
                    uid: "u1".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("p1".into()),
                lease_transitions: Some(5),
                ..Default::default()
            }),
        };
        assert_eq!(
            lease_view(&lease, "sxt", true),
            Some(LeaseView {
                listener: "a".into(),
                holder: Some("p1".into()),
                holder_uid: Some("u1".into()),
                expired: true,
                transitions: 5,
                resource_version: "42".into(),
                release_requested: true,
            })
        );
        assert_eq!(lease_view(&lease, "other", false), None);
        let mut empty = lease.clone();
        empty.spec = Some(LeaseSpec {
            holder_identity: Some(String::new()),
            ..Default::default()
        });
        assert_eq!(lease_view(&empty, "sxt", false).and_then(|v| v.holder), None);
    }

    #[test]
    fn reasons_are_stable_strings() {
        let all = [
            ReleaseReason::HolderNotEligible,
            ReleaseReason::Suspended,
            ReleaseReason::Removed,
            ReleaseReason::OverLimit,
        ];
        let names: BTreeSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), all.len());
    }

    // ---- property tests ----

    const LISTENER_POOL: usize = 10;
    const POD_POOL: usize = 5;

    #[derive(Clone, Debug)]
    struct World {
        listeners: Vec<ListenerView>,
        pods: Vec<PodView>,
        leases: Vec<LeaseView>,
        max: u32,
    }

    fn world(all_free: bool) -> impl Strategy<Value = World> {
        let listeners = prop::collection::vec(
            (any::<bool>(), any::<bool>(), prop::option::of(0i32..10)),
            LISTENER_POOL,
        );
        let pods = prop::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), POD_POOL);
        // holder: index into pods pool plus 2 names that never exist; uid: 0 none, 1 right, 2 wrong.
        let leases = prop::collection::vec(
            (
                any::<bool>(),
                prop::option::of(0..POD_POOL + 2),
                0u8..3,
                any::<bool>(),
                0i32..6,
                any::<bool>(),
            ),
            LISTENER_POOL + 3,
        );
        (listeners, pods, leases, 0u32..4).prop_map(move |(ls, ps, les, max)| {
            let listeners = ls
                .iter()
                .enumerate()
                .filter(|(_, (present, _, _))| *present)
                .map(|(i, (_, suspended, last))| ListenerView {
                    id: format!("l{i}"),
                    suspended: *suspended,
                    last_transitions: *last,
                })
                .collect();
            let pods = ps
                .iter()
                .enumerate()
                .filter(|(_, (exists, _, _))| *exists)
                .map(|(i, (_, eligible, _))| PodView {
                    name: format!("p{i}"),
                    uid: format!("uid-p{i}"),
                    eligible: *eligible,
                })
                .collect();
            let leases = les
                .iter()
                .enumerate()
                .filter(|(_, (exists, ..))| *exists)
                .map(|(i, (_, holder, uid, expired, transitions, requested))| {
                    let holder = holder.map(|h| format!("p{h}"));
                    let holder_uid = match (uid, &holder) {
                        (1, Some(h)) => Some(format!("uid-{h}")),
                        (2, Some(_)) => Some("uid-stale".to_string()),
                        _ => None,
                    };
                    LeaseView {
                        listener: format!("l{i}"),
                        holder,
                        holder_uid,
                        expired: *expired || all_free,
                        transitions: *transitions,
                        resource_version: format!("rv{i}"),
                        release_requested: *requested,
                    }
                })
                .collect();
            World {
                listeners,
                pods,
                leases,
                max,
            }
        })
    }

    fn run(w: &World) -> Vec<Move> {
        assign(&w.listeners, &w.pods, &w.leases, w.max)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn never_assigns_a_live_lease_and_only_to_eligible_pods(w in world(false)) {
            let moves = run(&w);
            let index = Index::new(&w.pods);
            let mut seen = BTreeSet::new();
            for m in &moves {
                let kind = match m { Move::Assign { .. } => 0, Move::RequestRelease { .. } => 1, Move::DeleteLease { .. } => 2 };
                prop_assert!(seen.insert((m.listener().to_string(), kind)),
                    "two moves of one kind for a listener: {:?}", moves);
                if let Move::Assign { listener, pod, pod_uid, from_resource_version, .. } = m {
                    let lease = w.leases.iter().find(|l| &l.listener == listener);
                    // (a) the lease is free
                    prop_assert!(lease.is_none_or(|l| index.live_holder(l).is_none()));
                    prop_assert_eq!(from_resource_version.clone(), lease.map(|l| l.resource_version.clone()));
                    // (b) eligible target
                    let target = w.pods.iter().find(|p| &p.name == pod);
                    prop_assert!(target.is_some_and(|p| p.eligible && &p.uid == pod_uid));
                    // suspended and removed listeners are never assigned
                    prop_assert!(w.listeners.iter().any(|l| &l.id == listener && !l.suspended));
                }
                if let Move::RequestRelease { listener, holder, .. } = m {
                    let lease = w.leases.iter().find(|l| &l.listener == listener);
                    let live = lease.and_then(|l| index.live_holder(l));
                    prop_assert!(live.is_some_and(|p| &p.name == holder));
                    prop_assert!(lease.is_some_and(|l| !l.release_requested));
                }
                if let Move::DeleteLease { listener, .. } = m {
                    prop_assert!(!w.listeners.iter().any(|l| &l.id == listener));
                    let lease = w.leases.iter().find(|l| &l.listener == listener);
                    prop_assert!(lease.is_some_and(|l| index.live_holder(l).is_none()));
                }
            }
        }

        #[test]
        fn max_per_pod_is_respected(w in world(false)) {
            prop_assume!(w.max > 0);
            let moves = run(&w);
            let before = loads(&w.pods, &w.leases);
            let after = loads(&w.pods, &apply(&moves, &w.pods, &w.leases));
            let max = w.max as usize;
            for pod in assigned_pods(&moves) {
                // (c) a pod that received listeners is within the limit, counting what it held
                prop_assert!(after[pod] <= max, "{} holds {} > {}", pod, after[pod], max);
                prop_assert!(before[pod] < max);
            }
        }

        #[test]
        fn sticky_listeners_get_no_moves(w in world(false)) {
            let moves = run(&w);
            let index = Index::new(&w.pods);
            let load = loads(&w.pods, &w.leases);
            let max = if w.max == 0 { usize::MAX } else { w.max as usize };
            for listener in w.listeners.iter().filter(|l| !l.suspended) {
                let Some(lease) = w.leases.iter().find(|l| l.listener == listener.id) else { continue };
                let Some(holder) = index.live_holder(lease) else { continue };
                // (d) on an eligible pod within limits: nothing happens to it
                if holder.eligible && load[holder.name.as_str()] <= max {
                    prop_assert!(moves.iter().all(|m| m.listener() != listener.id), "{:?}", moves);
                }
            }
        }

        #[test]
        fn all_free_start_is_balanced(w in world(true)) {
            let moves = run(&w);
            let leases = apply(&moves, &w.pods, &w.leases);
            let load = loads(&w.pods, &leases);
            // (e) spread across eligible pods is at most 1
            if let (Some(min), Some(max)) = (load.values().min(), load.values().max()) {
                prop_assert!(max - min <= 1, "{:?}", load);
            }
            // and every listener that could be placed was placed
            let wanted = w.listeners.iter().filter(|l| !l.suspended).count();
            let capacity = if load.is_empty() {
                0
            } else if w.max == 0 {
                usize::MAX
            } else {
                w.max as usize * load.len()
            };
            prop_assert_eq!(load.values().sum::<usize>(), wanted.min(capacity));
        }

        #[test]
        fn over_limit_sheds_exactly_the_excess(w in world(false)) {
            prop_assume!(w.max > 0);
            let max = w.max as usize;
            let staying = |leases: &[LeaseView]| {
                let index = Index::new(&w.pods);
                let mut count: BTreeMap<String, usize> = BTreeMap::new();
                for lease in leases {
                    let in_spec = w.listeners.iter().any(|l| l.id == lease.listener && !l.suspended);
                    if let Some(p) = index.live_holder(lease).filter(|p| p.eligible) {
                        if in_spec && !lease.release_requested {
                            *count.entry(p.name.clone()).or_default() += 1;
                        }
                    }
                }
                count
            };
            let before_load = loads(&w.pods, &w.leases);
            let before = staying(&w.leases);
            let after = staying(&apply(&run(&w), &w.pods, &w.leases));
            for (pod, load) in before_load {
                if load > max {
                    let was = before.get(&pod).copied().unwrap_or(0);
                    let now = after.get(&pod).copied().unwrap_or(0);
                    prop_assert_eq!(now, was.min(max), "pod {}", pod);
                }
            }
        }

        #[test]
        fn idempotent(w in world(false)) {
            let moves = run(&w);
            let leases = apply(&moves, &w.pods, &w.leases);
            // (f) nothing more to do until an agent acts
            let again = assign(&w.listeners, &w.pods, &leases, w.max);
            prop_assert_eq!(again, vec![]);
        }

        #[test]
        fn deterministic_and_order_independent(w in world(false)) {
            // (g)
            let moves = run(&w);
            prop_assert_eq!(&moves, &run(&w));
            let mut rev = w.clone();
            rev.listeners.reverse();
            rev.pods.reverse();
            rev.leases.reverse();
            prop_assert_eq!(&moves, &run(&rev));
        }

        #[test]
        fn converges_with_agents_releasing(w in world(false)) {
            let mut leases = w.leases.clone();
            let mut rounds = 0;
            loop {
                agents_release(&w.pods, &mut leases);
                let moves = assign(&w.listeners, &w.pods, &leases, w.max);
                if moves.is_empty() {
                    break;
                }
                rounds += 1;
                prop_assert!(rounds <= 4, "no convergence: {:?}", moves);
                leases = apply(&moves, &w.pods, &leases);
            }
            let index = Index::new(&w.pods);
            let load = loads(&w.pods, &leases);
            let max = if w.max == 0 { usize::MAX } else { w.max as usize };
            prop_assert!(load.values().all(|n| *n <= max));
            let full = load.values().all(|n| *n >= max);
            for listener in &w.listeners {
                let lease = leases.iter().find(|l| l.listener == listener.id);
                let holder = lease.and_then(|l| index.live_holder(l));
                if listener.suspended {
                    prop_assert!(holder.is_none());
                } else if !holder.is_some_and(|p| p.eligible) {
                    // not running on an eligible pod only if there is nowhere to put it
                    prop_assert!(full, "{} not placed: {:?} {:?}", listener.id, holder, load);
                }
            }
            for lease in &leases {
                prop_assert!(w.listeners.iter().any(|l| l.id == lease.listener), "left over {:?}", lease);
            }
        }
    }
}
