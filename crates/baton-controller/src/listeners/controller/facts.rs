//! A set's listener Leases as its decisions read them, kept between passes: a Lease whose
//! resourceVersion did not change keeps the facts made from it (its view, when its holder record
//! was first seen, its duration, its marks), so a pass makes facts only for the Leases that
//! changed since the last one. What a Lease's facts hold is fixed by its resourceVersion, the
//! set it belongs to and the set's default duration; only how long its holder has held it moves
//! with the clock, and is worked out anew each pass.
//!
//! Costs, for a set of N Leases of which C changed since its last pass: a pass reads the C
//! changed Leases from the cache (the Lease index marks them, [`super::index::LeaseIndex::take_changes`])
//! and makes C facts in place, each found by halving; only when a Lease came or went are the
//! facts merged anew (O(N)), and a first pass or one after a relist reads the set whole and
//! compares N resourceVersions. The listener lookup is made again only when a Lease came, went
//! or names another listener; the handover gap metric looks at the C changed Leases only; each
//! holder's time held is worked out for the C changed Leases and those held less than the set's
//! `minResidence` (for all N without a residence set, or when it grows). Kept: one
//! [`LeaseFacts`] and one pointer per Lease (a few hundred bytes each, mostly the strings the
//! facts carry).
//!
//! Each update tells the decision what it changed ([`SetLeases::delta`]): the places of the
//! facts it made, numbered so that a decision can tell whether it saw the update before
//! (`from`), and the Leases' shape (which Leases, in what order, of which listeners), numbered
//! anew whenever a Lease comes, goes or names another listener, or the set is read whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::context::SetKey;
use crate::api::listenerset::lease::{CachedLease, LeaseFields};
use crate::api::listenerset::HANDED_OVER_FROM_ANNOTATION;
use crate::listeners::decide::{Delta, LeaseFacts};

/// Facts made from one Lease, and whether they may be kept while its resourceVersion stays
/// (`false`: they count from this pass's instant because the watch has not shown the Lease yet).
pub(super) type Made = (LeaseFacts, bool);

/// What the facts of a set were made for: a set of another uid (deleted and made again) or
/// another default duration makes every fact anew.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Stamp {
    pub uid: String,
    pub default_duration: i32,
}

/// A set's listener Leases (those that are the set's and name a listener), their facts, and the
/// Lease of each listener.
#[derive(Default)]
pub(super) struct SetLeases {
    stamp: Stamp,
    /// In the order of the Leases read (by name).
    facts: Vec<LeaseFacts>,
    objects: Vec<Arc<CachedLease>>,
    keep: Vec<bool>,
    /// Places in `facts` by listener id (stable: of one listener's Leases, the last read is
    /// last), searched by halving: a place per Lease, no copy of its id.
    by_listener: Vec<u32>,
    /// How many listeners have a Lease.
    listeners: usize,
    /// The handovers their holders' agents wrote that the last update found.
    handed: Vec<Handed>,
    /// Holder uid → how many of the facts name it.
    holders: BTreeMap<String, u32>,
    /// The relist of the Lease index the facts are up to date with (`None`: not read yet).
    epoch: Option<u64>,
    /// Numbers ([`number`]) naming the Leases' shape (which Leases, in what order, of which
    /// listeners) and the last update and the one before; the places the last update made.
    shape: u64,
    at: u64,
    before: u64,
    made: Vec<usize>,
    /// What evening out reads of the time held: whether a holder held its Lease less than
    /// `residence`. Places whose time held was under it when last worked out (`young`) are
    /// worked out again each update; the others' only grows past it (`young_for`: the residence
    /// the list was made for).
    residence: Option<Duration>,
    young: Vec<u32>,
    young_for: Duration,
}

/// A number no other call in this process returns: names a state of the facts or of a set's
/// resolved listeners ([`Delta`]).
pub(super) fn number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A Lease read again: its name and what the cache (with the writes it has not shown) holds
/// now (`None`: gone).
pub(super) type Reread = (String, Option<Arc<CachedLease>>);

