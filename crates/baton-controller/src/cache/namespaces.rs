//! Pod watches by namespace, for the ListenerSet controller: the pods of a namespace are watched
//! (and cached) only while a ListenerSet of that namespace uses them.
//!
//! The operator's own pod watch takes only pods with the Rollout label; a ListenerSet selects
//! any workload's pods, and its decision reads every pod of its namespace (a holder that no
//! longer matches the selector is live and is asked to release, not taken for gone), so each
//! namespace with a ListenerSet gets a watch of its own, started by the set's first reconcile
//! and stopped when the namespace's last set is gone.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc::UnboundedSender;
use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use tracing::warn;

use super::{synced, Synced, SyncedTx};
use crate::api::pod::CachedPod;

/// Where the ListenerSet controller reads the pods of a namespace. Clones share the watches.
#[derive(Clone)]
pub struct NamespacePods(Arc<Source>);

enum Source {
    /// One store for every namespace (a caller that fills it by other means).
    Fixed(Store<CachedPod>, Synced),
    Watched(Watches),
}

struct Watches {
    client: kube::Client,
    /// Every watched change is passed on to these while `gate` is open.
    subscribers: Arc<Mutex<Vec<UnboundedSender<CachedPod>>>>,
    gate: Arc<AtomicBool>,
    by_ns: Mutex<HashMap<String, Watch>>,
    /// Counts the lists of every namespace's watch after its first (relists: see
    /// [`NamespacePods::relisted`]).
    relists: (Arc<SyncedTx>, Synced),
}

struct Watch {
    store: Store<CachedPod>,
    synced: Synced,
    /// The ListenerSets that use it.
    users: BTreeSet<String>,
    /// Taken only by [`NamespacePods::stop`], which waits for its end.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl NamespacePods {
    /// One store, synced as `synced` says, for every namespace.
    pub fn fixed(store: Store<CachedPod>, synced: Synced) -> Self {
        NamespacePods(Arc::new(Source::Fixed(store, synced)))
    }

    /// Watches started on demand; their changes go to `subscribers` while `gate` is open.
    pub fn watched(
        client: kube::Client,
        subscribers: Arc<Mutex<Vec<UnboundedSender<CachedPod>>>>,
        gate: Arc<AtomicBool>,
    ) -> Self {
        NamespacePods(Arc::new(Source::Watched(Watches {
            client,
            subscribers,
            gate,
            by_ns: Mutex::new(HashMap::new()),
            relists: {
                let (tx, rx) = synced();
                (Arc::new(tx), rx)
            },
        })))
    }

    /// A signal after any namespace's pod watch lists anew (after its watch expired or failed),
    /// once its store holds the new list (see [`Synced::relisted`]); a namespace's first list is
    /// not one (the sets there wait for it).
    pub fn relisted(&self) -> futures::stream::BoxStream<'static, ()> {
        match self.0.as_ref() {
            Source::Fixed(_, synced) => synced.relisted(),
            Source::Watched(w) => w.relists.1.relisted(),
        }
    }

    /// The pods of `ns` for ListenerSet `set`, and whether they are listed yet: starts the
    /// namespace's watch if no set used it (call within a tokio runtime).
    pub fn of(&self, ns: &str, set: &str) -> (Store<CachedPod>, Synced) {
        let w = match self.0.as_ref() {
            Source::Fixed(store, synced) => return (store.clone(), synced.clone()),
            Source::Watched(w) => w,
        };
        let mut by_ns = w.by_ns.lock().unwrap_or_else(|p| p.into_inner());
        let watch = by_ns.entry(ns.to_string()).or_insert_with(|| w.start(ns));
        watch.users.insert(set.to_string());
        (watch.store.clone(), watch.synced.clone())
    }

    /// Set `set` of `ns` is gone: the namespace's watch stops if no other set uses it.
    pub fn release(&self, ns: &str, set: &str) {
        let Source::Watched(w) = self.0.as_ref() else { return };
        let mut by_ns = w.by_ns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(watch) = by_ns.get_mut(ns) {
            watch.users.remove(set);
            if watch.users.is_empty() {
                by_ns.remove(ns);
            }
        }
    }

    /// Stop every namespace's watch and wait until each has ended (the controllers stopped:
    /// nothing of theirs may still talk to the API server).
    pub async fn stop(&self) {
        let Source::Watched(w) = self.0.as_ref() else { return };
        let tasks: Vec<_> = {
            let mut by_ns = w.by_ns.lock().unwrap_or_else(|p| p.into_inner());
            by_ns.drain().filter_map(|(_, mut watch)| watch.task.take()).collect()
        };
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// Pod `name` of `ns`, if its namespace is watched and the pod cached.
    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<CachedPod>> {
        let r = reflector::ObjectRef::new(name).within(ns);
        match self.0.as_ref() {
            Source::Fixed(store, _) => store.get(&r),
            Source::Watched(w) => {
                let by_ns = w.by_ns.lock().unwrap_or_else(|p| p.into_inner());
                by_ns.get(ns)?.store.get(&r)
            }
        }
    }

    /// The uids of every cached pod.
    pub fn uids(&self) -> HashSet<String> {
        let uids_of =
            |s: &Store<CachedPod>| -> Vec<String> { s.state().iter().filter_map(|p| p.metadata.uid.clone()).collect() };
        match self.0.as_ref() {
            Source::Fixed(store, _) => uids_of(store).into_iter().collect(),
            Source::Watched(w) => {
                let by_ns = w.by_ns.lock().unwrap_or_else(|p| p.into_inner());
                by_ns.values().flat_map(|watch| uids_of(&watch.store)).collect()
            }
        }
    }

    /// How many pods the namespaces' caches hold.
    pub fn len(&self) -> usize {
        match self.0.as_ref() {
            Source::Fixed(store, _) => store.state().len(),
            Source::Watched(w) => {
                let by_ns = w.by_ns.lock().unwrap_or_else(|p| p.into_inner());
                by_ns.values().map(|watch| watch.store.state().len()).sum()
            }
        }
    }

    /// No pod cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The namespaces watched now (for tests and logs).
    pub fn namespaces(&self) -> Vec<String> {
        match self.0.as_ref() {
            Source::Fixed(..) => Vec::new(),
            Source::Watched(w) => {
                let mut v: Vec<String> = w
                    .by_ns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .keys()
                    .cloned()
                    .collect();
                v.sort();
                v
            }
        }
    }
}

impl Watches {
    fn start(&self, ns: &str) -> Watch {
        let (store, writer) = reflector::store();
        let (synced_tx, synced) = synced();
        let api: kube::Api<CachedPod> = kube::Api::namespaced(self.client.clone(), ns);
        let subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let gate = self.gate.clone();
        let what = format!("pod watch of namespace {ns}");
        let (relists, mut lists) = (self.relists.0.clone(), 0u64);
        let changes = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .inspect(move |e| {
                synced_tx.observe(e);
                if matches!(e, Ok(watcher::Event::InitDone)) {
                    lists += 1;
                    if lists > 1 {
                        relists.observe(e);
                    }
                }
            })
            .touched_objects();
        let task = tokio::spawn(changes.for_each(move |r| {
            match r {
                Ok(pod) if gate.load(std::sync::atomic::Ordering::Relaxed) => {
                    for s in &subscribers {
                        let _ = s.unbounded_send(pod.clone());
                    }
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "{what}"),
            }
            async {}
        }));
        Watch {
            store,
            synced,
            users: BTreeSet::new(),
            task: Some(task),
        }
    }
}
