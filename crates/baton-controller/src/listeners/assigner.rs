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
//!   [`RELEASE_REQUESTED_ANNOTATION`](crate::api::listenerset::RELEASE_REQUESTED_ANNOTATION) removed. It is a create when `from_resource_version` is
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
//!   annotation [`RELEASE_REQUESTED_ANNOTATION`](crate::api::listenerset::RELEASE_REQUESTED_ANNOTATION)` = <reason>` (see [`ReleaseReason::as_str`])
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
//! * **Deleted sets** ([`finalize`]): every listener is treated as removed; the controller's
//!   finalizer keeps the ListenerSet until no Lease of it is left.
//!
//! # Placement rules
//!
//! * Sticky unless evened out: a listener held by an eligible pod stays there, except that a
//!   pod holding more than `maxPerPod` is asked to release the excess (its highest ids first)
//!   and, for a `Balanced` set ([`assign_balanced`] with [`Balancing`]), the most loaded pods
//!   are asked to release what brings the loads within `maxSkew` (the `rebalance` module).
//! * A free listener goes to the eligible pod furthest below its share (its weight's part of
//!   the listeners; with equal weights, the fewest live Leases), ties broken by name (and, for a Lease that expired on a still-existing pod, away from that pod when it
//!   is a tie), never beyond `maxPerPod`. Listeners are placed in id order, those going back
//!   to the pod that let them go (a Lease recreated) first, then those whose Lease still names
//!   the successor of a release request (its holder stopped before the handover showed): each
//!   goes to that successor while it stays within its share. A listener whose Lease is being
//!   deleted counts on the pod it goes back to.
//! * A listener held by a live but non-eligible pod is asked to move only when an eligible pod
//!   has room for it (make-before-break: if nowhere can take it, it keeps running where it
//!   is). Requests already outstanding reserve room first.
//! * Suspended listeners are released and never assigned. With no eligible pod nothing is
//!   assigned; such listeners are pending (see [`summarize`]).

use crate::api::listenerset::lease::{self, Holder, LeaseFields};
pub use crate::api::listenerset::ReleaseReason;
use crate::api::listenerset::{LISTENERSET_LABEL, LISTENER_LABEL};
use crate::api::pod::CachedPod;
use std::borrow::Borrow;
use std::collections::BTreeMap;

mod keyed;
mod load;
mod rebalance;
use keyed::Keyed;
use load::Load;
pub use rebalance::{Balance, Balancing, WAIT_HANDOVERS, WAIT_RESIDENCE};

/// A listener of the set (after merging `listeners` and `listenersFrom`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerView {
    pub id: String,
    pub suspended: bool,
    /// For a listener without a Lease: a fencing token no Lease of it ever exceeded (the set's
    /// token ceiling), so a Lease made anew continues above it. `None`: start at 0.
    pub last_transitions: Option<i32>,
    /// A pod to give the listener to when it is free, if that pod may take it (the pod that let
    /// it go for a reason that was not its own, e.g. its Lease was deleted).
    pub prefer: Option<String>,
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
    /// Its share of the listeners relative to other pods' (`baton.dev/listener-weight`; 0 is
    /// read as 1).
    pub weight: u32,
    /// Where it comes among pods equally placed to take a listener or give one up: lower first,
    /// equal ranks by name. The decision ranks the pods in an order of each set's own
    /// ([`rank`]), so sets that hold the same loads do not all pick the same pods.
    pub rank: u64,
}

/// Pod `pod`'s rank in the order of the set seeded `seed` (see [`PodView::rank`]): a hash of the
/// two, as rendezvous hashing ranks servers for a key, so each set orders the pods differently
/// and a pod's place does not move when other pods come or go. Seed 0 ranks every pod 0 (ties
/// by name).
pub fn rank(seed: u64, pod: &str) -> u64 {
    use std::hash::Hasher;
    if seed == 0 {
        return 0;
    }
    let mut h = fnv::FnvHasher::default();
    h.write_u64(seed);
    h.write(pod.as_bytes());
    // FNV leaves similar names close together: spread the bits (splitmix64's finalizer).
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
    /// [`RELEASE_REQUESTED_ANNOTATION`](crate::api::listenerset::RELEASE_REQUESTED_ANNOTATION) is present.
    pub release_requested: bool,
    /// The holder renewed the Lease after it was assigned (`renewTime` differs from the
    /// `acquireTime` the controller wrote with the assignment). Until then the listener is
    /// starting, not running: the holder's agent starts a listener only after a renewal.
    pub renewed: bool,
    /// The release was asked to even out loads ([`ReleaseReason::Rebalance`]).
    pub rebalancing: bool,
    /// How long its holder has held it (since `acquireTime`); `None`: unknown.
    pub held_for: Option<std::time::Duration>,
    /// The pod (name, uid) its outstanding release request hands it to, if the request names one.
    pub successor: Option<(String, String)>,
}