/// A handover the holder's agent wrote (its release request named the successor): seen as a
/// Lease that carries [`HANDED_OVER_FROM_ANNOTATION`] under a tenure (holder, token) other than
/// the one the set's last pass saw. (A Lease first seen by this controller is not reported: it
/// may have been handed over long before.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Handed {
    pub listener: String,
    pub from: String,
    pub to: String,
    pub token: i32,
    /// Seen already acknowledged: from the handover to the acknowledgement as the Lease's own
    /// times record them (`renewTime` − `acquireTime`), the gap the controller did not see begin.
    pub acknowledged_in: Option<Duration>,
}

impl Handed {
    /// The handover that made `now` (of Lease `lease`) from `before`, if an agent wrote one.
    fn between(before: &LeaseFacts, now: &LeaseFacts, lease: &CachedLease) -> Option<Handed> {
        let from = lease.annotation(HANDED_OVER_FROM_ANNOTATION)?;
        let (was, is) = (&before.view, &now.view);
        let to = is.holder.as_ref()?;
        let new_tenure = (was.holder.as_ref(), was.transitions) != (Some(to), is.transitions);
        let acknowledged_in = match (lease.acquire_time(), lease.renew_time()) {
            (Some(a), Some(r)) if is.renewed => Duration::try_from(r.0.duration_since(a.0)).ok(),
            _ => None,
        };
        new_tenure.then(|| Handed {
            listener: is.listener.clone(),
            from: from.to_string(),
            to: to.clone(),
            token: is.transitions,
            acknowledged_in,
        })
    }
}

/// `v` without the elements at `places` (ascending).
fn drop_places<T>(v: &mut Vec<T>, places: &[usize]) {
    let mut gone = places.iter().copied().peekable();
    let mut i = 0;
    v.retain(|_| {
        let keep = gone.next_if_eq(&i).is_none();
        i += 1;
        keep
    });
}

/// Count `uid` in `holders` once more (`up`) or once less.
fn count(holders: &mut BTreeMap<String, u32>, uid: Option<&str>, up: bool) {
    let Some(uid) = uid else { return };
    if up {
        *holders.entry(uid.to_string()).or_default() += 1;
    } else if let Some(n) = holders.get_mut(uid) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            holders.remove(uid);
        }
    }
}

fn same_version(a: &Arc<CachedLease>, b: &Arc<CachedLease>) -> bool {
    Arc::ptr_eq(a, b)
        || a.metadata
            .resource_version
            .as_deref()
            .is_some_and(|v| b.metadata.resource_version.as_deref() == Some(v))
}

