//! What every reconcile of the ListenerSet controller shares: its settings
//! ([`ControllerConfig`]), the caches and memory it reads and keeps ([`Context`]), the views of
//! caches it shares with the Rollout controller ([`SharedViews`]), and the pods the kubelet
//! reported stopped ([`StoppedPods`]).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::listenerset::lease::CachedLease;
use futures::StreamExt;
use kube::runtime::reflector::Store;

use super::collisions;
use super::confirmations;
use super::index::LeaseIndex;
use super::liveness::LivenessTracker;
use super::secrets::{SecretAccess, SecretStores};
use super::stats::Stats;
use crate::api::pod::CachedPod;
use crate::backoff::Backoff;
use crate::cache::leases::LeaseStore;
use crate::cache::namespaces::NamespacePods;
use crate::cache::{Events, Synced};
use crate::events::Publisher;
use crate::listeners::decide::{Decision, Memory, PodFacts, Unresponsive, UnseenWrites};
use crate::metrics::Metrics;

/// Settings of the ListenerSet controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Namespace to watch; None = all.
    pub namespace: Option<String>,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Reporting instance for events.
    pub instance: String,
    /// Which Secrets it reads (what RBAC grants it).
    pub secrets: SecretAccess,
    /// Reconcile only the ListenerSets this label selector matches (a shard); None = all.
    pub selector: Option<String>,
    /// Retries of notifications.
    pub notify: crate::webhooks::Config,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            concurrency: 8,
            instance: "baton".into(),
            secrets: SecretAccess::All,
            selector: None,
            notify: crate::webhooks::Config::default(),
        }
    }
}

/// (namespace, name) of a ListenerSet.
pub(super) type SetKey = (String, String);

/// What a reconcile needs.
pub struct Context {
    pub client: kube::Client,
    pub events: Publisher,
    /// The pods of the sets' namespaces (each watched while a set uses it).
    pub pods: NamespacePods,
    pub leases: LeaseStore,
    /// The listener Leases by set and holder, and when each holder record was first seen.
    pub index: Arc<LeaseIndex>,
    /// The pods' liveness Leases.
    pub liveness: Arc<LivenessTracker>,
    /// When this controller started watching (a fresh controller waits a lease duration before
    /// judging anything expired that it has not seen renewed).
    pub started: tokio::time::Instant,
    pub secrets: SecretStores,
    /// The Rollouts, when the Rollout controller runs beside ([`SharedViews::rollouts`]).
    pub rollouts: Option<Store<crate::api::rollout::Rollout>>,
    /// (namespace, set) → what the decisions remember of the set (see [`Memory`]).
    pub(super) memory: Mutex<HashMap<(String, String), Memory>>,
    /// (namespace, set) → the listeners its spec asks for, as last resolved.
    pub(super) desired: super::desired::DesiredCache,
    /// (namespace, set) → its listener Leases as its last decision read them.
    pub(super) lease_facts: Arc<super::facts::LeaseFactsCache>,
    /// The sets' status writes, each set's in order (see [`super::statuses`]).
    pub(super) statuses: super::statuses::StatusWrites,
    /// When each set may be decided again (see [`super::pacing`]).
    pub(super) pacing: super::pacing::Pacing,
    /// The release requests on their way that no pass waits for (see [`super::requests`]).
    pub(super) in_flight: super::requests::InFlight,
    /// (namespace, set) → the set's Lease writes its cache has not shown yet.
    pub(super) written: Mutex<HashMap<SetKey, UnseenWrites<Arc<CachedLease>>>>,
    /// Listener Lease names taken by Leases that are not the set's (see [`collisions`]).
    pub(super) collisions: collisions::Collisions,
    /// The pods the API server confirmed for assignments (see [`confirmations`]).
    pub(super) confirmations: confirmations::Confirmations,
    /// Pods whose agents let a Lease of any set expire (see [`Unresponsive`]).
    pub(super) unresponsive: Mutex<Unresponsive>,
    /// Pods the kubelet reported stopped, by uid (see [`StoppedPods`]).
    pub(super) stopped: StoppedPods,
    pub stats: Arc<Stats>,
    /// Readiness of the Secret, pod and Lease caches: no decision is made before all three
    /// hold their first list (see [`crate::cache`] for why not `Store::wait_until_ready`).
    pub synced: Vec<Synced>,
    /// Per-set exponential backoff of failing reconciles.
    pub backoff: Backoff,
    /// Per-set handovers, takeovers, fencing conflicts and handover gaps.
    pub metrics: Arc<Metrics>,
    /// The notification queues of every set (see [`crate::webhooks`]).
    pub notifier: Arc<crate::webhooks::Notifier>,
}