impl LeaseView {
    /// Whether pod `name` of uid `uid` holds this Lease (see [`Holder::is`]).
    pub fn held_by(&self, name: &str, uid: &str) -> bool {
        self.holder.as_deref().is_some_and(|h| {
            Holder {
                name: h,
                uid: self.holder_uid.as_deref(),
            }
            .is(name, uid)
        })
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
    /// Set [`RELEASE_REQUESTED_ANNOTATION`](crate::api::listenerset::RELEASE_REQUESTED_ANNOTATION)` = reason.as_str()` on the listener's Lease,
    /// and with `to` [`RELEASE_TO_ANNOTATION`](crate::api::listenerset::RELEASE_TO_ANNOTATION):
    /// the holder's agent then hands the listener to that pod itself.
    RequestRelease {
        listener: String,
        holder: String,
        resource_version: String,
        reason: ReleaseReason,
        to: Option<Successor>,
    },
    /// Delete the Lease of a removed listener (precondition: `resource_version`).
    DeleteLease { listener: String, resource_version: String },
    /// Let a Lease that is being deleted go, once nobody runs its listener: remove its finalizer
    /// (conditional on `resource_version`).
    RemoveFinalizer { listener: String, resource_version: String },
    /// Bring a Lease written before the liveness protocol to it (conditional on
    /// `resource_version`): its finalizer, the holder's uid label and the protocol annotation.
    Adopt {
        listener: String,
        resource_version: String,
        holder_uid: Option<String>,
    },
}

/// Where a release request sends its listener: the eligible pod the listener would be placed on
/// were it free now (room counted), and the fencing token the handover will carry (its Lease's
/// token + 1, which the set's ceiling must cover before the request is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Successor {
    pub pod: String,
    pub uid: String,
    pub token: i32,
}

impl Move {
    /// The listener this move is about.
    pub fn listener(&self) -> &str {
        match self {
            Move::Assign { listener, .. }
            | Move::RequestRelease { listener, .. }
            | Move::DeleteLease { listener, .. }
            | Move::RemoveFinalizer { listener, .. }
            | Move::Adopt { listener, .. } => listener,
        }
    }
}

struct Index<'a> {
    /// By name (hashed: every Lease's holder is looked up, several times a pass).
    pods: Keyed<'a, PodView>,
}

impl<'a> Index<'a> {
    fn new(pods: &'a [PodView]) -> Self {
        Index {
            pods: Keyed::of(pods.iter(), |p| p.name.as_str()),
        }
    }

    /// The pod named as holder, if it still exists (same uid when the Lease records one).
    fn holder_pod(&self, lease: &LeaseView) -> Option<&'a PodView> {
        let pod = self.pods.get(lease.holder.as_deref()?)?;
        lease.held_by(&pod.name, &pod.uid).then_some(pod)
    }

    /// The eligible pod an outstanding release request of `lease` hands it to, if it names one
    /// (same name and uid) other than its holder.
    fn successor_pod(&self, lease: &LeaseView) -> Option<&'a PodView> {
        let (name, uid) = lease.successor.as_ref().filter(|_| lease.release_requested)?;
        let pod = self.pods.get(name.as_str())?;
        (pod.uid == *uid && pod.eligible && lease.holder.as_deref() != Some(name.as_str())).then_some(pod)
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

/// Decide the moves that bring Leases towards the spec. See the module doc for the rules.
///
/// Duplicate listener ids, pod names or Lease listeners are ignored after the first.
/// `max_per_pod == 0` means no limit.
pub fn assign(listeners: &[ListenerView], pods: &[PodView], leases: &[LeaseView], max_per_pod: u32) -> Vec<Move> {
    assign_balanced(listeners, pods, leases, max_per_pod, None).0
}

