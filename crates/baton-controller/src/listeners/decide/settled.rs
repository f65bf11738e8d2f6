//! Settled listeners: the ones a pass need not decide one by one. A listener is settled when
//! its one Lease is adopted, not being deleted, of the set's duration, acknowledged by a holder
//! that exists, is selected, Ready and not draining, whose agent is registered, renews, is not
//! leaving and did not lapse here — and nothing asks it to move (no release request, no
//! successor). The full decision would keep such a listener where it is and write nothing about
//! it: all it takes from it is a count on its holder (the loads the assigner places and evens
//! out by, the status's running count), the highest token (the ceiling) and whether its holder
//! acknowledged something lately. So a pass sets those aside as [`Tallies`] and decides over the
//! rest: a drain or a takeover decides over the listeners that move, not over the set.
//!
//! Where the shell says what changed since the last pass ([`super::Delta`]), the split is made
//! from what the last pass kept ([`kept`]), at a cost that grows with the change, the pods and
//! the unsettled listeners. Else it walks the set ([`split_whole`]): the spec's listeners and the
//! Leases joined by id in order (no copies), and a look in the memory's highest token per
//! listener. Either way only the unsettled ones are copied out for the decision.
//!
//! The tallies cannot stand in for the listeners where the decision would pick among them one by
//! one: evening out that would move listeners, a `maxPerPod` over which a pod sheds, a holder
//! that turned out not to take listeners after all. There the pass is decided in full
//! ([`super::decide_full`]); so is a set mostly unsettled. The unit tests and the property tests
//! decide every pass both ways and find the same.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fnv::FnvHashMap as HashMap;

use super::judge::{holder, pods_by_name, Holder};
use super::memory::Fingerprint;
use super::{Input, LeaseFacts, LivenessFacts, Memory, PodFacts, Wanted};
use crate::listeners::assigner::PodView;

/// The settled listeners of a pass, as counts.
#[derive(Debug, Default)]
pub(super) struct Tallies<'a> {
    /// By holder pod name.
    pub(super) pods: BTreeMap<&'a str, usize>,
    /// Uids of holders whose settled Lease shows an acknowledgement (or renewal) seen less than
    /// its duration ago.
    pub(super) renewed: BTreeSet<&'a str>,
    /// How many.
    pub(super) count: usize,
    /// The highest fencing token among them.
    pub(super) highest: Option<i32>,
}

impl Tallies<'_> {
    /// Whether every pod holding settled listeners may take listeners (as `pods` says): else the
    /// decision would ask them to move, one by one.
    pub(super) fn holders_eligible(&self, pods: &[PodView]) -> bool {
        self.pods
            .keys()
            .all(|name| pods.iter().any(|p| p.name == *name && p.eligible))
    }
}

/// A pass over the unsettled listeners: the spec's listeners and the Leases to decide one by one,
/// the rest as tallies, and every listener the spec has.
pub(super) struct Split<'a> {
    pub(super) listeners: Vec<Wanted>,
    pub(super) leases: Vec<LeaseFacts>,
    pub(super) tallies: Tallies<'a>,
    /// A fingerprint of the spec's listeners (see [`super::memory::Forget`]).
    pub(super) fingerprint: u64,
    /// The spec's listeners, and their places in id order.
    all: &'a [Wanted],
    order: Arc<[u32]>,
}

impl<'a> Split<'a> {
    /// `input` with only the unsettled listeners and Leases.
    pub(super) fn input<'b>(&'b self, input: &Input<'b>) -> Input<'b> {
        Input {
            listeners: &self.listeners,
            leases: &self.leases,
            ..input.clone()
        }
    }

    /// Whether the spec has listener `id`.
    pub(super) fn wanted(&self, id: &str) -> bool {
        self.order
            .binary_search_by(|&i| self.all.get(i as usize).map_or("", |w| w.id.as_str()).cmp(id))
            .is_ok()
    }
}

/// `(key, place)` of each item, in key order (stable: of equal keys the first comes first). Items
/// usually come in that order already (the spec's listeners are resolved in id order; a
/// listener's Lease is named after it): then this is one walk, and the join below another.
pub(super) fn by_key<'a, T>(items: &'a [T], key: impl Fn(&'a T) -> &'a str) -> Vec<(&'a str, usize)> {
    let mut keyed: Vec<(&str, usize)> = items.iter().enumerate().map(|(i, t)| (key(t), i)).collect();
    if !keyed.is_sorted_by(|a, b| a.0 <= b.0) {
        keyed.sort_by(|a, b| a.0.cmp(b.0));
    }
    keyed
}

/// The spec's listeners joined with the Leases by id: for each spec place in id order, the place
/// of its one Lease where the spec names it once and it has exactly one (`None`: no such pairing;
/// the listener is never settled).
pub(super) fn pairs(spec: &[(&str, usize)], leased: &[(&str, usize)]) -> Vec<Option<usize>> {
    let mut out = Vec::with_capacity(spec.len());
    let mut j = 0;
    for (k, &(id, _)) in spec.iter().enumerate() {
        while leased.get(j).is_some_and(|l| l.0 < id) {
            j += 1;
        }
        let first = j;
        while leased.get(j).is_some_and(|l| l.0 == id) {
            j += 1;
        }
        let named_once = spec.get(k + 1).is_none_or(|next| next.0 != id) && (k == 0 || spec[k - 1].0 != id);
        out.push(leased.get(first).filter(|_| named_once && j == first + 1).map(|l| l.1));
    }
    out
}

