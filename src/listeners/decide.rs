//! The ListenerSet reconcile's decisions, pure: what the caches show (pods, the set's Leases,
//! its status), the spec's listeners, the controller's memory and `now` (monotonic) in; the
//! Lease writes, the summary the status is made from, the kind of every assignment (for its
//! Event) and when to look again out. No I/O and no clock: the shell
//! (`listeners::controller::reconcile`) reads, calls [`decide`], writes, and tells the
//! [`Memory`] which writes succeeded ([`Memory::written`]).
//!
//! # Rules decided here (on top of the [`assigner`]'s)
//!
//! * **Expiry** (client-go's rule): a held Lease is expired once its `leaseDurationSeconds`
//!   have passed on this process's monotonic clock since the controller first saw its holder
//!   record (holder, renewal, acquisition, transitions) as it is now. `renewTime` is never
//!   compared with a wall clock; a controller that starts waits a full duration before it
//!   judges any Lease expired.
//! * **Recover**: with a pending recover, a Lease whose holder the API server does not list as
//!   live (Ready, not terminating) is expired at once.
//! * **Unresponsive pods** get nothing new: a pod that still exists but let a Lease expire is
//!   remembered by uid, across all sets ([`Unresponsive`]), until it is seen renewing a Lease
//!   again or its containers restart; otherwise, after the takeover, the dead pod would look
//!   like the emptiest one. A pod that never renewed anything is eligible until a Lease
//!   assigned to it goes unrenewed past its duration.
//! * **Fencing tokens** continue from the highest ever seen for the listener (Leases, the
//!   status, the controller's memory of its own writes); [`Decision::tokens`] includes the
//!   tokens of this decision's assignments, and the shell writes them to the status before any
//!   Lease carries them, so no restart, failover or garbage collection sends a token back. A
//!   token reserved for an assignment that was certainly not written (refused with 409/404, held
//!   back) goes to the listener's next assignment ([`Memory::refused`]): no Lease carried it, and
//!   a retry must not skip it.
//! * **How often it runs changes nothing**: the reason a takeover gives is decided from what is
//!   observed (the holder stopped, gone, recovered, or its Lease expired) in one place
//!   ([`why_expired`]), whether the listener moves while the Lease is still there or after it
//!   went (collected with its pod) and the memory of how it ended is used.
//! * **A gone pod is not proof.** A Lease whose holder pod is gone (force-deleted: its
//!   containers may run on) is taken over only once it expired — unless the kubelet reported
//!   the pod stopped (`Input::stopped`: phase Succeeded/Failed or every container terminated,
//!   what a completed graceful deletion shows), then at once.
//! * **A missing Lease is not a free one.** The controller remembers each listener's last
//!   holder (from the Leases it saw, its own assignments, and at start `status.assignments`,
//!   which lists every assignment before its Lease is written). When a wanted listener has no
//!   Lease and that holder's pod still exists (same name and uid) and answers, the Lease is
//!   recreated for that same pod with the next token ([`Kind::Recreated`]): the only pod that
//!   may still run the listener keeps it, and nobody else gets it. If the holder's pod is gone
//!   (not reported stopped) or unresponsive, or unknown (a fresh controller finds a token but
//!   neither Lease nor holder), the listener is held for one lease duration from when the
//!   Lease was seen gone: by then the agent's own safety rule has stopped it. A holder is
//!   forgotten once its Lease is released or expired, or its pod reported stopped.
//! * **Running means running**: a listener whose holder has not renewed since the assignment
//!   is starting ([`assigner::ListenerState::Starting`]); a selected pod that let a Lease expire
//!   is named in [`Decision::silent`].
//! * A listener whose config cannot be read is not assigned.
//! * A set being deleted is wound down ([`assigner::finalize`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::assigner::{self, LeaseView, ListenerView, Move, PodView, Summary};
use crate::api::listenerset::ListenerSetStatus;

/// Added to a requeue at the next expiry, so the next pass finds the Lease expired.
const EXPIRY_SLACK: Duration = Duration::from_millis(20);