/// [`assign`], and with `balancing` also the moves that even out the loads
/// (the `rebalance` module); how balanced the set is.
///
/// Listeners and Leases are taken owned or by reference (a caller picking some of its own
/// copies none).
pub fn assign_balanced<V: Borrow<ListenerView>, L: Borrow<LeaseView>>(
    listeners: &[V],
    pods: &[PodView],
    leases: &[L],
    max_per_pod: u32,
    balancing: Option<&Balancing>,
) -> (Vec<Move>, Balance) {
    let none = BTreeMap::new();
    assign_settled(listeners, pods, leases, max_per_pod, balancing, &none, &none).unwrap_or_default()
}

/// [`assign_balanced`] over part of a set: `settled` counts, by pod, listeners of the spec each
/// eligible pod holds (acknowledged, nothing asked of them) that are in neither `listeners` nor
/// `leases`. They weigh in the loads; `None` where the decision would pick among them one by
/// one (a pod holding some sheds its excess over `maxPerPod`, or evening out would move some).
/// `returning` counts, by pod, the listeners whose Leases are being deleted that will come back
/// to that pod (the pod that let them go): they weigh in the loads too, so what is placed
/// meanwhile leaves them room, and nothing is asked of them.
pub fn assign_settled<V: Borrow<ListenerView>, L: Borrow<LeaseView>>(
    listeners: &[V],
    pods: &[PodView],
    leases: &[L],
    max_per_pod: u32,
    balancing: Option<&Balancing>,
    settled: &BTreeMap<&str, usize>,
    returning: &BTreeMap<&str, usize>,
) -> Option<(Vec<Move>, Balance)> {
    let index = Index::new(pods);
    let spec = Keyed::of(listeners.iter().map(Borrow::borrow), |l| l.id.as_str());
    let leases = Keyed::of(leases.iter().map(Borrow::borrow), |l| l.listener.as_str());
    let limit = if max_per_pod == 0 {
        usize::MAX
    } else {
        usize::try_from(max_per_pod).unwrap_or(usize::MAX)
    };
    let mut load = Load::of(&index, &spec, &leases, settled, returning);
    let mut sorted = Sorted::of(&index, &spec, &leases);
    let (mut releases, deletes) = removed(&index, &spec, &leases);
    releases.append(&mut sorted.releases);
    let shed = load.shed_excess(&index, &sorted.sticky, limit, &mut releases)?;
    let assigns = load.place(&index, &sorted.free, limit);
    // Stranded listeners move only where there is room (make-before-break).
    let room = load
        .room(limit, max_per_pod)
        .saturating_sub(sorted.reserved)
        .saturating_sub(shed);
    let stranded = sorted.stranded.len();
    for (lease, holder) in sorted.stranded.iter().take(room) {
        releases.push(request(lease, holder, ReleaseReason::HolderNotEligible));
    }
    load.name_successors(&index, &leases, limit, &mut releases);
    let churn = rebalance::Churn {
        assigned: assigns.len(),
        unplaced: sorted.free.len().saturating_sub(assigns.len()),
        released: releases.len(),
        stranded: stranded.saturating_sub(room),
    };
    let (evening, balance) = rebalance::plan(&index, &load, &sorted.sticky, &leases, &churn, limit, balancing)?;
    releases.extend(evening);
    releases.sort_by(|a, b| a.listener().cmp(b.listener()));
    releases.extend(assigns);
    releases.extend(deletes);
    Some((releases, balance))
}

/// Ask `holder` to release `lease`.
fn request(lease: &LeaseView, holder: &PodView, reason: ReleaseReason) -> Move {
    Move::RequestRelease {
        listener: lease.listener.clone(),
        holder: holder.name.clone(),
        resource_version: lease.resource_version.clone(),
        reason,
        to: None,
    }
}

/// Ask `holder` to hand `lease` over to pod `to` (see [`Successor`]).
fn request_to(lease: &LeaseView, holder: &PodView, reason: ReleaseReason, to: Option<&PodView>) -> Move {
    Move::RequestRelease {
        listener: lease.listener.clone(),
        holder: holder.name.clone(),
        resource_version: lease.resource_version.clone(),
        reason,
        to: to.map(|p| Successor {
            pod: p.name.clone(),
            uid: p.uid.clone(),
            token: lease.transitions.saturating_add(1),
        }),
    }
}

