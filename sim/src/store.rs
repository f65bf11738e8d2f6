//! Object storage with one global resourceVersion, a bounded event history and an event channel
//! per resource for watches (as kube-apiserver's watch cache, one per resource: a watch of one
//! resource is neither slowed nor expired by another's traffic), and the indexes the garbage
//! collector needs.
//!
//! Objects are kept as their serialized JSON plus a small index (labels, fields for
//! selectors, owners), which keeps memory close to the objects' JSON size.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::resources::ResKey;

/// An owner reference as the garbage collector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub uid: String,
    pub block_owner_deletion: bool,
}

/// One stored object.
#[derive(Debug)]
pub struct Stored {
    pub raw: Bytes,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub rv: u64,
    pub labels: Vec<(String, String)>,
    /// Values of the field-selector labels this kind supports (besides name/namespace).
    pub fields: Vec<(&'static str, String)>,
    pub owners: Vec<OwnerRef>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

impl Stored {
    /// The object as JSON. Stored bytes were produced by serde_json, so parsing cannot fail
    /// in practice; a failure yields `null` rather than a panic.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.raw).unwrap_or(Value::Null)
    }

    pub fn label_map(&self) -> BTreeMap<String, String> {
        self.labels.iter().cloned().collect()
    }

    /// This version's index without its body (what an event keeps of a superseded version).
    fn without_body(&self) -> Stored {
        Stored {
            raw: Bytes::new(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            rv: self.rv,
            labels: self.labels.clone(),
            fields: self.fields.clone(),
            owners: self.owners.clone(),
            finalizers: self.finalizers.clone(),
            deleting: self.deleting,
        }
    }

    /// The value of a field selector label.
    pub fn field(&self, name: &str) -> Option<String> {
        match name {
            "metadata.name" => Some(self.name.clone()),
            "metadata.namespace" => Some(self.namespace.clone()),
            _ => self.fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// A change, as watches deliver it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub key: ResKey,
    pub kind: EventKind,
    pub obj: Arc<Stored>,
    /// The previous state's index (for Modified/Deleted), so selector watches can turn a change
    /// that leaves the selection into DELETED and one that enters it into ADDED. Its `raw` is
    /// empty: keeping superseded object bodies alive in the history would cost memory.
    pub prev: Option<Arc<Stored>>,
    /// When it was written (a watch that lags on purpose holds it back from then).
    pub at: std::time::Instant,
}

/// What a write closure decides.
pub enum Write {
    /// Store this object (its `metadata.resourceVersion` is stamped by the store).
    Put(Value),
    /// Remove the object; the value is its final state (stamped with the deletion's RV).
    Delete(Value),
    /// Change nothing; answer with the current object.
    Keep,
}

/// The result of a committed (or dry-run) write.
pub struct Written {
    pub obj: Arc<Stored>,
    pub kind: Option<EventKind>,
}

type ObjKey = (String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    tables: HashMap<ResKey, BTreeMap<ObjKey, Arc<Stored>>>,
    by_uid: HashMap<String, (ResKey, String, String)>,
    dependents: HashMap<String, BTreeSet<(ResKey, String, String)>>,
    /// Per resource: the events watches resume from, and the channel of what follows.
    watch_caches: HashMap<ResKey, WatchCache>,
    /// The resourceVersion of the last committed write per resource (caches built from a
    /// resource's objects, e.g. RBAC's, know when to rebuild).
    changed: HashMap<ResKey, u64>,
    /// Watches resume from no version older than this (see [`Store::start_history`]).
    history_start: u64,
}

/// By default, at most this many bytes of object bodies are kept in a resource's watch history.
pub const HISTORY_BYTES: usize = 8 * 1024 * 1024;

/// A watch channel keeps its last this-many events alive whether read or not, so it is modest;
/// a watcher that falls this far behind is closed and resumes from the history.
const WATCH_CHANNEL: usize = 1024;

/// One resource's watch history and channel.
struct WatchCache {
    history: VecDeque<Arc<Event>>,
    /// Events with rv ≤ this are no longer in history.
    compacted: u64,
    /// Sum of the object sizes in `history`.
    bytes: usize,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for WatchCache {
    fn default() -> Self {
        WatchCache {
            history: VecDeque::new(),
            compacted: 0,
            bytes: 0,
            tx: broadcast::channel(WATCH_CHANNEL).0,
        }
    }
}

impl WatchCache {
    /// Record `ev` and pass it to the resource's watches; the history bounded by count and bytes.
    fn push(&mut self, ev: &Arc<Event>, limit: usize, max_bytes: usize) {
        self.bytes += ev.obj.raw.len();
        self.history.push_back(ev.clone());
        while self.history.len() > limit || (self.bytes > max_bytes && self.history.len() > 16) {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
                self.bytes -= old.obj.raw.len();
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev.clone());
    }
}

pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    history_limit: usize,
    history_bytes: usize,
}

/// Field-selector values for kinds that support more than name/namespace.
fn index_fields(key: &ResKey, v: &Value) -> Vec<(&'static str, String)> {
    let s = |p: &str| -> String {
        match v.pointer(p) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    match (key.group.as_str(), key.plural.as_str()) {
        ("", "pods") => vec![
            ("spec.nodeName", s("/spec/nodeName")),
            ("spec.restartPolicy", s("/spec/restartPolicy")),
            ("spec.schedulerName", s("/spec/schedulerName")),
            ("spec.serviceAccountName", s("/spec/serviceAccountName")),
            ("spec.hostNetwork", {
                let h = s("/spec/hostNetwork");
                if h.is_empty() {
                    "false".into()
                } else {
                    h
                }
            }),
            ("status.phase", s("/status/phase")),
            ("status.podIP", s("/status/podIP")),
            ("status.nominatedNodeName", s("/status/nominatedNodeName")),
        ],
        ("", "events") => vec![
            ("involvedObject.kind", s("/involvedObject/kind")),
            ("involvedObject.namespace", s("/involvedObject/namespace")),
            ("involvedObject.name", s("/involvedObject/name")),
            ("involvedObject.uid", s("/involvedObject/uid")),
            ("involvedObject.apiVersion", s("/involvedObject/apiVersion")),
            ("involvedObject.resourceVersion", s("/involvedObject/resourceVersion")),
            ("involvedObject.fieldPath", s("/involvedObject/fieldPath")),
            ("reason", s("/reason")),
            ("reportingComponent", s("/reportingComponent")),
            ("source", s("/source/component")),
            ("type", s("/type")),
            // The same fields under their events.k8s.io/v1 names (one store, two views).
            ("regarding.kind", s("/involvedObject/kind")),
            ("regarding.namespace", s("/involvedObject/namespace")),
            ("regarding.name", s("/involvedObject/name")),
            ("regarding.uid", s("/involvedObject/uid")),
            ("regarding.apiVersion", s("/involvedObject/apiVersion")),
            ("regarding.resourceVersion", s("/involvedObject/resourceVersion")),
            ("regarding.fieldPath", s("/involvedObject/fieldPath")),
            ("reportingController", s("/reportingComponent")),
        ],
        ("events.k8s.io", "events") => vec![
            ("regarding.kind", s("/regarding/kind")),
            ("regarding.namespace", s("/regarding/namespace")),
            ("regarding.name", s("/regarding/name")),
            ("regarding.uid", s("/regarding/uid")),
            ("reason", s("/reason")),
            ("reportingController", s("/reportingController")),
            ("type", s("/type")),
        ],
        ("", "secrets") => vec![("type", s("/type"))],
        ("", "namespaces") => vec![("status.phase", s("/status/phase"))],
        ("", "nodes") => vec![("spec.unschedulable", {
            let u = s("/spec/unschedulable");
            if u.is_empty() {
                "false".into()
            } else {
                u
            }
        })],
        _ => Vec::new(),
    }
}

thread_local! {
    /// Per-thread scratch buffer objects are serialized into before being copied out.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The object's JSON in an allocation of exactly its size. Stored bodies live long; growing a
/// Vec by doubling (and shrinking it) leaves freed holes between them that the allocator cannot
/// return. Serializing into a reused per-thread buffer and copying out costs one memcpy.
fn encode_exact(v: &Value) -> Result<Bytes, ApiError> {
    SCRATCH.with(|scratch| {
        let mut buf = scratch
            .try_borrow_mut()
            .map_err(|_| ApiError::internal("encoding object: re-entered"))?;
        buf.clear();
        crate::meta::write_object(&mut *buf, v).map_err(|e| ApiError::internal(format!("encoding object: {e}")))?;
        let raw = Bytes::copy_from_slice(&buf);
        // Do not keep a buffer sized for a rare huge object on every thread.
        if buf.capacity() > 1 << 20 {
            *buf = Vec::new();
        }
        Ok(raw)
    })
}

fn build_stored(key: &ResKey, v: &Value, rv: u64) -> Result<Stored, ApiError> {
    let raw = encode_exact(v)?;
    let meta = v.get("metadata");
    let str_at = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let labels = meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let owners = meta
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| {
                    Some(OwnerRef {
                        uid: o.get("uid")?.as_str()?.to_string(),
                        block_owner_deletion: o.get("blockOwnerDeletion").and_then(Value::as_bool).unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let finalizers = meta
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok(Stored {
        raw,
        namespace: str_at("namespace"),
        name: str_at("name"),
        uid: str_at("uid"),
        rv,
        labels,
        fields: index_fields(key, v),
        owners,
        finalizers,
        deleting: meta
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|d| !d.is_null()),
    })
}

fn stamp_rv(v: &mut Value, rv: u64) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// The answer to a write that keeps the object as it is.
fn kept(current: Option<Arc<Stored>>) -> Result<Written, ApiError> {
    match current {
        Some(obj) => Ok(Written { obj, kind: None }),
        None => Err(ApiError::internal(
            "write decided to keep an object that does not exist",
        )),
    }
}

/// Stamps the written object's resourceVersion: `next` when committed. As kube-apiserver, a
/// dry-run create has none (nothing was stored) and a dry-run update or delete shows the
/// version it would have replaced.
fn stamp_written_rv(value: &mut Value, current: Option<&Stored>, dry_run: bool, next: u64) {
    if !dry_run {
        stamp_rv(value, next);
        return;
    }
    match current {
        Some(c) => stamp_rv(value, c.rv),
        None => {
            if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
        }
    }
}

impl Inner {
    /// Puts `stored` in (or, for a delete, takes `current` out of) the table and the uid and
    /// dependents indexes.
    fn reindex(
        &mut self,
        key: &ResKey,
        okey: ObjKey,
        current: Option<&Arc<Stored>>,
        stored: &Arc<Stored>,
        kind: EventKind,
    ) {
        let full = (key.clone(), okey.0.clone(), okey.1.clone());
        if let Some(prev) = current {
            for o in &prev.owners {
                if let Some(set) = self.dependents.get_mut(&o.uid) {
                    set.remove(&full);
                    if set.is_empty() {
                        self.dependents.remove(&o.uid);
                    }
                }
            }
            if kind == EventKind::Deleted {
                self.by_uid.remove(&prev.uid);
            }
        }
        let table = self.tables.entry(key.clone()).or_default();
        if kind == EventKind::Deleted {
            table.remove(&okey);
            return;
        }
        table.insert(okey, stored.clone());
        for o in &stored.owners {
            self.dependents.entry(o.uid.clone()).or_default().insert(full.clone());
        }
        self.by_uid.insert(stored.uid.clone(), full);
    }
}

impl Store {
    pub fn new(history_limit: usize, history_bytes: usize) -> Self {
        // Every event, for the simulator's own controllers (kubelet, garbage collector, Jobs).
        let (tx, _) = broadcast::channel(WATCH_CHANNEL);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                ..Inner::default()
            }),
            tx,
            history_limit: history_limit.max(16),
            history_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would poison it; the data is still consistent
        // (every write is applied in one step), so carry on with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Start the watch history at the current resourceVersion: a watch from an older one is
    /// told 410 Gone, as kube-apiserver's watch cache, which starts at its initial list, tells
    /// a watch from before it (the objects every cluster starts with are older).
    pub fn start_history(&self) {
        let mut g = self.lock();
        g.history_start = g.rv;
    }

    /// The resourceVersion of the last write to any object of `key` (0: none yet).
    pub fn changed_at(&self, key: &ResKey) -> u64 {
        self.lock().changed.get(key).copied().unwrap_or(0)
    }

    pub fn get(&self, key: &ResKey, ns: &str, name: &str) -> Option<Arc<Stored>> {
        self.get_at(key, ns, name).0
    }

    /// One object (if stored) with the RV of the snapshot it was read in.
    pub fn get_at(&self, key: &ResKey, ns: &str, name: &str) -> (Option<Arc<Stored>>, u64) {
        let g = self.lock();
        let found = g
            .tables
            .get(key)
            .and_then(|t| t.get(&(ns.to_string(), name.to_string())))
            .cloned();
        (found, g.rv)
    }

    /// Objects of a resource (in a namespace, or all), sorted by namespace and name, with the RV
    /// of the snapshot.
    pub fn list(&self, key: &ResKey, ns: Option<&str>) -> (Vec<Arc<Stored>>, u64) {
        let g = self.lock();
        let items = match g.tables.get(key) {
            None => Vec::new(),
            Some(t) => match ns {
                None => t.values().cloned().collect(),
                Some(ns) => t
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
            },
        };
        (items, g.rv)
    }

    /// Every namespaced object in a namespace, of every resource (namespace deletion).
    pub fn all_in_namespace(&self, ns: &str) -> Vec<(ResKey, String)> {
        let g = self.lock();
        let mut out = Vec::new();
        for (k, t) in &g.tables {
            for (n, name) in t.keys() {
                if n == ns {
                    out.push((k.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// Read-modify-write of one object under the store lock, so concurrent writers serialise and
    /// resourceVersion preconditions checked inside `f` are exact.
    pub fn write<F>(&self, key: &ResKey, ns: &str, name: &str, dry_run: bool, f: F) -> Result<Written, ApiError>
    where
        F: FnOnce(Option<&Arc<Stored>>) -> Result<Write, ApiError>,
    {
        let mut g = self.lock();
        let okey = (ns.to_string(), name.to_string());
        let current = g.tables.get(key).and_then(|t| t.get(&okey)).cloned();
        let decision = f(current.as_ref())?;
        let next = g.rv + 1;
        let (mut value, kind) = match decision {
            Write::Keep => return kept(current),
            Write::Put(v) if current.is_some() => (v, EventKind::Modified),
            Write::Put(v) => (v, EventKind::Added),
            Write::Delete(v) => (v, EventKind::Deleted),
        };
        if kind == EventKind::Deleted && current.is_none() {
            return Err(ApiError::internal("delete of an object that does not exist"));
        }
        stamp_written_rv(&mut value, current.as_deref(), dry_run, next);
        let stored = Arc::new(build_stored(key, &value, next)?);
        if dry_run {
            return Ok(Written {
                obj: stored,
                kind: Some(kind),
            });
        }
        g.rv = next;
        g.changed.insert(key.clone(), next);
        g.reindex(key, okey, current.as_ref(), &stored, kind);
        // The event keeps the previous version's index but not its body: superseded bodies held
        // by the history are the watch cache's memory cost.
        let ev = Arc::new(Event {
            rv: next,
            key: key.clone(),
            kind,
            obj: stored.clone(),
            prev: current.map(|c| Arc::new(c.without_body())),
            at: std::time::Instant::now(),
        });
        g.watch_caches
            .entry(key.clone())
            .or_default()
            .push(&ev, self.history_limit, self.history_bytes);
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev);
        Ok(Written {
            obj: stored,
            kind: Some(kind),
        })
    }

    /// Start a watch of resource `key` after `rv`: the history events after it and a receiver
    /// for what follows, taken atomically so nothing falls between them. Err (the oldest
    /// resumable version) when `rv` is older than the resource's history.
    #[allow(clippy::type_complexity)]
    pub fn watch_from(&self, key: &ResKey, rv: u64) -> Result<(Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>), u64> {
        let mut g = self.lock();
        let start = g.history_start;
        let cache = g.watch_caches.entry(key.clone()).or_default();
        let oldest = cache.compacted.max(start);
        if rv < oldest {
            return Err(oldest);
        }
        let rx = cache.tx.subscribe();
        let past = cache.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Ok((past, rx))
    }

    /// A snapshot plus a receiver for later events (watch without resourceVersion, or "0").
    #[allow(clippy::type_complexity)]
    pub fn snapshot_and_watch(&self, key: &ResKey) -> (Vec<Arc<Stored>>, u64, broadcast::Receiver<Arc<Event>>) {
        let mut g = self.lock();
        let rx = g.watch_caches.entry(key.clone()).or_default().tx.subscribe();
        let items = g
            .tables
            .get(key)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default();
        (items, g.rv, rx)
    }

    /// Every resource's events (for the simulator's own controllers; watches use their
    /// resource's channel).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn exists_uid(&self, uid: &str) -> bool {
        self.lock().by_uid.contains_key(uid)
    }

    pub fn lookup_uid(&self, uid: &str) -> Option<(ResKey, String, String)> {
        self.lock().by_uid.get(uid).cloned()
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<(ResKey, String, String)> {
        self.lock()
            .dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Drop a whole resource's objects (a deleted CRD), emitting DELETED for each, then end its
    /// watches (kube-apiserver tears a deleted CRD's storage down, and its watches with it):
    /// they get what was sent so far, then the end of the stream.
    pub fn drop_resource(&self, key: &ResKey) -> usize {
        let (items, _) = self.list(key, None);
        let mut n = 0;
        for obj in items {
            let res = self.write(key, &obj.namespace, &obj.name, false, |cur| match cur {
                Some(c) => Ok(Write::Delete(c.value())),
                None => Ok(Write::Keep),
            });
            if res.is_ok() {
                n += 1;
            }
        }
        if let Some(cache) = self.lock().watch_caches.get_mut(key) {
            // The old sender dropped: its receivers read what is queued, then see the end.
            cache.tx = broadcast::channel(WATCH_CHANNEL).0;
        }
        n
    }

    /// Total bytes of stored JSON (for the memory benchmark).
    pub fn stored_bytes(&self) -> usize {
        self.lock()
            .tables
            .values()
            .flat_map(|t| t.values())
            .map(|s| s.raw.len())
            .sum()
    }
}
