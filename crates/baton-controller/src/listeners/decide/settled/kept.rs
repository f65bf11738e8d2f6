//! The settled split kept between passes. A pass that knows which Leases changed since the last
//! one ([`Delta`]) does not walk the set: the memory keeps, per Lease, whether it is *quiet* (as a
//! settled listener's Lease is, its holder pod aside: [`super::quiet`]) and the holder it counts
//! on, and per holder its quiet Leases, their tokens and how long their last acknowledgement stays
//! fresh. A pass then
//!
//! * makes the entries of the C Leases that changed again (O(C log N));
//! * judges each holder ([`super::holds`]: registered, renewing, selected, eligible, not stopped,
//!   not lapsed), O(pods): what is quiet on a holder that holds is settled;
//! * copies out the unsettled listeners and Leases: the Leases not quiet, those of holders that
//!   do not hold, and the listeners without a Lease of their own (O(U log U)).
//!
//! The memory learns each settled listener's token ([`Memory::settle`]) when it becomes settled:
//! when its Lease changed, or its holder holds again; a listener that stays settled taught it
//! already (the memory only raises tokens and forgets listeners the spec drops).
//!
//! What is kept is made anew from the whole set (what [`super::split_whole`] costs) whenever the
//! pass does not follow the last one it kept: the spec's listeners or the set of Leases changed
//! ([`Delta::spec`], [`Delta::shape`]), an update came in between ([`Delta::from`]), the set's
//! lease duration changed, or holders long gone pile up. In tests every kept split is checked
//! against the whole one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use fnv::FnvHashMap as HashMap;
use tokio::time::Instant;

use super::super::memory::Fingerprint;
use super::super::{Delta, Input, Memory, PodFacts};
use super::{by_key, holds, pairs, quiet, Split, Tallies};

/// What a pass kept of its split for the next (nothing before the first, or after a pass that
/// did not split).
#[derive(Clone, Debug, Default)]
pub struct Kept(Option<Box<State>>);

impl Kept {
    /// The next pass walks the set.
    pub(in crate::listeners::decide) fn forget(&mut self) {
        self.0 = None;
    }

    /// How many times the kept split was made from the whole set.
    #[cfg(test)]
    pub(in crate::listeners::decide) fn builds(&self) -> u32 {
        self.0.as_ref().map_or(0, |s| s.builds)
    }
}

#[derive(Clone, Debug)]
pub(super) struct State {
    /// The [`Delta`] numbers it is up to date with.
    spec: u64,
    shape: u64,
    at: u64,
    duration: Duration,
    listeners: usize,
    /// The spec's places in id order, and its fingerprint.
    order: Arc<[u32]>,
    fingerprint: u64,
    /// By Lease place: the spec place of its listener, where the spec names it once and this is
    /// its only Lease.
    pair: Vec<Option<u32>>,
    /// Spec places of the listeners without such a Lease (ascending): never settled.
    lone: Vec<u32>,
    /// By Lease place: where it counts while quiet.
    entry: Vec<Option<Entry>>,
    groups: Vec<Group>,
    /// Group places by holder uid.
    by_uid: HashMap<String, Vec<u32>>,
    /// Lease places not quiet.
    unquiet: BTreeSet<u32>,
    /// Made from the whole set this many times (what tests count).
    #[cfg_attr(not(test), allow(dead_code))]
    builds: u32,
}

/// A quiet Lease: its holder's group, its token, until when its holder record is fresh.
#[derive(Clone, Copy, Debug)]
struct Entry {
    group: u32,
    token: i32,
    until: Instant,
}

/// The quiet Leases of one holder (name and uid).
#[derive(Clone, Debug, Default)]
struct Group {
    name: String,
    uid: String,
    places: BTreeSet<u32>,
    /// Tokens and fresh-untils of `places`, counted.
    tokens: BTreeMap<i32, u32>,
    until: BTreeMap<Instant, u32>,
    /// Its Leases were settled in the last pass (the memory learnt their tokens).
    settled: bool,
}

