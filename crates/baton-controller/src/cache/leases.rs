//! The listener Lease cache: each Lease's [`CachedLease`] by namespace and name.
//!
//! kube's reflector store keys every object by an `ObjectRef` of four strings (name, namespace,
//! resourceVersion, uid) held beside the object, which holds them too: a fifth of what a
//! listener Lease costs the controller, for each of tens of thousands. This store keys a Lease
//! by its name within its namespace and applies a watch's events as kube's reflector does: a
//! relist is gathered apart and replaces the store whole once complete, so a reader never sees
//! half of one. The watch decodes [`WatchedLease`]s (kube's watcher reads their `ObjectMeta`);
//! [`taken_in`] keeps their [`CachedLease`] alone.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::runtime::watcher::Event;

use crate::api::listenerset::lease::{CachedLease, WatchedLease};

/// namespace → name → Lease.
type Map = HashMap<String, HashMap<Box<str>, Arc<CachedLease>>>;

/// The readers' side: clone it freely.
#[derive(Clone, Default)]
pub struct LeaseStore {
    map: Arc<RwLock<Map>>,
}

/// The watch's side: applies its events to the [`LeaseStore`] it was made with.
pub struct LeaseWriter {
    store: LeaseStore,
    /// The relist in progress.
    listing: Option<Map>,
}

/// An empty store and its writer.
pub fn store() -> (LeaseStore, LeaseWriter) {
    let store = LeaseStore::default();
    (store.clone(), LeaseWriter { store, listing: None })
}

/// A watch event of a [`WatchedLease`] as the cache takes it: the [`CachedLease`] alone, shared
/// from here on by the store, the index and every subscriber, never copied.
pub fn taken_in(event: Event<WatchedLease>) -> Event<Arc<CachedLease>> {
    match event {
        Event::Apply(l) => Event::Apply(Arc::new(l.lease)),
        Event::Delete(l) => Event::Delete(Arc::new(l.lease)),
        Event::Init => Event::Init,
        Event::InitApply(l) => Event::InitApply(Arc::new(l.lease)),
        Event::InitDone => Event::InitDone,
    }
}

fn insert(map: &mut Map, lease: &Arc<CachedLease>) {
    let m = &lease.metadata;
    let (Some(ns), Some(name)) = (m.namespace.as_deref(), m.name.as_deref()) else {
        return;
    };
    let names = match map.get_mut(ns) {
        Some(names) => names,
        None => map.entry(ns.to_string()).or_default(),
    };
    names.insert(name.into(), Arc::clone(lease));
}

impl LeaseStore {
    /// Lease `name` of namespace `ns`, as last seen.
    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<CachedLease>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(ns)?.get(name).cloned()
    }

    /// How many Leases it holds.
    pub fn len(&self) -> usize {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.values().map(HashMap::len).sum()
    }

    /// It holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LeaseWriter {
    /// Apply one watch event.
    pub fn apply(&mut self, event: &Event<Arc<CachedLease>>) {
        match event {
            Event::Apply(lease) => {
                let mut map = self.store.map.write().unwrap_or_else(|p| p.into_inner());
                insert(&mut map, lease);
            }
            Event::Delete(lease) => {
                let m = &lease.metadata;
                let (Some(ns), Some(name)) = (m.namespace.as_deref(), m.name.as_deref()) else {
                    return;
                };
                let mut map = self.store.map.write().unwrap_or_else(|p| p.into_inner());
                if let Some(names) = map.get_mut(ns) {
                    names.remove(name);
                    if names.is_empty() {
                        map.remove(ns);
                    }
                }
            }
            Event::Init => self.listing = Some(Map::new()),
            Event::InitApply(lease) => insert(self.listing.get_or_insert_with(Map::new), lease),
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let old = std::mem::replace(&mut *self.store.map.write().unwrap_or_else(|p| p.into_inner()), listed);
                // Dropped outside the lock.
                drop(old);
            }
        }
    }
}

#[cfg(test)]
mod tests;
