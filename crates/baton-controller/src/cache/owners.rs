//! An index of a watch cache by owner: which objects name a given uid in their owner
//! references. kube-runtime 5.0.0's `Store` has no indexers (`state()` clones every entry, `find`
//! scans them), so a Rollout reconcile that filtered the whole pod cache by owner cost time
//! proportional to every pod in the cluster. The index is kept from the same watch events the
//! store applies, each applied to the index just *before* the store, and answers with the
//! store's own objects: an object the store has is always in the index, so a reconcile that
//! waited for the store to show its new pod (an expectation) finds it through the index too.
//!
//! Its entries are small (each index entry is an object's "namespace/name" and its owners'
//! uids, shared between the two maps as `Arc<str>`), as it holds one per cached pod.
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::Resource;

/// An object's `namespace/name` (neither may hold a `/`; cluster-scoped: `/name`).
type Key = Arc<str>;
/// An owner's uid.
type Uid = Arc<str>;

#[derive(Default)]
struct Inner {
    by_owner: HashMap<Uid, HashSet<Key>>,
    owners_of: HashMap<Key, Box<[Uid]>>,
    /// The relist in progress (between `Init` and `InitDone`), swapped in at its end as the
    /// store swaps its own buffer.
    relist: Option<HashMap<Key, Box<[Uid]>>>,
}