/// A pod of the set's namespace (every one with a name and uid).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub name: String,
    pub uid: String,
    /// Matches the set's selector.
    pub selected: bool,
    /// Ready, not terminating, not draining (the selector aside).
    pub eligible: bool,
    /// Restarts of its containers, summed (a restarted agent is a new chance).
    pub restarts: i32,
}

/// A Lease of the set, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseFacts {
    /// The Lease's name.
    pub name: String,
    /// Its view; `expired` is ignored (decided here).
    pub view: LeaseView,
    /// The fields only a holder's renewal or an assignment changes: expiry counts from their
    /// last change, so the controller's own release requests are no sign of life.
    pub record: String,
    /// Its `leaseDurationSeconds` (the set's default if unset).
    pub duration: Duration,
}

/// A listener the spec asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub id: String,
    pub suspended: bool,
    /// Its config cannot be read (missing Secret or key): it is not started.
    pub no_config: bool,
}

/// Everything one decision is made from.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub deleting: bool,
    pub listeners: &'a [Wanted],
    /// The `listenersFrom` Secret is missing: Leases of listeners not in `listeners` stay.
    pub keep_unknown: bool,
    /// 0 = no limit.
    pub max_per_pod: u32,
    pub pods: &'a [PodFacts],
    pub leases: &'a [LeaseFacts],
    /// The set's status as last read (its fencing tokens and assignments).
    pub status: &'a ListenerSetStatus,
    /// A recover is pending: the pods the API server lists as Ready and not terminating now.
    pub recover: Option<&'a BTreeSet<String>>,
    /// Pods known unresponsive (by this or another set).
    pub unresponsive: &'a Unresponsive,
    /// Uids of pods the kubelet reported stopped (phase Succeeded/Failed, or every container
    /// terminated: [`crate::api::pod::has_stopped`]), existing or gone (their last state seen).
    /// Only this proves that a pod's listeners stopped: a force-deleted pod's may run on.
    pub stopped: &'a BTreeSet<String>,
    /// The set's `leaseDurationSeconds`.
    pub lease_duration: Duration,
    pub now: Instant,
}

/// How an assignment came about, for its Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The listener had no Lease.
    Assigned,
    /// Its holder released it.
    Handover,
    /// Taken from holder pod `from`, which is gone or whose Lease expired; `why` says which.
    Takeover { from: String, why: String },
    /// The Lease was deleted while its holder may still run the listener: recreated for it.
    Recreated,
}

/// One Lease write, and for an assignment how it came about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub change: Move,
    pub kind: Option<Kind>,
}

/// What the shell does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Independent, conditional Lease writes.
    pub writes: Vec<Write>,
    /// The listeners' states before the writes (status is made from it).
    pub summary: Summary,
    /// Pods that may take listeners.
    pub eligible: usize,
    /// Look again after this long (a Lease expires then), unless something changes first.
    pub requeue: Option<Duration>,
    /// Leases a pending recover expired at once.
    pub recovered: usize,
    /// The highest fencing token of each listener, including this decision's assignments.
    pub tokens: BTreeMap<String, i32>,
    /// Uids of pods that let a Lease of this set expire.
    pub lapsed: BTreeSet<String>,
    /// Uids of pods seen renewing a Lease of this set.
    pub renewed: BTreeSet<String>,
    /// Selected pods that let a Lease expire and have not renewed since (they get nothing new),
    /// by name: for the status, which names them.
    pub silent: Vec<Silent>,
}

/// Decide one reconcile. See the module doc.
pub fn decide(input: &Input, memory: &mut Memory) -> Decision {
    let Judged {
        views: leases,
        next_expiry,
        recovered,
        renewed,
    } = judge_leases(input, memory);
    let lapsed = lapsed(input, &leases);
    let pods = pod_views(input, &leases, &lapsed);
    let silent = silent(input, &leases, &lapsed, &renewed);
    remember_tokens(input, &leases, memory);
    remember_holders(input, &leases, memory);
    let listeners = listener_views(input, &leases, memory);
    let restored = restore(input, &leases, memory);
    let writes = writes(input, &pods, &leases, &listeners, &restored, memory);
    // While the set is being deleted, its listeners are the Leases still left.
    let counted: Vec<ListenerView> = if input.deleting {
        leases
            .iter()
            .map(|l| ListenerView {
                id: l.listener.clone(),
                ..Default::default()
            })
            .collect()
    } else {
        listeners
    };
    let seen = as_written(&leases, &writes, &restored);
    Decision {
        summary: assigner::summarize(&counted, &pods, &seen),
        writes,
        eligible: pods.iter().filter(|p| p.eligible).count(),
        requeue: [next_expiry, restored.wake]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(input.now) + EXPIRY_SLACK),
        recovered,
        tokens: memory.tokens.clone(),
        lapsed,
        renewed,
        silent,
    }
}

