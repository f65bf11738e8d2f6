//! The listener Leases by set, and which changes of them matter. Every change of a listener Lease
//! passes here (from the shared Lease watch) before it may wake its set:
//!
//! * each Lease's *holder record* (holder, renewal, acquisition, transitions) is remembered with
//!   the instant it was first seen as it is: that is what its expiry counts from;
//! * only a change a decision reads wakes the set: a new holder, an acknowledgement, a release
//!   or release request, a deletion, a missing finalizer. A renewal by an agent of the
//!   per-listener protocol changes the record only, and wakes nothing (the set looks again when
//!   something could expire, see `decide`);
//! * the set's Lease names and each holder pod's sets are indexed, so a reconcile reads its own
//!   Leases (not every Lease of the cluster) and a pod's liveness change wakes only the sets it
//!   holds listeners of;
//! * every change of a set's Lease is marked for the set until its next pass takes the marks
//!   ([`LeaseIndex::take_changes`]): a pass reads again only the Leases that changed, not the
//!   whole set.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::api::listenerset::lease::{self, owner_pod, CachedLease, LeaseFields};
use crate::api::listenerset::liveness::HOLDER_UID_LABEL;
use crate::api::listenerset::{LEASE_FINALIZER, LISTENERSET_LABEL, PROTOCOL_ANNOTATION};

/// (namespace, name).
type Key = (String, String);

/// (namespace, Lease name): the namespace's one copy (see [`Names`]), and the name's, which
/// `by_set` shares.
type LeaseKey = (Arc<str>, Arc<str>);

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// What a decision reads of the Lease.
    decision: u64,
    /// The holder record, and when it was first seen as it is.
    record: u64,
    observed: Instant,
}

/// One listener Lease as indexed.
#[derive(Debug)]
struct Indexed {
    set: Arc<str>,
    entry: Entry,
    /// The holder uid it is counted for in `by_holder`.
    holder: Option<Arc<str>>,
}

/// One copy of each namespace, set name and holder uid the index holds, shared by every Lease
/// that names it (a pod's uid by its hundreds of Leases) instead of a string of each per Lease.
/// Strings no entry uses any more are dropped once the copies have doubled since the last drop.
#[derive(Default)]
struct Names {
    kept: HashSet<Arc<str>>,
    /// How many were kept after the last drop.
    after_drop: usize,
}

impl Names {
    fn of(&mut self, s: &str) -> Arc<str> {
        if let Some(kept) = self.kept.get(s) {
            return kept.clone();
        }
        if self.kept.len() >= 2 * self.after_drop.max(64) {
            self.kept.retain(|k| Arc::strong_count(k) > 1);
            self.after_drop = self.kept.len();
        }
        let new: Arc<str> = Arc::from(s);
        self.kept.insert(new.clone());
        new
    }
}

#[derive(Default)]
struct Inner {
    /// The Leases of the watch's list in progress (a relist forgets what it does not show).
    listing: Option<BTreeSet<LeaseKey>>,
    /// (namespace, Lease name) → the Lease.
    leases: HashMap<LeaseKey, Indexed>,
    /// (namespace, set) → its Lease names.
    by_set: HashMap<Key, BTreeSet<Arc<str>>>,
    /// The namespaces, sets and holder uids named above.
    names: Names,
    /// (namespace, holder uid) → set → how many of its Leases that pod holds.
    by_holder: HashMap<Key, BTreeMap<String, usize>>,
    /// (namespace, set) → its Leases changed since its last pass took them.
    changed: HashMap<Key, Marks>,
    /// Counts the relists: a pass that last read the set in another one reads it whole (the
    /// store it read from was replaced).
    epoch: u64,
    /// (namespace, holder uid) → when it was last seen letting a Lease go (see
    /// [`LeaseIndex::let_go_at`]), while that may matter.
    let_go: HashMap<Key, Instant>,
    /// When the entries of `let_go` that no longer matter are dropped.
    let_go_prune: super::confirmations::PruneBound,
}

/// The Leases of one set changed since its last pass took them.
#[derive(Debug, Default)]
struct Marks {
    /// Too many to name: the pass reads the set whole.
    all: bool,
    names: BTreeSet<String>,
}