/// The spec's listeners sorted by what becomes of them.
struct Sorted<'a> {
    /// Release requests (suspended listeners on live holders).
    releases: Vec<Move>,
    /// Listeners with no live holder, with their Lease if any.
    free: Vec<(&'a ListenerView, Option<&'a LeaseView>)>,
    /// Listeners on live, non-eligible holders: (lease, holder).
    stranded: Vec<(&'a LeaseView, &'a PodView)>,
    /// Listeners staying on eligible pods, not yet asked to release, by pod.
    sticky: BTreeMap<&'a str, Vec<&'a LeaseView>>,
    /// Listeners that will need a new home once their outstanding release happens.
    reserved: usize,
}

impl<'a> Sorted<'a> {
    fn of(index: &Index<'a>, spec: &Keyed<'a, ListenerView>, leases: &Keyed<'a, LeaseView>) -> Sorted<'a> {
        let mut out = Sorted {
            releases: Vec::new(),
            free: Vec::new(),
            stranded: Vec::new(),
            sticky: BTreeMap::new(),
            reserved: 0,
        };
        for (id, listener) in spec.iter() {
            let lease = leases.get(id);
            let Some((lease, holder)) = lease.and_then(|l| index.live_holder(l).map(|p| (l, p))) else {
                if !listener.suspended {
                    out.free.push((listener, lease));
                }
                continue;
            };
            if listener.suspended {
                if !lease.release_requested {
                    out.releases.push(request(lease, holder, ReleaseReason::Suspended));
                }
            } else if lease.release_requested {
                // One handed to a named pod is counted there (`Load::incoming`).
                out.reserved += usize::from(index.successor_pod(lease).is_none());
            } else if holder.eligible {
                out.sticky.entry(holder.name.as_str()).or_default().push(lease);
            } else {
                out.stranded.push((lease, holder));
            }
        }
        out
    }
}

/// Leases of listeners the spec no longer has: a live holder is asked to release, a free Lease
/// is deleted. (release requests, deletes)
fn removed(index: &Index<'_>, spec: &Keyed<'_, ListenerView>, leases: &Keyed<'_, LeaseView>) -> (Vec<Move>, Vec<Move>) {
    let (mut releases, mut deletes) = (Vec::new(), Vec::new());
    for (id, lease) in leases.iter() {
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
    (releases, deletes)
}

/// The moves that wind a deleted ListenerSet down: every listener is treated as removed (a live
/// holder is asked to release, reason [`ReleaseReason::SetDeleted`]; a free Lease is deleted),
/// and nothing is assigned.
pub fn finalize<L: Borrow<LeaseView>>(pods: &[PodView], leases: &[L]) -> Vec<Move> {
    assign_balanced::<ListenerView, L>(&[], pods, leases, 0, None)
        .0
        .into_iter()
        .map(|m| match m {
            Move::RequestRelease {
                listener,
                holder,
                resource_version,
                ..
            } => Move::RequestRelease {
                listener,
                holder,
                resource_version,
                reason: ReleaseReason::SetDeleted,
                to: None,
            },
            other => other,
        })
        .collect()
}

/// What a listener is doing right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerState {
    /// Held by a live pod whose Lease has not expired, and renewed by it since the assignment.
    Running { pod: String, uid: String, transitions: i32 },
    /// Assigned to a live pod that has not renewed the Lease since (its agent has not started
    /// the listener yet, or never will).
    Starting { pod: String, uid: String, transitions: i32 },
    /// No holder (no Lease, or released).
    Pending,
    /// The holder pod is gone or its Lease expired.
    Orphaned { holder: String },
    /// Suspended and not running.
    Suspended,
}

/// Counts for `ListenerSet.status`; `running + starting + pending + orphaned + suspended ==
/// listeners`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub listeners: i32,
    pub running: i32,
    pub starting: i32,
    pub pending: i32,
    pub orphaned: i32,
    pub suspended: i32,
    /// Every listener of the spec, in id order, but the settled ones.
    pub states: Vec<(String, ListenerState)>,
    /// Listeners running on each pod (by name) that are not in `states`: settled, counted
    /// without being looked at one by one (`decide`'s settled listeners).
    pub settled: BTreeMap<String, i32>,
}