fn count<K: Ord>(map: &mut BTreeMap<K, u32>, key: K, up: bool) {
    if up {
        *map.entry(key).or_default() += 1;
    } else if let std::collections::btree_map::Entry::Occupied(mut e) = map.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

/// [`super::split`] from what the memory kept and `delta`.
pub(in crate::listeners::decide) fn split<'a>(
    input: &Input<'a>,
    memory: &mut Memory,
    delta: &Delta,
) -> Option<Split<'a>> {
    #[cfg(test)]
    let before = memory.clone();
    let kept = std::mem::take(memory.kept_mut()).0;
    let builds = kept.as_ref().map_or(0, |s| s.builds);
    let followed = kept.filter(|s| s.follows(input, delta)).and_then(|mut s| {
        let applied = s.apply(input, delta.changed);
        applied.then_some(s)
    });
    let (mut state, changed) = match followed {
        Some(s) => (s, delta.changed),
        None => {
            let mut s = Box::new(State::build(input));
            s.builds = builds + 1;
            (s, &[][..])
        }
    };
    (state.spec, state.shape, state.at) = (delta.spec, delta.shape, delta.to);
    let out = state.split(input, memory, changed);
    *memory.kept_mut() = Kept(Some(state));
    #[cfg(test)]
    check(input, before, &out, memory);
    out
}

impl State {
    /// Whether this is the state `input` (with `delta`) follows.
    fn follows(&self, input: &Input, delta: &Delta) -> bool {
        self.spec == delta.spec
            && self.shape == delta.shape
            && self.at == delta.from
            && self.duration == input.lease_duration
            && self.listeners == input.listeners.len()
            && self.entry.len() == input.leases.len()
            && self.groups.len() <= 2 * input.pods.len() + 16
    }

    /// Made from the whole set.
    fn build(input: &Input) -> State {
        let spec = by_key(input.listeners, |w| w.id.as_str());
        let leased = by_key(input.leases, |f| f.view.listener.as_str());
        let mut s = State {
            spec: 0,
            shape: 0,
            at: 0,
            duration: input.lease_duration,
            listeners: input.listeners.len(),
            order: spec.iter().map(|&(_, i)| i as u32).collect(),
            fingerprint: 0,
            pair: vec![None; input.leases.len()],
            lone: Vec::new(),
            entry: vec![None; input.leases.len()],
            groups: Vec::new(),
            by_uid: HashMap::default(),
            unquiet: BTreeSet::new(),
            builds: 0,
        };
        let mut fingerprint = Fingerprint::default();
        for (&(id, i), pair) in spec.iter().zip(pairs(&spec, &leased)) {
            fingerprint.add(id);
            match pair.and_then(|place| s.pair.get_mut(place)) {
                Some(p) => *p = Some(i as u32),
                None => s.lone.push(i as u32),
            }
        }
        s.lone.sort_unstable();
        s.fingerprint = fingerprint.of(spec.len());
        for place in 0..input.leases.len() {
            let e = s.entry_of(input, place);
            s.set(place, e);
        }
        s
    }

    /// Make the entries of the Leases at `changed` again; `false` where they name other
    /// listeners than the kept pairing says (then the set is read whole).
    fn apply(&mut self, input: &Input, changed: &[usize]) -> bool {
        for &place in changed {
            let Some(f) = input.leases.get(place) else { return false };
            if let Some(Some(i)) = self.pair.get(place) {
                if input.listeners.get(*i as usize).is_none_or(|w| w.id != f.view.listener) {
                    return false;
                }
            }
            let e = self.entry_of(input, place);
            self.set(place, e);
        }
        true
    }

    /// Where the Lease at `place` counts, if it is quiet.
    fn entry_of(&mut self, input: &Input, place: usize) -> Option<Entry> {
        let i = (*self.pair.get(place)?)? as usize;
        let (w, f) = (input.listeners.get(i)?, input.leases.get(place)?);
        if !quiet(input, w, f) {
            return None;
        }
        let (name, uid) = (f.view.holder.as_deref()?, f.view.holder_uid.as_deref()?);
        Some(Entry {
            group: self.group(name, uid),
            token: f.view.transitions,
            until: f.observed + f.duration,
        })
    }

    /// The group of holder `name`, `uid` (made if new).
    fn group(&mut self, name: &str, uid: &str) -> u32 {
        let groups = &self.groups;
        if let Some(g) = self.by_uid.get(uid).and_then(|gs| {
            gs.iter()
                .find(|&&g| groups.get(g as usize).is_some_and(|g| g.name == name))
        }) {
            return *g;
        }
        let g = self.groups.len() as u32;
        self.groups.push(Group {
            name: name.to_string(),
            uid: uid.to_string(),
            ..Default::default()
        });
        self.by_uid.entry(uid.to_string()).or_default().push(g);
        g
    }