/// Past this many Leases marked (at most; a quarter of the set's Leases, at least 16), a set is
/// marked changed as a whole: its pass reads it whole, which is what many changes cost anyway,
/// and the marks of a set no pass takes (another controller's, by its selector) stay small.
const MARKS_MAX: usize = 4096;

impl Marks {
    /// Mark `name`, of a set of `size` Leases.
    fn mark(&mut self, name: &str, size: usize) {
        if self.all {
            return;
        }
        if self.names.len() >= (size / 4).clamp(16, MARKS_MAX) {
            self.all = true;
            self.names.clear();
        } else if !self.names.contains(name) {
            self.names.insert(name.to_string());
        }
    }
}

/// What of a set's Leases changed since its last pass ([`LeaseIndex::take_changes`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Changes {
    /// Read the set whole (first pass, a relist since, or too many changes).
    All { epoch: u64 },
    /// Read again only these Leases (sorted); the others are as the last pass read them.
    Some { epoch: u64, names: Vec<String> },
}

/// The index (shared by the watch and every reconcile), and where the sets it wakes go.
#[derive(Default)]
pub struct LeaseIndex {
    inner: Mutex<Inner>,
    wakes: Mutex<Option<futures::channel::mpsc::UnboundedSender<(String, String)>>>,
}

fn digest(parts: impl Hash) -> u64 {
    let mut h = fnv::FnvHasher::default();
    parts.hash(&mut h);
    h.finish()
}

/// The holder record: what only an assignment or the holder's agent changes.
fn record(l: &CachedLease) -> u64 {
    let spec = &l.spec;
    digest((
        spec.holder_identity.as_deref(),
        spec.renew_time.as_ref().map(|t| t.0.as_nanosecond()),
        spec.acquire_time.as_ref().map(|t| t.0.as_nanosecond()),
        spec.lease_transitions,
    ))
}

/// What a decision reads of a Lease (all but a renewal's new time).
fn decision(l: &CachedLease) -> u64 {
    let spec = &l.spec;
    digest((
        spec.holder_identity.as_deref(),
        owner_pod(l).map(|o| o.uid),
        spec.lease_transitions,
        spec.lease_duration_seconds,
        lease::renewed_since_assignment(l),
        lease::release_requested(l),
        lease::is_terminating(l),
        l.finalizers().iter().any(|f| f == LEASE_FINALIZER),
        l.label(HOLDER_UID_LABEL),
        l.annotation(PROTOCOL_ANNOTATION),
    ))
}

fn set_of(l: &CachedLease) -> Option<&str> {
    l.label(LISTENERSET_LABEL)
}

fn holder_uid(l: &CachedLease) -> Option<&str> {
    lease::Holder::of(l).and_then(|h| h.uid)
}

