//! Per-object series, labelled `namespace` and `name`. The gauges are computed from the
//! controller's caches while a scrape encodes them, and exist only then (so a deleted object's
//! series go with it, and thousands of Rollouts cost no memory between scrapes: `scrape`); the
//! counters and the gap histogram of a ListenerSet are kept while it exists and dropped with it.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::api::listenerset::lease::CachedLease;
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::gaps::Gaps;
use crate::api::listenerset::{ListenerSet, EVENT_HANDOVER, EVENT_TAKEOVER};
use crate::api::rollout::Rollout;

mod scrape;

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ObjectLabels {
    pub namespace: String,
    pub name: String,
}

fn object(ns: &str, name: &str) -> ObjectLabels {
    ObjectLabels {
        namespace: ns.to_string(),
        name: name.to_string(),
    }
}

/// Buckets of the handover gap (seconds): the design's target is p99 < 250 ms.
fn gap_histogram() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

/// How many pods the watch caches hold now.
pub type PodCount = Arc<dyn Fn() -> usize + Send + Sync>;

/// The caches a scrape reads: one of each kind per watched namespace (or one for all).
#[derive(Default)]
struct Stores {
    rollouts: Vec<Store<Rollout>>,
    sets: Vec<Store<ListenerSet>>,
    /// Count the pods of the watch caches.
    pods: Vec<PodCount>,
}

/// The per-object metrics: cheap to clone (one shared state), registered as a collector.
#[derive(Clone, Default)]
pub struct Objects(Arc<State>);

struct State {
    stores: Mutex<Stores>,
    handovers: Family<ObjectLabels, Counter>,
    takeovers: Family<ObjectLabels, Counter>,
    conflicts: Family<ObjectLabels, Counter>,
    rebalance_moves: Family<ObjectLabels, Counter>,
    gap: Family<ObjectLabels, Histogram>,
    /// ListenerSets that have counter series.
    counted: Mutex<BTreeSet<ObjectLabels>>,
    /// Each Rollout's phase and since when the controller has seen it.
    phases: Mutex<HashMap<ObjectLabels, (String, Instant)>>,
    gaps: Gaps,
}

impl Default for State {
    fn default() -> State {
        State {
            stores: Mutex::default(),
            handovers: Family::default(),
            takeovers: Family::default(),
            conflicts: Family::default(),
            rebalance_moves: Family::default(),
            gap: Family::new_with_constructor(gap_histogram),
            counted: Mutex::default(),
            phases: Mutex::default(),
            gaps: Gaps::default(),
        }
    }
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").finish_non_exhaustive()
    }
}

impl Objects {
    /// Register the per-object metrics in `r`: they are encoded by [`Objects`] as a collector,
    /// after the families registered before.
    pub fn register(&self, r: &mut Registry) {
        r.register_collector(Box::new(self.clone()));
    }

    fn with_stores<R>(&self, f: impl FnOnce(&mut Stores) -> R) -> R {
        f(&mut self.0.stores.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn watch_rollouts(&self, store: Store<Rollout>) {
        self.with_stores(|s| s.rollouts.push(store));
    }

    pub fn watch_listener_sets(&self, sets: Store<ListenerSet>) {
        self.with_stores(|s| s.sets.push(sets));
    }

    /// What `baton_cached_pods` reads.
    pub fn watch_pods(&self, count: PodCount) {
        self.with_stores(|s| s.pods.push(count));
    }

    /// The controller is about to reconcile `r`: note when its phase changed.
    pub fn observe_phase(&self, r: &Rollout) {
        let phase = phase_of(r);
        let key = object(&r.namespace().unwrap_or_default(), &r.name_any());
        let mut phases = self.0.phases.lock().unwrap_or_else(|p| p.into_inner());
        match phases.get(&key) {
            Some((p, _)) if *p == phase => {}
            _ => {
                phases.insert(key, (phase, Instant::now()));
            }
        }
    }

    fn counted(&self, ns: &str, set: &str) -> ObjectLabels {
        let key = object(ns, set);
        self.0
            .counted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        key
    }

    /// An assignment of set `ns/set` was written, with Event reason `reason`.
    pub fn listener_assigned(&self, ns: &str, set: &str, reason: &str) {
        let key = self.counted(ns, set);
        if reason == EVENT_HANDOVER {
            self.0.handovers.get_or_create(&key).inc();
        } else if reason == EVENT_TAKEOVER {
            self.0.takeovers.get_or_create(&key).inc();
        }
    }

    /// `n` listeners of set `ns/set` were asked to move to even out loads.
    pub fn rebalanced(&self, ns: &str, set: &str, n: u32) {
        let key = self.counted(ns, set);
        self.0.rebalance_moves.get_or_create(&key).inc_by(u64::from(n));
    }

    /// A Lease write of set `ns/set` lost to a concurrent change.
    pub fn fencing_conflict(&self, ns: &str, set: &str) {
        let key = self.counted(ns, set);
        self.0.conflicts.get_or_create(&key).inc();
    }

    /// A handover gap of set `ns/set` the Lease's own times recorded (a handover by the holder's
    /// agent, first seen already acknowledged).
    pub fn handover_gap(&self, ns: &str, set: &str, gap: std::time::Duration) {
        let key = self.counted(ns, set);
        self.0.gap.get_or_create(&key).observe(gap.as_secs_f64());
    }

    /// The Leases of set `ns/set` that changed since its last reconcile, and which of its
    /// listeners have a Lease (see [`super::gaps::Gaps::observe`]): ends handover gaps.
    pub fn observe_leases(&self, ns: &str, set: &str, changed: &[Arc<CachedLease>], present: impl Fn(&str) -> bool) {
        let ended = self.0.gaps.observe(ns, set, changed, present, Instant::now());
        if ended.is_empty() {
            return;
        }
        let key = self.counted(ns, set);
        let h = self.0.gap.get_or_create(&key);
        for g in ended {
            h.observe(g.as_secs_f64());
        }
    }
}

/// The phase of a Rollout, `Pending` before its first status.
fn phase_of(r: &Rollout) -> String {
    r.status
        .as_ref()
        .and_then(|s| s.phase)
        .map(|p| p.to_string())
        .unwrap_or_else(|| "Pending".into())
}

#[cfg(test)]
mod tests;