impl Context {
    /// Run `f` on the memory of set `set` in `ns`.
    pub(super) fn with_memory<T>(&self, ns: &str, set: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry((ns.to_string(), set.to_string())).or_default())
    }

    /// Run `f` on the Lease writes of set `set` in `ns` that the cache has not shown yet.
    pub(super) fn with_expectations<T>(
        &self,
        ns: &str,
        set: &str,
        f: impl FnOnce(&mut UnseenWrites<Arc<CachedLease>>) -> T,
    ) -> T {
        let mut m = self.written.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry((ns.to_string(), set.to_string())).or_default())
    }

    /// The pods known unresponsive now.
    pub(super) fn unresponsive(&self) -> Unresponsive {
        self.unresponsive.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Learn from `decision` about `pods` (of namespace `ns`) which pods are unresponsive,
    /// forgetting pods that are gone.
    pub(super) fn learn_unresponsive(&self, ns: &str, decision: &Decision, pods: &[PodFacts]) {
        let live = self.pods.uids();
        let mut u = self.unresponsive.lock().unwrap_or_else(|p| p.into_inner());
        u.learn(decision, pods, |uid| self.liveness.registered(ns, uid));
        u.retain(|uid| live.contains(uid));
    }

    /// Forget a deleted set.
    pub(super) fn forget(&self, ns: &str, set: &str) {
        let key = (ns.to_string(), set.to_string());
        self.memory.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        self.written.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        self.statuses.forget(&key);
        self.pacing.forget(&key);
        self.desired.forget(&key);
        self.lease_facts.forget(&key);
        self.index.forget_set(ns, set);
        self.pods.release(ns, set);
        self.collisions.forget(ns, set);
    }
}

/// Pods the kubelet reported stopped ([`crate::api::pod::has_stopped`]), by uid, with when that
/// was seen: kept after the pods are gone (a gracefully deleted pod's last state shows every
/// container terminated), because only that proves its listeners stopped; a force-deleted pod's
/// last state does not. Forgotten after [`STOPPED_MEMORY`].
#[derive(Clone, Default)]
pub(super) struct StoppedPods(Arc<Mutex<HashMap<String, tokio::time::Instant>>>);

/// How long a stopped pod is remembered (far longer than any lease that could still name it).
const STOPPED_MEMORY: Duration = Duration::from_secs(3600);

impl StoppedPods {
    /// Note `pod`'s state as seen on the watch.
    pub(super) fn note(&self, pod: &CachedPod) {
        let Some(uid) = pod.metadata.uid.as_ref() else { return };
        if !pod.has_stopped() {
            return;
        }
        let now = tokio::time::Instant::now();
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(uid.clone(), now);
        m.retain(|_, seen| now.saturating_duration_since(*seen) < STOPPED_MEMORY);
    }

    /// `pod_events`, each pod noted on its way.
    pub(super) fn noting(&self, pod_events: Events<CachedPod>) -> Events<CachedPod> {
        let stopped = self.clone();
        pod_events
            .inspect(move |r| {
                if let Ok(p) = r {
                    stopped.note(p);
                }
            })
            .boxed()
    }

    /// The uids of every pod known stopped.
    pub(super) fn uids(&self) -> std::collections::BTreeSet<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

/// What the ListenerSet controller reads from caches it may share with other controllers (the
/// operator's): the pod and Lease stores, their change streams, and their readiness.
pub struct SharedViews {
    /// Where the pods of a set's namespace are read.
    pub pods: NamespacePods,
    /// Changes of the pods `pods` holds (others may pass too).
    pub pod_events: Events<CachedPod>,
    pub leases: LeaseStore,
    /// The listener Leases by set and holder, following `leases`; it wakes the sets whose
    /// Leases changed in a way a decision reads.
    pub index: Arc<LeaseIndex>,
    /// The Rollout controller's cache, when it runs beside (evening out reads whether a Rollout
    /// whose pods run two revisions is settled).
    pub rollouts: Option<Store<crate::api::rollout::Rollout>>,
    /// Readiness of `leases` (a namespace's pods are waited for by the set's reconcile).
    pub synced: Vec<Synced>,
}