impl Summary {
    /// Count `settled` (by pod name) running, besides the listeners in `states`.
    pub fn add_settled(&mut self, settled: &BTreeMap<&str, usize>) {
        for (pod, n) in settled {
            let n = i32::try_from(*n).unwrap_or(i32::MAX);
            self.running = self.running.saturating_add(n);
            self.listeners = self.listeners.saturating_add(n);
            let on = self.settled.entry(pod.to_string()).or_default();
            *on = on.saturating_add(n);
        }
    }
}

/// Summarise the state of every listener in the spec (Leases of removed listeners are not
/// counted). A suspended listener still running (release outstanding) counts as running (or
/// starting).
pub fn summarize<L: Borrow<LeaseView>>(listeners: &[ListenerView], pods: &[PodView], leases: &[L]) -> Summary {
    let index = Index::new(pods);
    let spec = Keyed::of(listeners.iter(), |l| l.id.as_str());
    let leases = Keyed::of(leases.iter().map(Borrow::borrow), |l| l.listener.as_str());
    let mut summary = Summary::default();
    for (id, listener) in spec.iter() {
        let lease = leases.get(id);
        let live = lease.and_then(|l| index.live_holder(l).map(|p| (l, p)));
        let holder = lease.and_then(|l| l.holder.as_deref().filter(|h| !h.is_empty()));
        let state = match (live, holder) {
            (Some((lease, pod)), _) if lease.renewed => ListenerState::Running {
                pod: pod.name.clone(),
                uid: pod.uid.clone(),
                transitions: lease.transitions,
            },
            (Some((lease, pod)), _) => ListenerState::Starting {
                pod: pod.name.clone(),
                uid: pod.uid.clone(),
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
            ListenerState::Starting { .. } => &mut summary.starting,
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

/// Whether a pod may receive listeners: Ready, not terminating, not draining (see
/// [`crate::api::pod::DRAIN_ANNOTATION`]). Selector matching is the caller's part.
pub fn pod_is_eligible(pod: &CachedPod) -> bool {
    let terminating = pod.metadata.deletion_timestamp.is_some();
    pod.is_ready() && !terminating && !crate::api::pod::is_draining(&pod.metadata)
}

/// A [`PodView`] of `pod`; `None` if it has no name or uid. `selected` = it matches the
/// ListenerSet's selector.
pub fn pod_view(pod: &CachedPod, selected: bool) -> Option<PodView> {
    Some(PodView {
        name: pod.metadata.name.clone()?,
        uid: pod.metadata.uid.clone()?,
        eligible: selected && pod_is_eligible(pod),
        weight: crate::api::listenerset::rebalance::pod_weight(pod.metadata.annotations.as_ref()).unwrap_or(1),
        rank: 0,
    })
}

/// A [`LeaseView`] of a listener Lease of set `set`; `None` if the Lease does not carry
/// [`LISTENERSET_LABEL`]` = set` and a [`LISTENER_LABEL`]. `expired` is the caller's judgement.
pub fn lease_view<L: LeaseFields + ?Sized>(lease: &L, set: &str, expired: bool) -> Option<LeaseView> {
    if lease.label(LISTENERSET_LABEL) != Some(set) {
        return None;
    }
    let listener = lease.label(LISTENER_LABEL)?.to_string();
    let holder_uid = lease::owner_pod(lease).map(|o| o.uid.to_string());
    let renewed = lease::renewed_since_assignment(lease);
    Some(LeaseView {
        listener,
        renewed,
        rebalancing: lease::release_requested(lease) == Some(ReleaseReason::Rebalance.as_str()),
        held_for: None,
        successor: lease::handover::successor(lease).map(|s| (s.name.to_string(), s.uid.to_string())),
        holder: lease.holder_identity().filter(|h| !h.is_empty()).map(str::to_string),
        holder_uid,
        expired,
        transitions: lease::fencing_token(lease),
        resource_version: lease.version().unwrap_or_default().to_string(),
        release_requested: lease::release_requested(lease).is_some(),
    })
}

#[cfg(test)]
mod tests;
