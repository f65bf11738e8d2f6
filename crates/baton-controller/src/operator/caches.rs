//! Watch caches shared between the controllers: pods (the Rollouts' pods, by their label, and
//! the pods of namespaces with a ListenerSet, see [`NamespacePods`]; each cached as a
//! [`CachedPod`] projection) and listener Leases (each a [`CachedLease`] projection), each
//! watch's changes fanned out to every subscriber while the operator leads; and the lookups that
//! tie the two controllers together (does a pod hold listeners, which Rollout waits for a
//! draining pod).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt, TryStreamExt};

use crate::listeners::controller::index::LeaseIndex;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use tracing::warn;

use super::api;
use crate::api::listenerset::lease::{owner_pod, CachedLease, Holder, LeaseFields, WatchedLease};
use crate::api::listenerset::{HANDED_OVER_FROM_ANNOTATION, LISTENERSET_LABEL};
use crate::api::pod::{is_draining, CachedPod};
use crate::api::rollout::{labels, Rollout};
use crate::cache::leases::{taken_in, LeaseStore, LeaseWriter};
use crate::cache::namespaces::NamespacePods;
use crate::cache::owners::OwnerIndex;
use crate::cache::{synced, Events, Synced, SyncedTx};
use crate::rollout::controller::HoldsListeners;

type PodSubscribers = Arc<Mutex<Vec<futures::channel::mpsc::UnboundedSender<CachedPod>>>>;

/// Watch caches of the Rollouts' pods (those with the [`labels::ROLLOUT`] label) and of listener
/// Leases, each one watch shared by
/// every controller that subscribes: [`pod_events`](Self::pod_events) /
/// [`lease_events`](Self::lease_events) hand out streams of every touched (applied or deleted)
/// object, fanned out over unbounded channels; then drive the watches with
/// [`drive`](Self::drive).
///
/// (kube-runtime's own shared streams are not used: a `ReflectHandle` whose object was deleted
/// before it was read returns `Pending` without a waker and stalls forever, and deletions are
/// not dispatched at all — a deleted pod must trigger an immediate takeover.)
pub struct SharedCaches {
    /// The Rollouts' pods.
    pub pods: Store<CachedPod>,
    /// The pod cache by owner uid (a Rollout reads only its own pods).
    pub pod_owners: OwnerIndex<CachedPod>,
    pub leases: LeaseStore,
    /// The listener Leases by set and holder (see [`LeaseIndex`]), following `leases`.
    pub lease_index: Arc<LeaseIndex>,
    pod_writer: reflector::store::Writer<CachedPod>,
    lease_writer: LeaseWriter,
    /// Of every pod watch, this one's and the namespaces' ([`Self::namespace_pods`]).
    pod_subs: PodSubscribers,
    lease_subs: Vec<futures::channel::mpsc::UnboundedSender<Arc<CachedLease>>>,
    client: kube::Client,
    pod_api: Api<CachedPod>,
    lease_api: Api<WatchedLease>,
    /// Changes are passed to subscribers only while this is set (a standby keeps its caches warm
    /// but runs no controller).
    forward: Arc<std::sync::atomic::AtomicBool>,
    /// Readiness of the pod and Lease caches (see [`crate::cache`]: not `wait_until_ready`).
    pub pods_synced: Synced,
    pub leases_synced: Synced,
    synced_tx: (SyncedTx, SyncedTx),
}

/// A reflector whose changes are passed to one subscriber only while `gate` is open; `synced`
/// turns true at its first complete list; `index`, if any, follows the store.
pub(super) fn gated_cache<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    (writer, index): (reflector::store::Writer<K>, Option<OwnerIndex<K>>),
    synced: SyncedTx,
    gate: Arc<std::sync::atomic::AtomicBool>,
) -> (Events<K>, impl Future<Output = ()> + Send + 'static)
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    let (tx, rx) = futures::channel::mpsc::unbounded();
    // The index sees each event before the store (see `OwnerIndex`).
    let reflected = stream
        .default_backoff()
        .inspect(move |e| {
            if let Some(index) = &index {
                index.observe(e);
            }
        })
        .reflect(writer);
    let changes = synced.track(reflected).touched_objects();
    (fan_in(rx), fan_out(changes, vec![tx], gate, "watch"))
}

fn fan_in<K: Send + 'static>(rx: futures::channel::mpsc::UnboundedReceiver<K>) -> Events<K> {
    rx.map(Ok).boxed()
}

impl SharedCaches {
    pub fn new(client: &kube::Client, namespace: &Option<String>) -> Self {
        let (pods, pod_writer) = reflector::store();
        let (leases, lease_writer) = crate::cache::leases::store();
        let ((pods_tx, pods_synced), (leases_tx, leases_synced)) = (synced(), synced());
        SharedCaches {
            pods,
            pod_owners: OwnerIndex::default(),
            leases,
            lease_index: Arc::default(),
            pod_writer,
            lease_writer,
            pod_subs: Arc::default(),
            lease_subs: Vec::new(),
            client: client.clone(),
            pod_api: api(client, namespace),
            lease_api: api(client, namespace),
            forward: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            pods_synced,
            leases_synced,
            synced_tx: (pods_tx, leases_tx),
        }
    }