/// Raise the remembered fencing tokens to those of the Leases and the status.
fn remember_tokens(input: &Input, leases: &[LeaseView], memory: &mut Memory) {
    for (listener, token) in leases.iter().map(|l| (l.listener.as_str(), l.transitions)) {
        memory.raise(listener, token);
        memory.carried(listener, token);
    }
    let status = input.status;
    let recorded = status.assignments.iter().map(|a| (&a.listener, a.transitions));
    for (listener, token) in status.fencing_tokens.iter().map(|(l, t)| (l, *t)).chain(recorded) {
        memory.raise(listener, token);
    }
}

/// The Lease writes: the assigner's moves (or the wind-down's), without assignments of
/// listeners whose config cannot be read or whose Lease is being restored, plus the restoring
/// writes. Their tokens are remembered at once (the status carries them before any Lease).
fn writes(
    input: &Input,
    pods: &[PodView],
    leases: &[LeaseView],
    listeners: &[ListenerView],
    restored: &Restored,
    memory: &mut Memory,
) -> Vec<Write> {
    let no_config: BTreeSet<&str> = input
        .listeners
        .iter()
        .filter(|l| l.no_config)
        .map(|l| l.id.as_str())
        .chain(
            listeners
                .iter()
                .filter(|l| input.keep_unknown && !input.listeners.iter().any(|w| w.id == l.id))
                .map(|l| l.id.as_str()),
        )
        .collect();
    let restoring: BTreeSet<&str> = restored
        .writes
        .iter()
        .map(|w| w.change.listener())
        .chain(restored.waiting.iter().map(|l| l.listener.as_str()))
        .collect();
    let planned = if input.deleting {
        assigner::finalize(pods, leases)
    } else {
        plan(input, pods, leases, listeners, restored)
    };
    let mut writes: Vec<Write> = planned
        .into_iter()
        .filter(|m| !(matches!(m, Move::Assign { .. }) && no_config.contains(m.listener())))
        // The restoring write is the only one for its listener (its Lease does not exist yet).
        .filter(|m| !restoring.contains(m.listener()))
        .map(|change| {
            let kind =
                matches!(change, Move::Assign { .. }).then(|| kind_of(input, leases, &memory.ended, change.listener()));
            Write { change, kind }
        })
        .collect();
    writes.extend(restored.writes.iter().cloned());
    for w in &writes {
        if let Move::Assign {
            listener, transitions, ..
        } = &w.change
        {
            memory.raise(listener, *transitions);
        }
    }
    writes
}

/// The Leases as they will be after the restoring writes, with the listeners held for their
/// last holder. The status shows every assignment of this decision (as starting) and held
/// listeners as orphaned: it is written before any Lease, so a controller that starts after it
/// knows who may run each listener even if a Lease it wrote was deleted before it saw it.
fn as_written(leases: &[LeaseView], writes: &[Write], restored: &Restored) -> Vec<LeaseView> {
    let mut seen: Vec<LeaseView> = leases.to_vec();
    for w in writes {
        if let Some(view) = restored_view(&w.change) {
            seen.retain(|l| l.listener != view.listener);
            seen.push(view);
        }
    }
    seen.extend(restored.waiting.iter().cloned());
    seen
}

