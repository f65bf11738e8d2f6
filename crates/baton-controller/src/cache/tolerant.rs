//! Watches that survive objects which do not decode.
//!
//! The API server stores what its schema allows, and that can be more than the Rust type
//! accepts: `2147483648` in a field declared `format: int32` (not enforced on custom resources
//! before Kubernetes 1.36), an object written under an older schema, another API server. With
//! a plain `watcher::<K>` one such object fails the whole list, the watcher retries forever,
//! the cache never syncs and no object of the kind is reconciled again. Here the watch decodes
//! each object on its own ([`Tolerant`]): objects that decode go to the cache as usual; one that
//! does not is left out of it (and removed, if an earlier version was in it), recorded in
//! [`Undecodables`] (a log line naming it, a gauge) so the controller can report it on the
//! object (an Event, a condition), and every other object is reconciled as before.
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::Resource;
use prometheus_client::metrics::gauge::Gauge;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tokio::sync::watch;
use tracing::{info, warn};

/// An object of kind `K` as the API server sent it: decoded, or its metadata and why it did
/// not decode. Watch `Api<Tolerant<K>>` and convert with [`decode_events`].
#[derive(Clone, Debug)]
pub struct Tolerant<K> {
    metadata: ObjectMeta,
    pub object: Result<K, Undecodable>,
}

/// Why an object did not decode, and its stored `status` (for a report that keeps it).
#[derive(Clone, Debug, PartialEq)]
pub struct Undecodable {
    pub error: String,
    /// `spec` as stored (to name the fields to fix).
    pub spec: Option<Value>,
    pub status: Option<Value>,
}

/// Metadata read field by field, for an object whose `metadata` itself does not decode.
fn loose_meta(v: Option<&Value>) -> ObjectMeta {
    let s = |k: &str| v.and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_string);
    ObjectMeta {
        name: s("name"),
        namespace: s("namespace"),
        uid: s("uid"),
        resource_version: s("resourceVersion"),
        generation: v.and_then(|m| m.get("generation")).and_then(Value::as_i64),
        ..ObjectMeta::default()
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Tolerant<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        // Decoded from the borrowed value, so a failure leaves it for the report.
        match K::deserialize(&value) {
            Ok(k) => {
                let metadata = match value.get("metadata") {
                    Some(m) => ObjectMeta::deserialize(m).unwrap_or_else(|_| loose_meta(Some(m))),
                    None => ObjectMeta::default(),
                };
                Ok(Tolerant {
                    metadata,
                    object: Ok(k),
                })
            }
            Err(e) => {
                let meta = value.get("metadata");
                let metadata = meta
                    .and_then(|m| ObjectMeta::deserialize(m).ok())
                    .unwrap_or_else(|| loose_meta(meta));
                Ok(Tolerant {
                    metadata,
                    object: Err(Undecodable {
                        error: e.to_string(),
                        spec: value.get("spec").cloned(),
                        status: value.get("status").cloned(),
                    }),
                })
            }
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Tolerant<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// One object left out of the cache.
#[derive(Clone, Debug, PartialEq)]
pub struct Bad {
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub generation: Option<i64>,
    pub error: String,
    /// `spec` as stored.
    pub spec: Option<Value>,
    /// `status` as stored.
    pub status: Option<Value>,
}

impl Bad {
    fn new(meta: &ObjectMeta, why: Undecodable) -> Bad {
        Bad {
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            generation: meta.generation,
            error: why.error,
            spec: why.spec,
            status: why.status,
        }
    }

    /// Where Events about the object point.
    pub fn reference<K: Resource<DynamicType = ()>>(&self) -> k8s_openapi::api::core::v1::ObjectReference {
        k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(self.name.clone()),
            namespace: self.namespace.clone(),
            uid: self.uid.clone(),
            resource_version: self.resource_version.clone(),
            ..Default::default()
        }
    }

    /// Server-side apply `status` to the object as `manager`, up to 3 attempts with `delay(n)`
    /// after the n-th failure. Through a dynamic object: the answer holds the stored spec, which
    /// does not decode as `K`.
    pub async fn apply_status<K: Resource<DynamicType = ()>>(
        &self,
        client: &kube::Client,
        manager: &str,
        status: &impl serde::Serialize,
        delay: impl Fn(u32) -> std::time::Duration,
    ) {
        use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
        let Some(ns) = self.namespace.as_deref() else { return };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<K>(&()));
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        for attempt in 1..=3u32 {
            let written = api
                .patch_status(&self.name, &PatchParams::apply(manager).force(), &Patch::Apply(&body))
                .await;
            match written {
                Ok(_) => return,
                Err(e) => {
                    warn!(namespace = %ns, name = %self.name, kind = %K::kind(&()), attempt, error = %e, "writing the status of an undecodable object");
                    tokio::time::sleep(delay(attempt)).await;
                }
            }
        }
    }

    /// What to fix: the fields outside `crd`'s integer bounds, or the decoder's error.
    pub fn problem(
        &self,
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> String {
        let spec = serde_json::json!({"spec": self.spec.clone().unwrap_or(Value::Null)});
        let fields = crate::api::schema_bounds::out_of_bounds(crd, &spec, 5);
        if fields.is_empty() {
            self.error.clone()
        } else {
            fields.join("; ")
        }
    }

    /// `namespace/name` (or `name`).
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Default)]
struct Inner {
    current: BTreeMap<String, Bad>,
    /// During a relist: what the new list holds so far.
    relisting: Option<BTreeMap<String, Bad>>,
}