    /// A stream of pod changes, of the Rollouts' pods and of the namespaces watched for
    /// ListenerSets (subscribe before [`drive`](Self::drive) and
    /// [`namespace_pods`](Self::namespace_pods)).
    pub fn pod_events(&mut self) -> Events<CachedPod> {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        self.pod_subs.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        fan_in(rx)
    }

    /// The pods of namespaces with a ListenerSet, each namespace watched while a set uses it;
    /// their changes go to the [`pod_events`](Self::pod_events) subscribers, through the
    /// forwarding gate (call after [`set_forwarding`](Self::set_forwarding)).
    pub fn namespace_pods(&self) -> NamespacePods {
        NamespacePods::watched(self.client.clone(), self.pod_subs.clone(), self.forward.clone())
    }

    /// A stream of listener Lease changes (subscribe before [`drive`](Self::drive)).
    pub fn lease_events(&mut self) -> Events<Arc<CachedLease>> {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        self.lease_subs.push(tx);
        fan_in(rx)
    }

    /// For the Rollout controller: does pod `name` of uid `uid` in `ns` hold a listener Lease?
    /// (An index lookup: the Lease cache is never scanned per pod.)
    pub fn listener_holders(&self) -> HoldsListeners {
        let index = self.lease_index.clone();
        Arc::new(move |ns: &str, _name: &str, uid: &str| index.holds_any(ns, uid))
    }

    /// Use `gate` as the switch that passes changes on to subscribers (default: always on).
    pub fn set_forwarding(&mut self, gate: Arc<std::sync::atomic::AtomicBool>) {
        self.forward = gate;
    }

    /// Run the watches until dropped.
    pub fn drive(self) -> impl Future<Output = ()> + Send + 'static {
        let (pods_tx, leases_tx) = self.synced_tx;
        let pod_owners = self.pod_owners;
        let pods = watcher(self.pod_api, watcher::Config::default().labels(labels::ROLLOUT))
            .default_backoff()
            .inspect(move |e| pod_owners.observe(e))
            .reflect(self.pod_writer)
            .inspect(move |e| pods_tx.observe(e))
            .touched_objects();
        let index = self.lease_index.clone();
        let mut lease_writer = self.lease_writer;
        let leases = watcher(self.lease_api, watcher::Config::default().labels(LISTENERSET_LABEL))
            .default_backoff()
            .map_ok(taken_in)
            .inspect_ok(move |ev| lease_writer.apply(ev))
            // The index follows the store, before the cache counts as synced.
            .inspect(move |e| {
                if let Ok(ev) = e {
                    index.apply(ev, tokio::time::Instant::now());
                }
            })
            .inspect(move |e| leases_tx.observe(e))
            .touched_objects();
        let pod_subs = self.pod_subs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let pods = fan_out(pods, pod_subs, self.forward.clone(), "pod watch");
        let leases = fan_out(leases, self.lease_subs, self.forward, "lease watch");
        async move {
            futures::join!(pods, leases);
        }
    }
}

/// Pass every change to each subscriber while `gate` is open.
fn fan_out<K: Clone + Send + 'static>(
    changes: impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    subscribers: Vec<futures::channel::mpsc::UnboundedSender<K>>,
    gate: Arc<std::sync::atomic::AtomicBool>,
    what: &'static str,
) -> impl Future<Output = ()> + Send + 'static {
    changes.for_each(move |r| {
        match r {
            Ok(obj) if gate.load(std::sync::atomic::Ordering::Relaxed) => {
                for s in &subscribers {
                    let _ = s.unbounded_send(obj.clone());
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "{what}"),
        }
        async {}
    })
}

