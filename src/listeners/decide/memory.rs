//! What the controller remembers of a set between reconciles (see the module doc of
//! [`decide`](super)): when it first saw each Lease as it is (expiry), the highest fencing token
//! of each listener, and each listener's last holder, which may still run it after its Lease is
//! gone; and what becomes of listeners whose Lease is missing (recreated for their holder, or held
//! until that holder must have stopped).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{pods_by_name, why_expired, why_recovered, why_stopped, Input, Kind, PodFacts, Write};
use crate::listeners::assigner::{LeaseView, Move};

/// What the controller remembers of one set between reconciles.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    /// Lease name → (holder record, when first seen as it is, its holder's uid).
    pub(super) observed: BTreeMap<String, (String, Instant, Option<String>)>,
    /// Listener → the highest fencing token seen or written.
    pub(super) tokens: BTreeMap<String, i32>,
    /// Listener → the last pod known to hold it, which may still run it.
    holders: BTreeMap<String, Holder>,
    /// The status's assignments have been read (once: they seed `holders`).
    seeded: bool,
    /// Listeners without a Lease whose last holder was let go (seen stopped, held long enough,
    /// recovered): that holder and why, for the Event of their next assignment.
    pub(super) ended: BTreeMap<String, (String, String)>,
    /// Listener → its highest token in `tokens`, reserved for an assignment whose conditional
    /// write the API server refused (or that was held back): no Lease ever carried it, so the
    /// next assignment takes it again instead of skipping it.
    unused: BTreeMap<String, i32>,
}

/// A pod that held a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    pod: String,
    /// Unknown when learnt from the status.
    uid: Option<String>,
    /// This controller assigned it then and has not seen the Lease since (its cache may lag).
    unseen_since: Option<Instant>,
    /// Its Lease's duration.
    duration: Duration,
    /// The Lease is gone while the holder may still run the listener and cannot be given it
    /// back (its pod is gone unconfirmed, or unresponsive): nobody gets the listener before
    /// then (one lease duration after the Lease was seen gone).
    hold_until: Option<Instant>,
}

impl Memory {
    /// A write of the last decision succeeded at `now`.
    pub fn written(&mut self, change: &Move, now: Instant) {
        if let Move::Assign {
            listener,
            transitions,
            pod,
            pod_uid,
            ..
        } = change
        {
            self.raise(listener, *transitions);
            self.unused.remove(listener);
            self.ended.remove(listener);
            let holder = Holder {
                pod: pod.clone(),
                uid: Some(pod_uid.clone()),
                unseen_since: Some(now),
                duration: self.holders.get(listener).map_or(Duration::ZERO, |h| h.duration),
                hold_until: None,
            };
            self.holders.insert(listener.clone(), holder);
        }
    }

    /// A write of the last decision was certainly not made: the API server refused it (409
    /// or 404 on a conditional write) or it was held back. An assignment's token, if it is
    /// still the highest, is given to the listener's next assignment (no Lease carries it).
    pub fn refused(&mut self, change: &Move) {
        if let Move::Assign {
            listener, transitions, ..
        } = change
        {
            if self.token(listener) == Some(*transitions) {
                self.unused.insert(listener.clone(), *transitions);
            }
        }
    }

    /// The highest fencing token known for `listener`.
    pub fn token(&self, listener: &str) -> Option<i32> {
        self.tokens.get(listener).copied()
    }

    /// The token `listener`'s next assignment continues above: the highest known, less a
    /// reserved one no Lease carried (see [`Memory::refused`]).
    pub(super) fn last_carried(&self, listener: &str) -> Option<i32> {
        let token = self.token(listener)?;
        match self.unused.get(listener) {
            Some(u) if *u == token => token.checked_sub(1).filter(|t| *t >= 0),
            _ => Some(token),
        }
    }

    pub(super) fn raise(&mut self, listener: &str, token: i32) {
        let t = self.tokens.entry(listener.to_string()).or_insert(token);
        if token > *t {
            *t = token;
            self.unused.remove(listener);
        }
    }

    /// A Lease of `listener` carries `token`: a reserved token at or below it was used after all.
    pub(super) fn carried(&mut self, listener: &str, token: i32) {
        if self.unused.get(listener).is_some_and(|u| *u <= token) {
            self.unused.remove(listener);
        }
    }
}