    /// The Lease at `place` counts as `e` now (`None`: not quiet).
    fn set(&mut self, place: usize, e: Option<Entry>) {
        let p = place as u32;
        let Some(slot) = self.entry.get_mut(place) else { return };
        let old = std::mem::replace(slot, e);
        match old.and_then(|o| Some((o, self.groups.get_mut(o.group as usize)?))) {
            Some((o, g)) => {
                g.places.remove(&p);
                count(&mut g.tokens, o.token, false);
                count(&mut g.until, o.until, false);
            }
            None => {
                self.unquiet.remove(&p);
            }
        }
        match e.and_then(|e| Some((e, self.groups.get_mut(e.group as usize)?))) {
            Some((e, g)) => {
                g.places.insert(p);
                count(&mut g.tokens, e.token, true);
                count(&mut g.until, e.until, true);
            }
            None => {
                self.unquiet.insert(p);
            }
        }
    }

    /// The split of `input`: each holder judged, the memory taught the newly settled listeners
    /// (all of a holder that holds again, and the `changed` Leases of the others).
    fn split<'a>(&mut self, input: &Input<'a>, memory: &mut Memory, changed: &[usize]) -> Option<Split<'a>> {
        let pods: HashMap<&str, &'a PodFacts> = input.pods.iter().map(|p| (p.uid.as_str(), p)).collect();
        let mut tallies = Tallies::default();
        let mut unsettled: Vec<u32> = self.unquiet.iter().copied().collect();
        let mut again = Vec::new();
        for g in self.groups.iter_mut().filter(|g| !g.places.is_empty()) {
            let pod = pods.get(g.uid.as_str()).filter(|p| p.name == g.name);
            let held = pod.and_then(|p| Some((*p, input.liveness.get(&p.uid)?)));
            let Some((p, _)) = held.filter(|(p, live)| holds(input, memory, p, live)) else {
                unsettled.extend(g.places.iter().copied());
                g.settled = false;
                continue;
            };
            if !g.settled {
                again.extend(g.places.iter().copied());
            }
            g.settled = true;
            *tallies.pods.entry(p.name.as_str()).or_default() += g.places.len();
            if g.until.last_key_value().is_some_and(|(u, _)| *u > input.now) {
                tallies.renewed.insert(p.uid.as_str());
            }
            tallies.count += g.places.len();
            tallies.highest = tallies.highest.max(g.tokens.last_key_value().map(|(t, _)| *t));
        }
        self.settle(
            input,
            memory,
            again.into_iter().chain(changed.iter().map(|&p| p as u32)),
        );
        for g in &mut self.groups {
            g.settled &= !g.places.is_empty();
        }
        if tallies.count.saturating_mul(4) < input.listeners.len() {
            return None;
        }
        unsettled.sort_unstable();
        let mut listeners: Vec<u32> = unsettled
            .iter()
            .filter_map(|&p| self.pair.get(p as usize).copied().flatten())
            .chain(self.lone.iter().copied())
            .collect();
        listeners.sort_unstable();
        Some(Split {
            listeners: copies(input.listeners, &listeners),
            leases: copies(input.leases, &unsettled),
            tallies,
            fingerprint: self.fingerprint,
            all: input.listeners,
            order: self.order.clone(),
        })
    }

    /// Teach the memory the tokens of the settled listeners among `places`.
    fn settle(&self, input: &Input, memory: &mut Memory, places: impl Iterator<Item = u32>) {
        for place in places {
            let Some(Some(e)) = self.entry.get(place as usize) else {
                continue;
            };
            if !self.groups.get(e.group as usize).is_some_and(|g| g.settled) {
                continue;
            }
            let Some(Some(i)) = self.pair.get(place as usize) else {
                continue;
            };
            if let Some(w) = input.listeners.get(*i as usize) {
                memory.settle(&w.id, e.token);
            }
        }
    }
}

/// Copies of the items of `all` at `places` (ascending).
fn copies<T: Clone>(all: &[T], places: &[u32]) -> Vec<T> {
    places.iter().filter_map(|&p| all.get(p as usize).cloned()).collect()
}

/// In tests: the kept split is the whole one, and teaches the memory the same.
#[cfg(test)]
fn check<'a>(input: &Input<'a>, mut before: Memory, kept: &Option<Split<'a>>, after: &Memory) {
    let whole = super::split_whole(input, &mut before);
    let view = |s: &Option<Split<'a>>| {
        s.as_ref().map(|s| {
            (
                s.listeners.clone(),
                s.leases.clone(),
                s.tallies
                    .pods
                    .iter()
                    .map(|(p, n)| (p.to_string(), *n))
                    .collect::<Vec<_>>(),
                s.tallies.renewed.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
                s.tallies.count,
                s.tallies.highest,
                s.fingerprint,
                s.order.clone(),
            )
        })
    };
    assert_eq!(view(kept), view(&whole), "the kept split differs from the whole one");
    assert_eq!(after, &before, "the kept split taught the memory otherwise");
}