/// The assigner's moves. A restored listener counts as held by its pod (it is, once the Lease is
/// recreated). A listener whose holder pod is gone unconfirmed (its containers may run on) and
/// whose Lease has not expired, or whose Lease is gone with such a holder, is left out: nobody
/// gets it, nothing is written about it, until the holder must have stopped.
fn plan(
    input: &Input,
    pods: &[PodView],
    leases: &[LeaseView],
    listeners: &[ListenerView],
    restored: &Restored,
) -> Vec<Move> {
    let by_name = pods_by_name(input.pods);
    let gone = |l: &LeaseView| {
        l.holder
            .as_deref()
            .is_some_and(|h| by_name.get(h).is_none_or(|p| !l.held_by(&p.name, &p.uid)))
    };
    let ghosts: BTreeSet<&str> = leases
        .iter()
        .filter(|l| !l.expired && gone(l))
        .chain(restored.waiting.iter().filter(|l| gone(l)))
        .map(|l| l.listener.as_str())
        .collect();
    let listeners: Vec<ListenerView> = listeners
        .iter()
        .filter(|l| !ghosts.contains(l.id.as_str()))
        .cloned()
        .collect();
    let mut held: Vec<LeaseView> = leases
        .iter()
        .filter(|l| !ghosts.contains(l.listener.as_str()))
        .cloned()
        .collect();
    held.extend(restored.writes.iter().filter_map(|w| restored_view(&w.change)));
    held.extend(restored.waiting.iter().filter(|l| !gone(l)).cloned());
    assigner::assign(&listeners, pods, &held, input.max_per_pod)
}

/// The set's Leases as judged now.
struct Judged {
    views: Vec<LeaseView>,
    /// When the first live one expires.
    next_expiry: Option<Instant>,
    /// How many a recover expired.
    recovered: usize,
    /// Uids of holders whose renewal was seen now.
    renewed: BTreeSet<String>,
}

/// Judge the Leases' expiry, and see who renewed.
fn judge_leases(input: &Input, memory: &mut Memory) -> Judged {
    let now = input.now;
    let current: BTreeSet<&str> = input.leases.iter().map(|l| l.name.as_str()).collect();
    memory.observed.retain(|name, _| current.contains(name.as_str()));
    let mut out = Judged {
        views: Vec::with_capacity(input.leases.len()),
        next_expiry: None,
        recovered: 0,
        renewed: BTreeSet::new(),
    };
    for lease in input.leases {
        let uid = lease.view.holder_uid.clone();
        let entry = memory
            .observed
            .entry(lease.name.clone())
            .or_insert_with(|| (lease.record.clone(), now, uid.clone()));
        if entry.0 != lease.record {
            // The same holder changed its record: a renewal (assignments change the holder).
            if entry.2 == uid && lease.view.holder.is_some() {
                out.renewed.extend(uid.clone());
            }
            *entry = (lease.record.clone(), now, uid);
        }
        let expires_at = entry.1 + lease.duration;
        let holder = lease.view.holder.as_deref().filter(|h| !h.is_empty());
        // The kubelet reported the holder stopped: nothing of it can run the listener.
        let stopped = lease
            .view
            .holder_uid
            .as_ref()
            .is_some_and(|u| input.stopped.contains(u));
        let mut expired = holder.is_some() && (now >= expires_at || stopped);
        if let (Some(holder), Some(live)) = (holder, input.recover) {
            if !live.contains(holder) && !expired {
                expired = true;
                out.recovered += 1;
            }
        }
        if holder.is_some() && !expired {
            out.next_expiry = Some(out.next_expiry.map_or(expires_at, |t| t.min(expires_at)));
        }
        out.views.push(LeaseView {
            expired,
            ..lease.view.clone()
        });
    }
    out
}

/// Uids of existing pods whose Lease of this set expired.
fn lapsed(input: &Input, leases: &[LeaseView]) -> BTreeSet<String> {
    let by_name = pods_by_name(input.pods);
    leases
        .iter()
        .filter(|l| l.expired)
        .filter_map(|l| {
            let pod = by_name.get(l.holder.as_deref()?)?;
            l.held_by(&pod.name, &pod.uid).then(|| pod.uid.clone())
        })
        .collect()
}