/// Learn who holds what: a live holder is remembered; a released or expired Lease ends the
/// memory (that pod no longer runs the listener). When a Lease is gone, its holder is kept while
/// it may still run the listener: for good if its pod exists and answers (the Lease is
/// recreated for it), else one lease duration from when the Lease was seen gone; a holder
/// reported stopped is forgotten at once.
pub(super) fn remember_holders(input: &Input, leases: &[LeaseView], memory: &mut Memory) {
    remember_leases(input, leases, memory);
    if !memory.seeded {
        memory.seeded = true;
        seed_from_status(input, leases, memory);
    }
    let by_name = pods_by_name(input.pods);
    let ended = &mut memory.ended;
    memory.holders.retain(|listener, h| {
        if leases.iter().any(|l| l.listener == *listener) {
            return true;
        }
        match still_holds(input, &by_name, h) {
            Ok(keep) => keep,
            Err(why) => {
                ended.insert(listener.clone(), (h.pod.clone(), why));
                false
            }
        }
    });
}

/// A live holder of a Lease is remembered; a released or expired Lease ends the memory (that
/// pod no longer runs the listener). An expired one is remembered as ended: if the Lease goes
/// (collected with its pod) before the listener moves, the move is still a takeover from it.
fn remember_leases(input: &Input, leases: &[LeaseView], memory: &mut Memory) {
    for lease in leases {
        memory.ended.remove(&lease.listener);
        match (&lease.holder, lease.expired) {
            (Some(pod), false) => {
                let duration = input
                    .leases
                    .iter()
                    .find(|l| l.view.listener == lease.listener)
                    .map_or(input.lease_duration, |l| l.duration);
                let holder = Holder {
                    pod: pod.clone(),
                    uid: lease.holder_uid.clone(),
                    unseen_since: None,
                    duration,
                    hold_until: None,
                };
                memory.holders.insert(lease.listener.clone(), holder);
            }
            (Some(pod), true) if !pod.is_empty() => {
                memory.holders.remove(&lease.listener);
                // Said as the takeover would say it with the Lease still there.
                memory
                    .ended
                    .insert(lease.listener.clone(), (pod.clone(), why_expired(input, lease)));
            }
            _ => {
                memory.holders.remove(&lease.listener);
            }
        }
    }
}

/// A fresh controller learns the holders of listeners without a Lease from the status: its
/// assignments, and for a listener with a token but no holder on record, an unknown holder held
/// one lease duration (it may still run where its Lease was before it went).
fn seed_from_status(input: &Input, leases: &[LeaseView], memory: &mut Memory) {
    for a in &input.status.assignments {
        if !leases.iter().any(|l| l.listener == a.listener) {
            let holder = Holder {
                pod: a.pod.clone(),
                uid: a.pod_uid.clone(),
                unseen_since: None,
                duration: input.lease_duration,
                hold_until: None,
            };
            memory.holders.entry(a.listener.clone()).or_insert(holder);
        }
    }
    for id in input.status.fencing_tokens.keys() {
        if !leases.iter().any(|l| l.listener == *id) && !memory.holders.contains_key(id) {
            let holder = Holder {
                pod: String::new(),
                uid: None,
                unseen_since: None,
                duration: input.lease_duration,
                hold_until: Some(input.now + input.lease_duration),
            };
            memory.holders.insert(id.clone(), holder);
        }
    }
}