impl SetLeases {
    /// Bring the facts up to `leases` (the set's Leases as read now, by name): keep those of an
    /// unchanged Lease, `make` the others, and work out each holder's time held with `held_for`.
    /// Returns the Leases whose facts were made (every one on the first pass).
    pub(super) fn update(
        &mut self,
        stamp: Stamp,
        leases: Vec<Arc<CachedLease>>,
        mut make: impl FnMut(&CachedLease) -> Option<Made>,
        held_for: impl Fn(&CachedLease) -> Option<Duration>,
    ) -> Vec<Arc<CachedLease>> {
        if stamp != self.stamp {
            *self = SetLeases {
                stamp,
                residence: self.residence,
                ..Default::default()
            };
        }
        (self.before, self.at, self.shape) = (self.at, number(), number());
        self.made.clear();
        // Sized to the Leases read: a pushed-to vector would keep up to twice that.
        let facts = std::mem::replace(&mut self.facts, Vec::with_capacity(leases.len()));
        let objects = std::mem::replace(&mut self.objects, Vec::with_capacity(leases.len()));
        let keep = std::mem::replace(&mut self.keep, Vec::with_capacity(leases.len()));
        let mut old = facts.into_iter().zip(objects).zip(keep).peekable();
        let mut reshaped = false;
        let mut changed = Vec::new();
        self.handed.clear();
        for lease in leases {
            let name = lease.metadata.name.as_deref().unwrap_or_default();
            // Leases read last time and gone now.
            while old.next_if(|((f, _), _)| f.name.as_str() < name).is_some() {
                reshaped = true;
            }
            let kept = old.next_if(|((f, o), k)| *k && f.name == name && same_version(o, &lease));
            let made = match kept {
                Some(((f, _), k)) => Some((f, k)),
                None => {
                    let before = old.next_if(|((f, _), _)| f.name == name);
                    let made = make(&lease);
                    let was = before.as_ref().map(|((f, _), _)| f.view.listener.as_str());
                    reshaped |= was != made.as_ref().map(|(f, _)| f.view.listener.as_str());
                    if let (Some(((old, _), _)), Some((new, _))) = (&before, &made) {
                        self.handed.extend(Handed::between(old, new, &lease));
                    }
                    if made.is_some() {
                        changed.push(lease.clone());
                    }
                    made
                }
            };
            let Some((facts, keep)) = made else { continue };
            self.facts.push(facts);
            self.objects.push(lease);
            self.keep.push(keep);
        }
        reshaped |= old.next().is_some();
        if reshaped {
            self.index_listeners();
        }
        self.holders.clear();
        for f in &self.facts {
            if let Some(uid) = &f.view.holder_uid {
                *self.holders.entry(uid.clone()).or_default() += 1;
            }
        }
        self.refresh_held(held_for, true);
        changed
    }

    /// Bring the facts up to `reread` (sorted by name, no name twice), the set's other Leases
    /// unchanged since the last update: as [`Self::update`] with every Lease read, but a
    /// changed Lease's facts are made in place, and only a Lease that comes or goes merges the
    /// facts anew. Returns the Leases whose facts were made.
    pub(super) fn update_some(
        &mut self,
        reread: Vec<Reread>,
        mut make: impl FnMut(&CachedLease) -> Option<Made>,
        held_for: impl Fn(&CachedLease) -> Option<Duration>,
    ) -> Vec<Arc<CachedLease>> {
        let mut places = Vec::with_capacity(reread.len());
        for (name, lease) in &reread {
            match (self.place_of_name(name), lease) {
                (Ok(place), Some(_)) => places.push(Some(place)),
                (Err(_), None) => places.push(None),
                // A Lease comes or goes.
                _ => return self.merge(reread, make, held_for),
            }
        }
        self.handed.clear();
        (self.before, self.at) = (self.at, number());
        self.made.clear();
        let (mut changed, mut gone, mut reshaped) = (Vec::new(), Vec::new(), false);
        for ((_, lease), place) in reread.into_iter().zip(places) {
            let (Some(lease), Some(place)) = (lease, place) else {
                continue;
            };
            let (Some(before), Some(object), Some(keep)) = (
                self.facts.get_mut(place),
                self.objects.get_mut(place),
                self.keep.get_mut(place),
            ) else {
                continue;
            };
            if *keep && same_version(object, &lease) {
                continue;
            }
            let Some((facts, kept)) = make(&lease) else {
                gone.push(place);
                continue;
            };
            reshaped |= before.view.listener != facts.view.listener;
            self.handed.extend(Handed::between(before, &facts, &lease));
            count(&mut self.holders, before.view.holder_uid.as_deref(), false);
            count(&mut self.holders, facts.view.holder_uid.as_deref(), true);
            changed.push(lease.clone());
            self.made.push(place);
            (*before, *object, *keep) = (facts, lease, kept);
        }
        if !gone.is_empty() {
            self.remove(&gone);
            reshaped = true;
        }
        self.made.sort_unstable();
        self.refresh_held(held_for, reshaped);
        if reshaped {
            self.index_listeners();
            self.shape = number();
        }
        changed
    }