/// The objects of one kind that are left out of its cache because they do not decode.
/// Shared by the watch that fills it and whoever reports them; changes are announced on
/// [`Undecodables::changed`].
#[derive(Clone)]
pub struct Undecodables {
    kind: String,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<watch::Sender<u64>>,
    gauge: Gauge,
}

impl Undecodables {
    /// An empty set for `kind`, counted in `gauge`.
    pub fn new(kind: impl Into<String>, gauge: Gauge) -> Self {
        Undecodables {
            kind: kind.into(),
            inner: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
            gauge,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut g);
        self.gauge.set(i64::try_from(g.current.len()).unwrap_or(i64::MAX));
        drop(g);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        r
    }

    /// The objects currently left out.
    pub fn snapshot(&self) -> Vec<Bad> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.current.values().cloned().collect()
    }

    /// Bumped on every change.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn record(&self, bad: Bad) {
        let key = bad.key();
        self.with(|g| {
            let known = g
                .current
                .get(&key)
                .or_else(|| g.relisting.as_ref().and_then(|r| r.get(&key)));
            if known.is_none_or(|k| k.resource_version != bad.resource_version) {
                warn!(
                    kind = %self.kind,
                    namespace = bad.namespace.as_deref().unwrap_or(""),
                    name = %bad.name,
                    resource_version = bad.resource_version.as_deref().unwrap_or(""),
                    error = %bad.error,
                    "skipping {} {}: the stored object does not decode",
                    self.kind,
                    key
                );
            }
            if let Some(r) = g.relisting.as_mut() {
                r.insert(key.clone(), bad.clone());
            }
            g.current.insert(key, bad);
        });
    }

    fn clear(&self, key: &str) {
        let present = {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.current.contains_key(key) || g.relisting.as_ref().is_some_and(|r| r.contains_key(key))
        };
        if present {
            self.with(|g| {
                if g.current.remove(key).is_some() {
                    info!(kind = %self.kind, object = %key, "decodes again");
                }
                if let Some(r) = g.relisting.as_mut() {
                    r.remove(key);
                }
            });
        }
    }

    fn relist_started(&self) {
        self.with(|g| g.relisting = Some(BTreeMap::new()));
    }

    fn relist_done(&self) {
        self.with(|g| {
            if let Some(r) = g.relisting.take() {
                g.current = r;
            }
        });
    }
}

fn key_of(meta: &ObjectMeta) -> String {
    let name = meta.name.clone().unwrap_or_default();
    match &meta.namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name,
    }
}

/// The object the cache holds under `meta`'s name, to remove it.
fn cached<K>(store: &Store<K>, meta: &ObjectMeta) -> Option<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let name = meta.name.as_deref()?;
    let r = match meta.namespace.as_deref() {
        Some(ns) => ObjectRef::new(name).within(ns),
        None => ObjectRef::new(name),
    };
    store.get(&r).map(|k| (*k).clone())
}

/// Turn a watch of [`Tolerant<K>`] into a watch of `K` for `store`'s writer: objects that do
/// not decode are recorded in `bad` and left out (a cached earlier version is deleted).
pub fn decode_events<K, S>(
    stream: S,
    store: Store<K>,
    bad: Undecodables,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    S: Stream<Item = Result<watcher::Event<Tolerant<K>>, watcher::Error>> + Send,
{
    use watcher::Event;
    stream.filter_map(move |ev| {
        let out = match ev {
            Err(e) => Some(Err(e)),
            Ok(Event::Init) => {
                bad.relist_started();
                Some(Ok(Event::Init))
            }
            Ok(Event::InitDone) => {
                bad.relist_done();
                Some(Ok(Event::InitDone))
            }
            Ok(Event::InitApply(t)) => match t.object {
                Ok(k) => {
                    bad.clear(&key_of(&t.metadata));
                    Some(Ok(Event::InitApply(k)))
                }
                Err(why) => {
                    bad.record(Bad::new(&t.metadata, why));
                    None
                }
            },
            Ok(Event::Apply(t)) => match t.object {
                Ok(k) => {
                    bad.clear(&key_of(&t.metadata));
                    Some(Ok(Event::Apply(k)))
                }
                Err(why) => {
                    bad.record(Bad::new(&t.metadata, why));
                    cached(&store, &t.metadata).map(|old| Ok(Event::Delete(old)))
                }
            },
            Ok(Event::Delete(t)) => {
                bad.clear(&key_of(&t.metadata));
                match t.object {
                    Ok(k) => Some(Ok(Event::Delete(k))),
                    Err(_) => cached(&store, &t.metadata).map(|old| Ok(Event::Delete(old))),
                }
            }
        };
        std::future::ready(out)
    })
}

/// What `Controller::new(api, cfg)` builds, on a watch that decodes each object on its own:
/// objects that do not decode are skipped and recorded in `bad`.
pub fn controller<K>(api: Api<Tolerant<K>>, cfg: watcher::Config, bad: Undecodables) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = decode_events(watcher(api, cfg), store.clone(), bad)
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(stream, store)
}

/// Report each undecodable object once per resourceVersion with `report` (an Event, a
/// condition), until dropped. Run it only where writes are allowed (the leader).
pub async fn report_each<F, Fut>(bad: Undecodables, report: F)
where
    F: Fn(Bad) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut changed = bad.changed();
    let mut done: HashSet<(String, Option<String>)> = HashSet::new();
    loop {
        let now = bad.snapshot();
        done.retain(|(key, rv)| now.iter().any(|b| &b.key() == key && &b.resource_version == rv));
        for b in now {
            if done.insert((b.key(), b.resource_version.clone())) {
                report(b).await;
            }
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