/// Objects of kind `K` by the uids of their owners; clones share the index.
pub struct OwnerIndex<K> {
    inner: Arc<RwLock<Inner>>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for OwnerIndex<K> {
    fn clone(&self) -> Self {
        OwnerIndex {
            inner: self.inner.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Default for OwnerIndex<K> {
    fn default() -> Self {
        OwnerIndex {
            inner: Arc::default(),
            kind: PhantomData,
        }
    }
}

fn owners<K: Resource>(o: &K) -> impl Iterator<Item = &str> {
    o.meta().owner_references.iter().flatten().map(|r| r.uid.as_str())
}

fn key<K: Resource>(o: &K) -> Key {
    let m = o.meta();
    let (ns, name) = (
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
    );
    format!("{ns}/{name}").into()
}

fn object_ref<K: Resource<DynamicType = ()>>(key: &str) -> ObjectRef<K> {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    let r = ObjectRef::new(name);
    if ns.is_empty() {
        r
    } else {
        r.within(ns)
    }
}

impl Inner {
    /// `uid` as the index holds it (one allocation per owner, shared by its objects' entries).
    fn uid(&self, uid: &str) -> Uid {
        match self.by_owner.get_key_value(uid) {
            Some((held, _)) => held.clone(),
            None => uid.into(),
        }
    }

    fn unlink(&mut self, key: &str) {
        for uid in self.owners_of.remove(key).into_iter().flatten() {
            if let Some(set) = self.by_owner.get_mut(&uid) {
                set.remove(key);
                if set.is_empty() {
                    self.by_owner.remove(&uid);
                }
            }
        }
    }

    fn link(&mut self, key: Key, uids: Box<[Uid]>) {
        self.unlink(&key);
        for uid in &uids {
            self.by_owner.entry(uid.clone()).or_default().insert(key.clone());
        }
        if !uids.is_empty() {
            self.owners_of.insert(key, uids);
        }
    }

    fn uids<K: Resource>(&self, o: &K) -> Box<[Uid]> {
        owners(o).map(|u| self.uid(u)).collect()
    }
}

impl<K: Resource<DynamicType = ()> + Clone> OwnerIndex<K> {
    /// Apply one watch event (call it with every event, before the store's reflector applies it).
    pub fn observe(&self, event: &Result<watcher::Event<K>, watcher::Error>) {
        let Ok(event) = event else { return };
        // A poisoned lock means a panic mid-update elsewhere; the index is rebuilt at the next
        // relist either way, so keep serving it.
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(o) => {
                let uids = inner.uids(o);
                inner.link(key(o), uids);
            }
            watcher::Event::Delete(o) => inner.unlink(&key(o)),
            watcher::Event::Init => inner.relist = Some(HashMap::new()),
            watcher::Event::InitApply(o) => {
                let uids = inner.uids(o);
                if let Some(relist) = inner.relist.as_mut() {
                    if !uids.is_empty() {
                        relist.insert(key(o), uids);
                    }
                }
            }
            watcher::Event::InitDone => {
                let relist = inner.relist.take().unwrap_or_default();
                let mut by_owner: HashMap<Uid, HashSet<Key>> = HashMap::new();
                for (key, uids) in &relist {
                    for uid in uids.iter() {
                        by_owner.entry(uid.clone()).or_default().insert(key.clone());
                    }
                }
                inner.by_owner = by_owner;
                inner.owners_of = relist;
            }
        }
    }

    /// The objects of `store` that name `uid` among their owners (in no particular order).
    /// An object the index knows but the store no longer has is left out, and each object
    /// returned is checked against `uid` again, so the answer never includes a stranger.
    pub fn owned_by(&self, store: &Store<K>, uid: &str) -> Vec<Arc<K>> {
        let keys: Vec<Key> = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            match inner.by_owner.get(uid) {
                Some(set) => set.iter().cloned().collect(),
                None => return Vec::new(),
            }
        };
        keys.iter()
            .filter_map(|k| store.get(&object_ref(k)))
            .filter(|o| owners(o.as_ref()).any(|u| u == uid))
            .collect()
    }

    /// How many owners the index holds (for tests and metrics).
    pub fn owner_count(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).by_owner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube::runtime::reflector;

    fn pod(name: &str, owner: Option<&str>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("ns".into());
        p.metadata.owner_references = owner.map(|u| {
            vec![OwnerReference {
                uid: u.into(),
                kind: "Rollout".into(),
                name: "r".into(),
                api_version: crate::api::API_VERSION.into(),
                ..Default::default()
            }]
        });
        p
    }

    struct Cache {
        store: Store<Pod>,
        writer: reflector::store::Writer<Pod>,
        index: OwnerIndex<Pod>,
    }

    impl Cache {
        fn new() -> Self {
            let (store, writer) = reflector::store();
            Cache {
                store,
                writer,
                index: OwnerIndex::default(),
            }
        }
        fn apply(&mut self, e: watcher::Event<Pod>) {
            self.writer.apply_watcher_event(&e);
            self.index.observe(&Ok(e));
        }
        fn names(&self, uid: &str) -> Vec<String> {
            let mut v: Vec<String> = self
                .index
                .owned_by(&self.store, uid)
                .iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect();
            v.sort();
            v
        }
    }

    #[test]
    fn follows_applies_deletes_and_owner_changes() {
        let mut c = Cache::new();
        c.apply(watcher::Event::Apply(pod("a", Some("u1"))));
        c.apply(watcher::Event::Apply(pod("b", Some("u1"))));
        c.apply(watcher::Event::Apply(pod("c", Some("u2"))));
        c.apply(watcher::Event::Apply(pod("orphan", None)));
        assert_eq!(c.names("u1"), ["a", "b"]);
        assert_eq!(c.names("u2"), ["c"]);
        c.apply(watcher::Event::Delete(pod("a", Some("u1"))));
        assert_eq!(c.names("u1"), ["b"]);
        // Adopted by another owner: gone from the first.
        c.apply(watcher::Event::Apply(pod("b", Some("u2"))));
        assert!(c.names("u1").is_empty());
        assert_eq!(c.names("u2"), ["b", "c"]);
        assert_eq!(c.index.owner_count(), 1);
    }

    #[test]
    fn a_relist_replaces_the_index() {
        let mut c = Cache::new();
        c.apply(watcher::Event::Apply(pod("old", Some("u1"))));
        c.apply(watcher::Event::Init);
        c.apply(watcher::Event::InitApply(pod("new", Some("u1"))));
        // Until the relist is done the old view is served, as the store does.
        assert_eq!(c.names("u1"), ["old"]);
        c.apply(watcher::Event::InitDone);
        assert_eq!(c.names("u1"), ["new"]);
    }

    #[test]
    fn lookups_ignore_other_owners() {
        let mut c = Cache::new();
        for i in 0..10_000 {
            c.apply(watcher::Event::Apply(pod(&format!("x{i}"), Some(&format!("o{i}")))));
        }
        c.apply(watcher::Event::Apply(pod("mine", Some("me"))));
        assert_eq!(c.names("me"), ["mine"]);
        assert_eq!(c.index.owner_count(), 10_001);
    }
}