    /// Evening out moves only listeners held at least `residence` (`None`: every time held is
    /// read): the time held of a Lease past it need not be worked out again.
    pub(super) fn set_residence(&mut self, residence: Duration) {
        self.residence = Some(residence);
    }

    /// Work out the holders' time held where it can matter: for every Lease (`all`, or a longer
    /// residence than the young list was made for), else for the facts made now and the young.
    fn refresh_held(&mut self, held_for: impl Fn(&CachedLease) -> Option<Duration>, all: bool) {
        let residence = self.residence.unwrap_or(Duration::MAX);
        let places: Vec<u32> = if all || residence > self.young_for || self.residence.is_none() {
            (0..self.facts.len()).filter_map(|i| u32::try_from(i).ok()).collect()
        } else {
            let mut p = std::mem::take(&mut self.young);
            p.extend(self.made.iter().filter_map(|&i| u32::try_from(i).ok()));
            p.sort_unstable();
            p.dedup();
            p
        };
        self.young.clear();
        for place in places {
            let (Some(f), Some(o)) = (self.facts.get_mut(place as usize), self.objects.get(place as usize)) else {
                continue;
            };
            f.view.held_for = held_for(o);
            if f.view.held_for.is_some_and(|h| h < residence) {
                self.young.push(place);
            }
        }
        self.young_for = residence;
    }

    /// A Lease came or went: the Leases last read with `reread` merged in, updated whole.
    fn merge(
        &mut self,
        reread: Vec<Reread>,
        make: impl FnMut(&CachedLease) -> Option<Made>,
        held_for: impl Fn(&CachedLease) -> Option<Duration>,
    ) -> Vec<Arc<CachedLease>> {
        let mut leases = Vec::with_capacity(self.objects.len() + reread.len());
        let mut reread = reread.into_iter().peekable();
        for (f, o) in self.facts.iter().zip(&self.objects) {
            while let Some((_, lease)) = reread.next_if(|(n, _)| n.as_str() < f.name.as_str()) {
                leases.extend(lease);
            }
            match reread.next_if(|(n, _)| *n == f.name) {
                Some((_, lease)) => leases.extend(lease),
                None => leases.push(o.clone()),
            }
        }
        leases.extend(reread.flat_map(|(_, lease)| lease));
        self.update(self.stamp.clone(), leases, make, held_for)
    }

    /// Take the facts at `places` (ascending) out.
    fn remove(&mut self, places: &[usize]) {
        for &place in places {
            if let Some(f) = self.facts.get(place) {
                count(&mut self.holders, f.view.holder_uid.as_deref(), false);
            }
        }
        drop_places(&mut self.facts, places);
        drop_places(&mut self.objects, places);
        drop_places(&mut self.keep, places);
    }

    /// The place of Lease `name` in the facts, or where it would go.
    fn place_of_name(&self, name: &str) -> Result<usize, usize> {
        self.facts.binary_search_by(|f| f.name.as_str().cmp(name))
    }

    /// The names of the Leases whose facts count from the pass that made them (the watch had
    /// not shown them): each pass makes them again.
    pub(super) fn unkept(&self) -> impl Iterator<Item = &str> {
        self.facts
            .iter()
            .zip(&self.keep)
            .filter(|(_, k)| !**k)
            .map(|(f, _)| f.name.as_str())
    }

    /// The uids of the pods that hold the Leases.
    pub(super) fn holders(&self) -> impl Iterator<Item = &str> {
        self.holders.keys().map(String::as_str)
    }

    /// The relist of the Lease index the facts are up to date with.
    pub(super) fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    pub(super) fn set_epoch(&mut self, epoch: u64) {
        self.epoch = Some(epoch);
    }