/// For the Rollout controller: a listener Lease changed. If its owner pod is being drained, the
/// Rollout owning that pod should look again (it may be waiting for the pod to hold nothing). A
/// released Lease names no pod (the agent clears the holder and drops its pod's ownerReference,
/// so the Lease outlives the pod): it may be any draining pod's, so every Rollout with a
/// draining pod in the namespace looks again. A Lease the drained pod's agent handed straight to
/// a successor names that pod in `handed-over-from`, and its Rollout looks again.
pub fn draining_rollouts_of_lease(pods: &Store<CachedPod>, lease: &CachedLease) -> Vec<ObjectRef<Rollout>> {
    let Some(ns) = lease.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    let rollout_of = |pod: &CachedPod| -> Option<String> {
        if pod.metadata.namespace.as_deref() != Some(ns) || !is_draining(&pod.metadata) {
            return None;
        }
        let owners = pod.metadata.owner_references.iter().flatten();
        owners.into_iter().find(|o| o.kind == "Rollout").map(|o| o.name.clone())
    };
    let of_pod = |name: &str| pods.get(&ObjectRef::new(name).within(ns)).and_then(|p| rollout_of(&p));
    let mut names: BTreeSet<String> = match owner_pod(lease) {
        Some(owner) => of_pod(owner.name).into_iter().collect(),
        None if Holder::of(lease).is_none() => pods.state().iter().filter_map(|p| rollout_of(p)).collect(),
        None => BTreeSet::new(),
    };
    // Handed straight to a successor by the agent of the pod it came from: no released Lease
    // shows in between, so that pod's Rollout is woken by name.
    names.extend(lease.annotation(HANDED_OVER_FROM_ANNOTATION).and_then(of_pod));
    names.iter().map(|n| ObjectRef::new(n).within(ns)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::listenerset::lease::CachedOwner;
    use crate::api::pod::DRAIN_ANNOTATION;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod_with_drain(value: Option<&str>) -> CachedPod {
        CachedPod {
            metadata: ObjectMeta {
                name: Some("svc-0-abc".into()),
                namespace: Some("ns".into()),
                uid: Some("u0".into()),
                annotations: value.map(|v| [(DRAIN_ANNOTATION.to_string(), v.to_string())].into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: crate::api::API_VERSION.into(),
                    kind: "Rollout".into(),
                    name: "svc".into(),
                    uid: "r0".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn store_of(pods: Vec<CachedPod>) -> Store<CachedPod> {
        let (store, mut writer) = reflector::store();
        for p in pods {
            writer.apply_watcher_event(&watcher::Event::Apply(p));
        }
        store
    }

    fn rollout_woken(drain: Option<&str>) -> Vec<ObjectRef<Rollout>> {
        let store = store_of(vec![pod_with_drain(drain)]);
        let mut lease = CachedLease::default();
        lease.metadata.namespace = Some("ns".into());
        lease.owner = Some(CachedOwner {
            name: "svc-0-abc".into(),
            uid: "u0".into(),
        });
        draining_rollouts_of_lease(&store, &lease)
    }

    #[test]
    fn a_lease_change_wakes_the_rollout_of_a_draining_holder() {
        let woken = vec![ObjectRef::new("svc").within("ns")];
        assert_eq!(rollout_woken(Some("2026-01-01T00:00:00Z")), woken);
        assert_eq!(rollout_woken(Some("true")), woken);
        // "false" is not a drain, for this reader as for every other.
        assert_eq!(rollout_woken(Some("false")), vec![]);
        assert_eq!(rollout_woken(None), vec![]);
    }

    /// A Lease its holder's agent handed straight to a successor names the successor as owner,
    /// and the pod it came from in `handed-over-from`: that pod's Rollout looks again (it may be
    /// waiting for the drained pod to hold nothing).
    #[test]
    fn a_lease_handed_over_wakes_the_rollout_of_the_draining_pod_it_came_from() {
        let mut successor = pod_with_drain(None);
        successor.metadata.name = Some("svc-1-abc".into());
        let store = store_of(vec![pod_with_drain(Some("true")), successor]);
        let mut lease = CachedLease::default();
        lease.metadata.namespace = Some("ns".into());
        lease.spec.holder_identity = Some("svc-1-abc".into());
        lease.owner = Some(CachedOwner {
            name: "svc-1-abc".into(),
            uid: "u1".into(),
        });
        assert_eq!(draining_rollouts_of_lease(&store, &lease), vec![]);
        lease.annotations = [(HANDED_OVER_FROM_ANNOTATION, "svc-0-abc")].into_iter().collect();
        assert_eq!(
            draining_rollouts_of_lease(&store, &lease),
            vec![ObjectRef::new("svc").within("ns")]
        );
        // The pod it came from no longer draining: nothing waits.
        let store = store_of(vec![pod_with_drain(None)]);
        assert_eq!(draining_rollouts_of_lease(&store, &lease), vec![]);
    }

    /// A released Lease has neither holder nor owner pod: every Rollout with a draining pod in
    /// its namespace looks again (the one whose pod released it may be waiting for it).
    #[test]
    fn a_released_lease_wakes_every_rollout_with_a_draining_pod_in_its_namespace() {
        let mut other = pod_with_drain(Some("true"));
        other.metadata.name = Some("web-0-abc".into());
        if let Some(o) = other.metadata.owner_references.as_mut().and_then(|o| o.first_mut()) {
            o.name = "web".into();
        }
        let mut elsewhere = pod_with_drain(Some("true"));
        elsewhere.metadata.namespace = Some("other".into());
        let store = store_of(vec![pod_with_drain(Some("true")), other, elsewhere, {
            let mut p = pod_with_drain(None);
            p.metadata.name = Some("idle-0-abc".into());
            p
        }]);
        let mut released = CachedLease::default();
        released.metadata.namespace = Some("ns".into());
        assert_eq!(
            draining_rollouts_of_lease(&store, &released),
            vec![ObjectRef::new("svc").within("ns"), ObjectRef::new("web").within("ns")]
        );
        // A Lease naming a holder but no owner pod (not the controller's) wakes nothing.
        released.spec.holder_identity = Some("someone".into());
        assert_eq!(draining_rollouts_of_lease(&store, &released), vec![]);
    }
}