/// Whether holder `h` of a listener whose Lease is gone is still remembered: for good while its
/// pod exists and answers, else until one lease duration after the Lease was seen gone (set on
/// `h` here). `Err(why)` once it is let go (reported stopped, recovered, or held long enough):
/// why, for the Event of the listener's next assignment.
fn still_holds(input: &Input, by_name: &BTreeMap<&str, &PodFacts>, h: &mut Holder) -> Result<bool, String> {
    // The holder's pod, if it exists: same name *and* uid (without the uid, a pod of that name
    // may be another one).
    let pod = by_name
        .get(h.pod.as_str())
        .filter(|p| h.uid.as_ref().is_some_and(|u| *u == p.uid));
    let stopped = h
        .uid
        .iter()
        .chain(pod.map(|p| &p.uid))
        .any(|u| input.stopped.contains(u));
    let who = &h.pod;
    if stopped {
        return Err(why_stopped(who));
    }
    // A recover is the operator's word that pods not live are not running anything.
    if input.recover.is_some_and(|live| !live.contains(&h.pod)) {
        return Err(why_recovered(who));
    }
    if pod.is_some_and(|p| !input.unresponsive.contains(p)) && h.hold_until.is_none() {
        return Ok(true);
    }
    let hold = h.duration.max(input.lease_duration);
    if input.now < *h.hold_until.get_or_insert(input.now + hold) {
        return Ok(true);
    }
    let state = if pod.is_some() { "does not renew" } else { "is gone" };
    Err(if who.is_empty() {
        format!("its Lease was gone and its last holder unknown for {}s", hold.as_secs())
    } else {
        format!(
            "holder pod {who} {state} and its Lease went {}s ago: its agent has stopped the listener",
            hold.as_secs()
        )
    })
}

/// What becomes of wanted listeners whose Lease is missing while their last holder may still
/// run them.
#[derive(Default)]
pub(super) struct Restored {
    /// Recreate the Lease for that pod.
    pub(super) writes: Vec<Write>,
    /// Listeners held for their last holder, nothing written: this controller just assigned
    /// them and has not seen the Lease yet (its cache may lag), or their holder cannot be given
    /// them back (see [`Holder::hold_until`]).
    pub(super) waiting: Vec<LeaseView>,
    /// When the first of `waiting` stops waiting.
    pub(super) wake: Option<Instant>,
}

/// Recreate the missing Leases of wanted listeners for their remembered holders, or hold them.
pub(super) fn restore(input: &Input, leases: &[LeaseView], memory: &Memory) -> Restored {
    let mut out = Restored::default();
    if input.deleting {
        return out;
    }
    let by_name = pods_by_name(input.pods);
    let missing = input
        .listeners
        .iter()
        .filter(|l| !l.suspended && !l.no_config)
        .filter(|l| !leases.iter().any(|lease| lease.listener == l.id));
    for l in missing {
        let Some(holder) = memory.holders.get(&l.id) else {
            continue;
        };
        let pod = by_name
            .get(holder.pod.as_str())
            .filter(|p| holder.hold_until.is_none() && holder.uid.as_ref().is_some_and(|u| *u == p.uid));
        let change = Move::Assign {
            listener: l.id.clone(),
            pod: holder.pod.clone(),
            pod_uid: pod.map_or_else(|| holder.uid.clone().unwrap_or_default(), |p| p.uid.clone()),
            from_resource_version: None,
            transitions: memory.last_carried(&l.id).map_or(0, |t| t.saturating_add(1)),
        };
        let until = match (pod, holder.hold_until) {
            (_, Some(until)) => Some(until),
            (Some(_), None) => holder.unseen_since.map(|t| t + input.lease_duration),
            (None, None) => None,
        };
        match until {
            Some(until) if input.now < until => {
                out.wake = Some(out.wake.map_or(until, |w| w.min(until)));
                // Shown with the token of the tenure that may still run (or that this controller
                // just created), not the next one: the status lists it, and a token the status
                // lists is never given again, so showing the next one would skip it.
                let current = memory.token(&l.id).unwrap_or(0);
                out.waiting.extend(restored_view(&change).map(|v| LeaseView {
                    transitions: current,
                    ..v
                }));
            }
            _ if pod.is_some() => out.writes.push(Write {
                change,
                kind: Some(Kind::Recreated),
            }),
            _ => {}
        }
    }
    out
}

/// The Lease a restoring write makes, as the assigner should count it.
pub(super) fn restored_view(change: &Move) -> Option<LeaseView> {
    let Move::Assign {
        listener,
        pod,
        pod_uid,
        transitions,
        ..
    } = change
    else {
        return None;
    };
    Some(LeaseView {
        listener: listener.clone(),
        holder: Some(pod.clone()),
        holder_uid: Some(pod_uid.clone()),
        expired: false,
        transitions: *transitions,
        resource_version: String::new(),
        release_requested: false,
        renewed: false,
    })
}