impl LeaseIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sets to wake, `(namespace, name)`, from now on (one subscriber: the ListenerSet
    /// controller; a new subscription replaces the last).
    pub fn wakes(&self) -> futures::channel::mpsc::UnboundedReceiver<(String, String)> {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        *self.wakes.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Wake set `set`, `(namespace, name)`, as a change of its Leases would.
    pub(super) fn wake_set(&self, set: (String, String)) {
        self.wake(Some(set));
    }

    fn wake(&self, set: Option<(String, String)>) {
        let Some(set) = set else { return };
        if let Some(tx) = self.wakes.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.unbounded_send(set);
        }
    }

    /// An event of the listener Lease watch, seen at `now` (after the Lease store applied it).
    pub fn apply(&self, ev: &kube::runtime::watcher::Event<Arc<CachedLease>>, now: Instant) {
        use kube::runtime::watcher::Event;
        match ev {
            Event::Apply(l) => self.wake(self.observe(l, false, now)),
            Event::Delete(l) => self.wake(self.observe(l, true, now)),
            Event::Init => self.lock().listing = Some(BTreeSet::new()),
            Event::InitApply(l) => {
                if let (Some(ns), Some(name)) = (l.metadata.namespace.as_deref(), l.metadata.name.as_deref()) {
                    let mut inner = self.lock();
                    let ns = inner.names.of(ns);
                    if let Some(listing) = inner.listing.as_mut() {
                        listing.insert((ns, Arc::from(name)));
                    }
                }
                self.wake(self.observe(l, false, now));
            }
            Event::InitDone => {
                let gone: Vec<(LeaseKey, Arc<str>)> = {
                    let mut inner = self.lock();
                    let Some(seen) = inner.listing.take() else { return };
                    inner
                        .leases
                        .iter()
                        .filter(|(k, _)| !seen.contains(*k))
                        .map(|(k, l)| (k.clone(), l.set.clone()))
                        .collect()
                };
                for ((ns, name), set) in gone {
                    let mut l = CachedLease::default();
                    l.metadata.namespace = Some(ns.to_string());
                    l.metadata.name = Some(name.to_string());
                    l.labels = [(LISTENERSET_LABEL, set)].into_iter().collect();
                    self.wake(self.observe(&l, true, now));
                }
                // The store now is the relist's: every set's next pass reads it whole.
                let mut inner = self.lock();
                inner.epoch += 1;
                inner.changed.clear();
            }
        }
    }

    /// A change of `lease` seen at `now` (`gone`: deleted). Returns the set to wake, if the
    /// change is one a decision reads.
    pub fn observe(&self, lease: &CachedLease, gone: bool, now: Instant) -> Option<(String, String)> {
        let ns = lease.metadata.namespace.as_deref()?;
        let name = lease.metadata.name.as_deref()?;
        let mut inner = self.lock();
        let set = set_of(lease).map(|s| inner.names.of(s));
        let key: LeaseKey = (inner.names.of(ns), Arc::from(name));
        let old = inner.leases.remove_entry(&key);
        // The name's one copy, the key's and the set's.
        let (key, old) = match old {
            Some((k, o)) => (k, Some(o)),
            None => (key, None),
        };
        if let Some(old) = old.as_ref().filter(|o| set.as_ref() != Some(&o.set)) {
            Self::mark(&mut inner, ns, &old.set, name);
        }
        if let Some(set) = &set {
            Self::mark(&mut inner, ns, set, name);
        }
        if let Some(old) = &old {
            if let Some(names) = inner.by_set.get_mut(&(ns.to_string(), old.set.to_string())) {
                names.remove(name);
            }
        }
        let (set, mut holder) = match (gone, set) {
            (false, Some(set)) => (set, old.as_ref().and_then(|o| o.holder.clone())),
            (_, set) => {
                if let Some(old) = &old {
                    inner.unhold(ns, old);
                    inner.let_go(ns, old.holder.as_deref(), None, now);
                }
                return old.map(|o| o.set).or(set).map(|s| (ns.to_string(), s.to_string()));
            }
        };
        let (d, r) = (decision(lease), record(lease));
        let entry = match old.as_ref().map(|o| o.entry) {
            Some(e) if e.record == r => Entry { decision: d, ..e },
            _ => Entry {
                decision: d,
                record: r,
                observed: now,
            },
        };
        let relevant = old.as_ref().is_none_or(|o| o.entry.decision != d);
        if relevant {
            if let Some(old) = &old {
                inner.unhold(ns, old);
            }
            holder = holder_uid(lease).map(|uid| inner.names.of(uid));
            if let Some(uid) = &holder {
                inner.hold(ns, uid, &set);
            }
            if let Some(old) = &old {
                inner.let_go(ns, old.holder.as_deref(), holder.as_deref(), now);
            }
        }
        let names = inner.by_set.entry((ns.to_string(), set.to_string())).or_default();
        names.insert(key.1.clone());
        inner.leases.insert(
            key,
            Indexed {
                set: set.clone(),
                entry,
                holder,
            },
        );
        relevant.then(|| (ns.to_string(), set.to_string()))
    }

    /// When the holder record of `lease` was first seen as it is; `None` when the watch has not
    /// shown this record (a write of ours it has not delivered yet).
    pub fn observed(&self, lease: &CachedLease) -> Option<Instant> {
        let key: LeaseKey = (
            Arc::from(lease.metadata.namespace.as_deref()?),
            Arc::from(lease.metadata.name.as_deref()?),
        );
        let r = record(lease);
        self.lock()
            .leases
            .get(&key)
            .filter(|l| l.entry.record == r)
            .map(|l| l.entry.observed)
    }

    /// When the pod of uid `uid` in `ns` was last seen letting a listener Lease go (it held it,
    /// and then another or no pod did, or the Lease was deleted), if within
    /// [`KEPT`](super::confirmations::KEPT) or so: answers about the pod asked before may be
    /// stale (see [`super::confirmations`]).
    pub fn let_go_at(&self, ns: &str, uid: &str) -> Option<Instant> {
        self.lock().let_go.get(&(ns.to_string(), uid.to_string())).copied()
    }

    /// The names of set `set`'s Leases.
    pub fn leases_of(&self, ns: &str, set: &str) -> Vec<String> {
        self.lock()
            .by_set
            .get(&(ns.to_string(), set.to_string()))
            .map(|n| n.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default()
    }

    /// What of set `set`'s Leases changed since its last pass, which read them in relist `since`
    /// (`None`: it read nothing it kept); the marks are taken. The store shows at least what the
    /// marks name: the index follows the store.
    pub(super) fn take_changes(&self, ns: &str, set: &str, since: Option<u64>) -> Changes {
        let mut inner = self.lock();
        let epoch = inner.epoch;
        let marks = inner.changed.remove(&(ns.to_string(), set.to_string()));
        match (since == Some(epoch), marks) {
            (true, None) => Changes::Some {
                epoch,
                names: Vec::new(),
            },
            (true, Some(m)) if !m.all => Changes::Some {
                epoch,
                names: m.names.into_iter().collect(),
            },
            _ => Changes::All { epoch },
        }
    }

    /// Mark Lease `name` of set `set` in `ns` changed.
    fn mark(inner: &mut Inner, ns: &str, set: &str, name: &str) {
        let key = (ns.to_string(), set.to_string());
        let size = inner.by_set.get(&key).map_or(0, BTreeSet::len);
        inner.changed.entry(key).or_default().mark(name, size);
    }

    /// The sets with a Lease held by the pod of uid `uid` in `ns`.
    pub fn sets_held_by(&self, ns: &str, uid: &str) -> Vec<String> {
        self.lock()
            .by_holder
            .get(&(ns.to_string(), uid.to_string()))
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the pod of uid `uid` in `ns` holds any listener Lease.
    pub fn holds_any(&self, ns: &str, uid: &str) -> bool {
        self.lock()
            .by_holder
            .get(&(ns.to_string(), uid.to_string()))
            .is_some_and(|m| !m.is_empty())
    }

    /// Forget everything about set `set` (deleted).
    pub fn forget_set(&self, ns: &str, set: &str) {
        let mut inner = self.lock();
        inner.changed.remove(&(ns.to_string(), set.to_string()));
        if let Some(names) = inner.by_set.remove(&(ns.to_string(), set.to_string())) {
            for n in names {
                if let Some(old) = inner.leases.remove(&(Arc::from(ns), n)) {
                    inner.unhold(ns, &old);
                }
            }
        }
    }
}

impl Inner {
    /// A Lease held by `old` (uid) is now held by `new` (or by none, or gone) since `now`.
    fn let_go(&mut self, ns: &str, old: Option<&str>, new: Option<&str>, now: Instant) {
        let Some(old) = old.filter(|o| new != Some(*o)) else {
            return;
        };
        let kept = super::confirmations::KEPT;
        self.let_go_prune
            .retain(&mut self.let_go, |_, t| now.saturating_duration_since(*t) < kept);
        self.let_go.insert((ns.to_string(), old.to_string()), now);
    }

    /// A Lease of `set` is held by the pod of uid `uid`: count it.
    fn hold(&mut self, ns: &str, uid: &str, set: &str) {
        *self
            .by_holder
            .entry((ns.to_string(), uid.to_string()))
            .or_default()
            .entry(set.to_string())
            .or_default() += 1;
    }

    /// The Lease `old` no longer counts for the pod it was counted for.
    fn unhold(&mut self, ns: &str, old: &Indexed) {
        let Some(uid) = &old.holder else { return };
        let key = (ns.to_string(), uid.to_string());
        if let Some(sets) = self.by_holder.get_mut(&key) {
            if let Some(n) = sets.get_mut(&*old.set) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    sets.remove(&*old.set);
                }
            }
            if sets.is_empty() {
                self.by_holder.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests;