    /// What changed in the facts with the last update, for a decision over them whose spec's
    /// listeners are numbered `spec`.
    pub(super) fn delta(&self, spec: u64) -> Delta<'_> {
        Delta {
            spec,
            shape: self.shape,
            from: self.before,
            to: self.at,
            changed: &self.made,
        }
    }

    /// What the facts were made for.
    pub(super) fn stamp(&self) -> &Stamp {
        &self.stamp
    }

    /// Sort the places of the facts by listener id, and count the listeners.
    fn index_listeners(&mut self) {
        let facts = &self.facts;
        let mut order: Vec<u32> = (0..facts.len()).filter_map(|i| u32::try_from(i).ok()).collect();
        order.sort_by(|a, b| Self::id(facts, *a).cmp(Self::id(facts, *b)));
        order.shrink_to_fit();
        self.listeners = order
            .windows(2)
            .filter(|w| Self::id(facts, w[0]) != Self::id(facts, w[1]))
            .count()
            + usize::from(!order.is_empty());
        self.by_listener = order;
    }

    fn id(facts: &[LeaseFacts], place: u32) -> &str {
        facts.get(place as usize).map_or("", |f| f.view.listener.as_str())
    }

    /// The place in `facts` of the last Lease read of `listener`.
    fn place(&self, listener: &str) -> Option<usize> {
        let after = self
            .by_listener
            .partition_point(|p| Self::id(&self.facts, *p) <= listener);
        let place = *self.by_listener.get(after.checked_sub(1)?)?;
        (Self::id(&self.facts, place) == listener).then_some(place as usize)
    }

    /// The handovers agents wrote that the last update found.
    pub(super) fn handed(&self) -> &[Handed] {
        &self.handed
    }

    /// The facts, in the order of the Leases read.
    pub(super) fn facts(&self) -> &[LeaseFacts] {
        &self.facts
    }

    /// The Lease of `listener` read last.
    pub(super) fn get(&self, listener: &str) -> Option<&Arc<CachedLease>> {
        self.place(listener).and_then(|i| self.objects.get(i))
    }

    pub(super) fn contains_key(&self, listener: &str) -> bool {
        self.place(listener).is_some()
    }

    /// How many listeners have a Lease.
    pub(super) fn len(&self) -> usize {
        self.listeners
    }

    pub(super) fn is_empty(&self) -> bool {
        self.listeners == 0
    }
}

/// Every set's kept Leases. A pass takes its set's out and gives them back when done (the
/// controller never reconciles one set twice at once; a pass that fails gives them back too,
/// as they hold nothing a failure makes wrong).
#[derive(Default)]
pub(super) struct LeaseFactsCache(Mutex<HashMap<SetKey, SetLeases>>);

impl LeaseFactsCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SetKey, SetLeases>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set `key`'s kept Leases (empty if none are kept), until the returned guard is dropped.
    pub(super) fn take(self: &Arc<Self>, key: SetKey) -> Taken {
        let leases = self.lock().remove(&key).unwrap_or_default();
        Taken {
            cache: self.clone(),
            key,
            leases,
        }
    }

    /// Forget a deleted set.
    pub(super) fn forget(&self, key: &SetKey) {
        self.lock().remove(key);
    }

    #[cfg(test)]
    pub(super) fn kept(&self, key: &SetKey) -> Option<usize> {
        self.lock().get(key).map(|l| l.facts.len())
    }
}

/// A set's Leases, taken from the cache for one pass.
pub(super) struct Taken {
    cache: Arc<LeaseFactsCache>,
    key: SetKey,
    leases: SetLeases,
}

impl std::ops::Deref for Taken {
    type Target = SetLeases;
    fn deref(&self) -> &SetLeases {
        &self.leases
    }
}

impl std::ops::DerefMut for Taken {
    fn deref_mut(&mut self) -> &mut SetLeases {
        &mut self.leases
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        // A set without Leases keeps nothing (a set that finished its deletion leaves no entry).
        if self.leases.facts.is_empty() {
            return;
        }
        let leases = std::mem::take(&mut self.leases);
        self.cache.lock().insert(std::mem::take(&mut self.key), leases);
    }
}

#[cfg(test)]
mod tests;