/// Whether `w` and its one Lease `f` are as a settled listener's are, its holder's part aside:
/// adopted, not being deleted, of the set's duration, acknowledged by the pod its holder names
/// (name and uid), nothing asking it to move.
pub(super) fn quiet(input: &Input, w: &Wanted, f: &LeaseFacts) -> bool {
    let v = &f.view;
    !w.suspended
        && !w.no_config
        && !f.terminating
        && f.adopted
        && f.duration == input.lease_duration
        && v.renewed
        && !v.release_requested
        && !v.rebalancing
        && v.successor.is_none()
        && v.holder.as_deref().is_some_and(|h| !h.is_empty())
        && v.holder_uid.is_some()
}

/// Whether pod `p`, holding quiet Leases, keeps them settled: its agent is registered, renews,
/// is not leaving and did not lapse here (`live`: its liveness), and it is selected, eligible and
/// not stopped.
pub(super) fn holds(input: &Input, memory: &Memory, p: &PodFacts, live: &LivenessFacts) -> bool {
    let registration = live.lease.as_ref();
    let answering = registration.is_some_and(|l| l.registered && !l.fenced && !l.leaving)
        && input.now < live.observed.map_or(input.started, |o| o.max(input.started)) + input.lease_duration
        // A liveness Lease that promises renewals further apart than this set's lease: the full
        // pass keeps a timer for it.
        && live.wakes_after.is_none_or(|w| w <= input.lease_duration)
        && !live.silent(input.now, input.started, input.lease_duration);
    answering && p.selected && p.eligible && !input.stopped.contains(&p.uid) && !memory.lapsed(p)
}

/// Set the settled listeners of `input` aside; `None` where the pass is decided in full anyway (a
/// set being deleted, one that keeps the Leases of listeners it cannot name, a pending recover,
/// fewer than a quarter of its listeners settled).
/// The memory learns of each settled listener what the full pass would teach it.
///
/// With [`Input::delta`], from what the memory kept of the last pass and the Leases changed since
/// ([`kept`]): a cost that grows with the change and the unsettled listeners. Without, from the
/// whole set ([`split_whole`]).
pub(super) fn split<'a>(input: &Input<'a>, memory: &mut Memory) -> Option<Split<'a>> {
    if input.deleting || input.keep_unknown || input.recover.is_some() {
        memory.kept_mut().forget();
        return None;
    }
    match input.delta {
        Some(delta) => kept::split(input, memory, &delta),
        None => split_whole(input, memory),
    }
}

/// [`split`] from the whole set, walking every listener.
///
/// The spec's listeners and the Leases are joined by id in order, not looked up: a look in a
/// hashed table of 100,000 ids costs a cache miss or two, a walk in order almost none.
pub(super) fn split_whole<'a>(input: &Input<'a>, memory: &mut Memory) -> Option<Split<'a>> {
    if input.deleting || input.keep_unknown || input.recover.is_some() {
        return None;
    }
    let spec = by_key(input.listeners, |w| w.id.as_str());
    let leased = by_key(input.leases, |f| f.view.listener.as_str());
    let pods = pods_by_name(input);
    let liveness: HashMap<&str, &LivenessFacts> = input.liveness.iter().map(|(k, v)| (k.as_str(), v)).collect();
    // By holder name (hashed: pods are few): how many, and whether one of them was acknowledged
    // lately (then its uid).
    let mut by_pod: HashMap<&'a str, (usize, Option<&'a str>)> = HashMap::default();
    let mut tallies = Tallies::default();
    let (mut listener_settled, mut lease_settled) = (vec![false; spec.len()], vec![false; leased.len()]);
    let mut fingerprint = Fingerprint::default();
    for (&(id, i), pair) in spec.iter().zip(pairs(&spec, &leased)) {
        // Order aside: the same listeners give the same sum.
        fingerprint.add(id);
        let (Some(w), Some(place)) = (input.listeners.get(i), pair) else {
            continue;
        };
        let Some(f) = input.leases.get(place) else { continue };
        let Holder::Exists(p) = holder(&pods, &f.view) else {
            continue;
        };
        let Some(live) = liveness.get(p.uid.as_str()) else {
            continue;
        };
        if !quiet(input, w, f) || !holds(input, memory, p, live) {
            continue;
        }
        for s in [listener_settled.get_mut(i), lease_settled.get_mut(place)]
            .into_iter()
            .flatten()
        {
            *s = true;
        }
        let on = by_pod.entry(p.name.as_str()).or_default();
        on.0 += 1;
        if f.observed + f.duration > input.now {
            on.1 = Some(p.uid.as_str());
        }
        tallies.count += 1;
        tallies.highest = tallies.highest.max(Some(f.view.transitions));
        memory.settle(id, f.view.transitions);
    }
    if tallies.count.saturating_mul(4) < spec.len() {
        // Mostly unsettled (a set starting, a mass takeover): copying the unsettled facts out
        // would cost about what it saves.
        return None;
    }
    for (pod, (n, renewed)) in by_pod {
        tallies.pods.insert(pod, n);
        tallies.renewed.extend(renewed);
    }
    let order: Arc<[u32]> = spec.iter().map(|&(_, i)| i as u32).collect();
    Some(Split {
        listeners: unsettled(input.listeners, &listener_settled),
        leases: unsettled(input.leases, &lease_settled),
        tallies,
        fingerprint: fingerprint.of(spec.len()),
        all: input.listeners,
        order,
    })
}

/// Copies of the items of `all` not marked in `settled` (one mark per item, in order).
fn unsettled<T: Clone>(all: &[T], settled: &[bool]) -> Vec<T> {
    all.iter()
        .zip(settled)
        .filter(|(_, s)| !**s)
        .map(|(x, _)| x.clone())
        .collect()
}

pub(super) mod kept;

#[cfg(test)]
mod tests;