/// Every selected pod, plus every pod named as a holder (never eligible unless selected). An
/// unresponsive pod (here or before) gets nothing new.
fn pod_views(input: &Input, leases: &[LeaseView], lapsed: &BTreeSet<String>) -> Vec<PodView> {
    let holders: BTreeSet<&str> = leases.iter().filter_map(|l| l.holder.as_deref()).collect();
    input
        .pods
        .iter()
        .filter(|p| p.selected || holders.contains(p.name.as_str()))
        .map(|p| PodView {
            name: p.name.clone(),
            uid: p.uid.clone(),
            eligible: p.selected && p.eligible && !lapsed.contains(&p.uid) && !input.unresponsive.contains(p),
        })
        .collect()
}

fn pods_by_name(pods: &[PodFacts]) -> BTreeMap<&str, &PodFacts> {
    let mut map = BTreeMap::new();
    for p in pods {
        map.entry(p.name.as_str()).or_insert(p);
    }
    map
}

/// The spec's listeners with their last fencing tokens; with `keep_unknown`, also the listeners
/// of Leases the spec cannot name now.
fn listener_views(input: &Input, leases: &[LeaseView], memory: &Memory) -> Vec<ListenerView> {
    let mut views: Vec<ListenerView> = input
        .listeners
        .iter()
        .map(|l| ListenerView {
            id: l.id.clone(),
            suspended: l.suspended,
            last_transitions: memory.last_carried(&l.id),
        })
        .collect();
    if input.keep_unknown {
        for lease in leases {
            if !views.iter().any(|l| l.id == lease.listener) {
                views.push(ListenerView {
                    id: lease.listener.clone(),
                    suspended: false,
                    last_transitions: Some(lease.transitions),
                });
            }
        }
    }
    views
}

/// How `listener` comes to its new holder, from the Lease it has now (or, with its Lease gone,
/// from how its last holder was let go).
fn kind_of(input: &Input, leases: &[LeaseView], ended: &BTreeMap<String, (String, String)>, listener: &str) -> Kind {
    let Some(prior) = leases.iter().find(|l| l.listener == listener) else {
        return ended
            .get(listener)
            .map_or(Kind::Assigned, |(from, why)| Kind::Takeover {
                from: from.clone(),
                why: why.clone(),
            });
    };
    let Some(holder) = prior.holder.as_deref().filter(|h| !h.is_empty()) else {
        return Kind::Handover;
    };
    Kind::Takeover {
        from: holder.to_string(),
        why: why_expired(input, prior),
    }
}

/// Why the held Lease `lease`, judged expired, is no longer its holder's. One wording whether
/// the listener moves while the Lease is still there or after it went (collected with its pod):
/// how often, or when, the decision ran in between must not change what it says.
pub(super) fn why_expired(input: &Input, lease: &LeaseView) -> String {
    let holder = lease.holder.as_deref().unwrap_or_default();
    let gone = pods_by_name(input.pods)
        .get(holder)
        .is_none_or(|p| !lease.held_by(&p.name, &p.uid));
    let stopped = lease.holder_uid.as_ref().is_some_and(|u| input.stopped.contains(u));
    let secs = input
        .leases
        .iter()
        .find(|l| l.view.listener == lease.listener)
        .map_or(0, |l| l.duration.as_secs());
    if stopped {
        why_stopped(holder)
    } else if input.recover.is_some() && !gone {
        why_recovered(holder)
    } else if gone {
        format!("holder pod {holder} is gone and its Lease expired ({secs}s without renewal)")
    } else {
        format!("the Lease of holder pod {holder} expired ({secs}s without renewal)")
    }
}

/// Why a listener of holder pod `pod`, which the kubelet reported stopped, moved.
pub(super) fn why_stopped(pod: &str) -> String {
    format!("holder pod {pod} stopped (the kubelet reported its containers terminated)")
}

/// Why a listener of holder pod `pod`, not live at a recover, moved.
pub(super) fn why_recovered(pod: &str) -> String {
    format!("recovered from holder pod {pod}, which is not live")
}

mod confirm;
mod expected;
mod memory;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod repeat;
#[cfg(test)]
mod tests;
mod unresponsive;

pub use confirm::{confirmed, to_confirm};
pub use expected::Expectations;
pub use memory::Memory;
use memory::{remember_holders, restore, restored_view, Restored};
use unresponsive::silent;
pub use unresponsive::{Silent, Unresponsive};
