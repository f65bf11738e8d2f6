//! Per-object series, labelled `namespace` and `name`. The gauges are computed from the
//! controller's caches at each scrape (so a deleted object's series go with it); the counters
//! and the gap histogram of a ListenerSet are kept while it exists and dropped with it.
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::gaps::Gaps;
use super::PhaseLabel;
use crate::api::listenerset::{ListenerSet, EVENT_HANDOVER, EVENT_TAKEOVER};
use crate::api::rollout::{Rollout, RolloutPhase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ObjectLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectValueLabels {
    pub namespace: String,
    pub name: String,
    /// A phase, a version or a state, by family.
    #[prometheus(flatten)]
    pub value: ValueLabel,
}

/// The third label of a per-object family.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ValueLabel {
    pub key: &'static str,
    pub value: String,
}

impl EncodeLabelSet for ValueLabel {
    fn encode(&self, mut encoder: prometheus_client::encoding::LabelSetEncoder) -> Result<(), std::fmt::Error> {
        prometheus_client::encoding::EncodeLabel::encode(&(self.key, self.value.as_str()), encoder.encode_label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutInfoLabels {
    pub namespace: String,
    pub name: String,
    /// The version that serves (`status.version`).
    pub version: String,
    /// The version being rolled out (`spec.version`).
    pub target_version: String,
    pub current_revision: String,
    pub update_revision: String,
}

fn object(ns: &str, name: &str) -> ObjectLabels {
    ObjectLabels {
        namespace: ns.to_string(),
        name: name.to_string(),
    }
}

fn valued(o: &ObjectLabels, key: &'static str, value: impl Into<String>) -> ObjectValueLabels {
    ObjectValueLabels {
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        value: ValueLabel {
            key,
            value: value.into(),
        },
    }
}

/// Buckets of the handover gap (seconds): the design's target is p99 < 250 ms.
fn gap_histogram() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

/// How many pods the watch caches hold now.
pub type PodCount = Arc<dyn Fn() -> usize + Send + Sync>;

#[derive(Default)]
struct Stores {
    rollouts: Option<Store<Rollout>>,
    sets: Option<Store<ListenerSet>>,
    /// Counts the pods of the watch caches.
    pods: Option<PodCount>,
}

pub struct Objects {
    stores: Mutex<Stores>,
    cached_pods: Gauge,
    rollouts_by_phase: Family<PhaseLabel, Gauge>,
    rollout_info: Family<RolloutInfoLabels, Gauge>,
    rollout_phase: Family<ObjectValueLabels, Gauge>,
    rollout_phase_seconds: Family<ObjectValueLabels, Gauge<f64, AtomicU64>>,
    rollout_instances: Family<ObjectValueLabels, Gauge>,
    rollout_replicas: Family<ObjectValueLabels, Gauge>,
    rollout_batch: Family<ObjectLabels, Gauge>,
    rollout_batches: Family<ObjectLabels, Gauge>,
    listeners: Family<ObjectValueLabels, Gauge>,
    handovers: Family<ObjectLabels, Counter>,
    takeovers: Family<ObjectLabels, Counter>,
    conflicts: Family<ObjectLabels, Counter>,
    gap: Family<ObjectLabels, Histogram>,
    /// ListenerSets that have counter series.
    counted: Mutex<BTreeSet<ObjectLabels>>,
    /// Each Rollout's phase and since when the controller has seen it.
    phases: Mutex<HashMap<ObjectLabels, (String, Instant)>>,
    gaps: Gaps,
}

/// The per-object families, not registered yet (see [`Objects::register`]).
impl Default for Objects {
    fn default() -> Objects {
        Objects {
            stores: Mutex::default(),
            cached_pods: Gauge::default(),
            rollouts_by_phase: Family::default(),
            rollout_info: Family::default(),
            rollout_phase: Family::default(),
            rollout_phase_seconds: Family::default(),
            rollout_instances: Family::default(),
            rollout_replicas: Family::default(),
            rollout_batch: Family::default(),
            rollout_batches: Family::default(),
            listeners: Family::default(),
            handovers: Family::default(),
            takeovers: Family::default(),
            conflicts: Family::default(),
            gap: Family::new_with_constructor(gap_histogram),
            counted: Mutex::default(),
            phases: Mutex::default(),
            gaps: Gaps::default(),
        }
    }
}

impl Objects {
    /// Register every per-object family in `r`.
    pub fn register(&self, r: &mut Registry) {
        let o = self;
        r.register("rollouts", "Rollouts per phase", o.rollouts_by_phase.clone());
        r.register(
            "cached_pods",
            "Pods held in the watch caches: the Rollouts' pods, and the pods of each namespace with a ListenerSet",
            o.cached_pods.clone(),
        );
        r.register(
            "rollout_info",
            "1 per Rollout, labelled with the serving and target versions and the current and update revisions",
            o.rollout_info.clone(),
        );
        r.register(
            "rollout_phase",
            "1 for the Rollout's phase, 0 for the others",
            o.rollout_phase.clone(),
        );
        r.register(
            "rollout_phase_seconds",
            "Seconds since the controller saw the Rollout enter its phase",
            o.rollout_phase_seconds.clone(),
        );
        r.register(
            "rollout_instances",
            "Instances per version",
            o.rollout_instances.clone(),
        );
        r.register(
            "rollout_replicas",
            "Instances by state: desired, current, updated, ready, available",
            o.rollout_replicas.clone(),
        );
        r.register(
            "rollout_batch",
            "The batch being rolled out (1-based; the last once done)",
            o.rollout_batch.clone(),
        );
        r.register("rollout_batches", "Batches of the rollout", o.rollout_batches.clone());
        r.register(
            "listenerset_listeners",
            "Listeners by state: running, starting, pending, orphaned, suspended",
            o.listeners.clone(),
        );
        r.register(
            "listener_handovers",
            "Listeners handed over from a holder that released them",
            o.handovers.clone(),
        );
        r.register(
            "listener_takeovers",
            "Listeners taken over from a holder that was gone or whose Lease expired",
            o.takeovers.clone(),
        );
        r.register(
            "listener_fencing_conflicts",
            "Lease writes refused because the Lease (and its fencing token) changed since it was read",
            o.conflicts.clone(),
        );
        r.register(
            "listener_handover_gap_seconds",
            "From the release of a listener's Lease to the new holder's first renewal, as the controller saw them",
            o.gap.clone(),
        );
    }

    fn with_stores<R>(&self, f: impl FnOnce(&mut Stores) -> R) -> R {
        f(&mut self.stores.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn watch_rollouts(&self, store: Store<Rollout>) {
        self.with_stores(|s| s.rollouts = Some(store));
    }

    pub fn watch_listener_sets(&self, sets: Store<ListenerSet>) {
        self.with_stores(|s| s.sets = Some(sets));
    }

    /// What `baton_cached_pods` reads.
    pub fn watch_pods(&self, count: PodCount) {
        self.with_stores(|s| s.pods = Some(count));
    }

    /// The controller is about to reconcile `r`: note when its phase changed.
    pub fn observe_phase(&self, r: &Rollout) {
        let phase = phase_of(r);
        let key = object(&r.namespace().unwrap_or_default(), &r.name_any());
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        match phases.get(&key) {
            Some((p, _)) if *p == phase => {}
            _ => {
                phases.insert(key, (phase, Instant::now()));
            }
        }
    }

    fn counted(&self, ns: &str, set: &str) -> ObjectLabels {
        let key = object(ns, set);
        self.counted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        key
    }

    /// An assignment of set `ns/set` was written, with Event reason `reason`.
    pub fn listener_assigned(&self, ns: &str, set: &str, reason: &str) {
        let key = self.counted(ns, set);
        if reason == EVENT_HANDOVER {
            self.handovers.get_or_create(&key).inc();
        } else if reason == EVENT_TAKEOVER {
            self.takeovers.get_or_create(&key).inc();
        }
    }

    /// A Lease write of set `ns/set` lost to a concurrent change.
    pub fn fencing_conflict(&self, ns: &str, set: &str) {
        let key = self.counted(ns, set);
        self.conflicts.get_or_create(&key).inc();
    }

    /// The Leases of set `ns/set` as a reconcile reads them: ends handover gaps.
    pub fn observe_leases(&self, ns: &str, set: &str, leases: &[Arc<Lease>]) {
        let ended = self.gaps.observe(ns, set, leases, Instant::now());
        if ended.is_empty() {
            return;
        }
        let key = self.counted(ns, set);
        let h = self.gap.get_or_create(&key);
        for g in ended {
            h.observe(g.as_secs_f64());
        }
    }

    /// Drop the per-object gauges once encoded: they are recomputed at each scrape, and are
    /// not kept in memory between scrapes (thousands of Rollouts make tens of thousands).
    pub fn release(&self) {
        for f in [
            &self.rollout_phase,
            &self.rollout_instances,
            &self.rollout_replicas,
            &self.listeners,
        ] {
            f.clear();
        }
        self.rollout_phase_seconds.clear();
        self.rollout_info.clear();
        self.rollout_batch.clear();
        self.rollout_batches.clear();
    }

    /// Recompute the per-object gauges from the caches; drop the series of deleted objects.
    pub fn refresh(&self) {
        let (rollouts, sets, pods) = self.with_stores(|s| (s.rollouts.clone(), s.sets.clone(), s.pods.clone()));
        if let Some(count) = pods {
            self.cached_pods.set(i64::try_from(count()).unwrap_or(i64::MAX));
        }
        if let Some(store) = rollouts {
            self.refresh_rollouts(&store.state());
        }
        if let Some(store) = sets {
            self.refresh_sets(&store.state());
        }
    }

    fn refresh_rollouts(&self, rollouts: &[Arc<Rollout>]) {
        for f in [&self.rollout_phase, &self.rollout_instances, &self.rollout_replicas] {
            f.clear();
        }
        self.rollout_phase_seconds.clear();
        self.rollouts_by_phase.clear();
        self.rollout_info.clear();
        self.rollout_batch.clear();
        self.rollout_batches.clear();
        let mut live = BTreeSet::new();
        for r in rollouts {
            self.observe_phase(r);
            let key = object(&r.namespace().unwrap_or_default(), &r.name_any());
            live.insert(key.clone());
            self.refresh_rollout(&key, r);
        }
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        phases.retain(|k, _| live.contains(k));
        for (k, (phase, since)) in phases.iter() {
            self.rollout_phase_seconds
                .get_or_create(&valued(k, "phase", phase.clone()))
                .set(since.elapsed().as_secs_f64());
        }
    }

    fn refresh_rollout(&self, key: &ObjectLabels, r: &Rollout) {
        let st = r.status.clone().unwrap_or_default();
        let phase = phase_of(r);
        self.rollouts_by_phase
            .get_or_create(&PhaseLabel { phase: phase.clone() })
            .inc();
        for p in RolloutPhase::ALL {
            self.rollout_phase
                .get_or_create(&valued(key, "phase", p.as_str()))
                .set(i64::from(p.as_str() == phase));
        }
        self.rollout_info
            .get_or_create(&RolloutInfoLabels {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                version: st.version.clone().unwrap_or_default(),
                target_version: r.spec.version.clone(),
                current_revision: st.current_revision.clone().unwrap_or_default(),
                update_revision: st.update_revision.clone().unwrap_or_default(),
            })
            .set(1);
        for (v, n) in &st.versions {
            self.rollout_instances
                .get_or_create(&valued(key, "version", v.clone()))
                .set(i64::from(*n));
        }
        for (state, n) in [
            ("desired", r.spec.replicas),
            ("current", st.replicas),
            ("updated", st.updated_replicas),
            ("ready", st.ready_replicas),
            ("available", st.available_replicas),
        ] {
            self.rollout_replicas
                .get_or_create(&valued(key, "state", state))
                .set(i64::from(n));
        }
        if let Some(b) = &st.batch {
            self.rollout_batch.get_or_create(key).set(i64::from(b.current));
            self.rollout_batches.get_or_create(key).set(i64::from(b.total));
        }
    }

    fn refresh_sets(&self, sets: &[Arc<ListenerSet>]) {
        self.listeners.clear();
        let mut live = BTreeSet::new();
        for s in sets {
            let key = object(&s.namespace().unwrap_or_default(), &s.name_any());
            let st = s.status.clone().unwrap_or_default();
            for (state, n) in [
                // Running: its holder renewed the Lease since the assignment; starting: not yet.
                ("running", st.running),
                ("starting", st.starting),
                ("pending", st.pending),
                ("orphaned", st.orphaned),
                ("suspended", st.suspended),
            ] {
                self.listeners
                    .get_or_create(&valued(&key, "state", state))
                    .set(i64::from(n));
            }
            live.insert(key);
        }
        let mut counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        for gone in counted.iter().filter(|k| !live.contains(*k)) {
            self.handovers.remove(gone);
            self.takeovers.remove(gone);
            self.conflicts.remove(gone);
            self.gap.remove(gone);
        }
        counted.retain(|k| live.contains(k));
        self.gaps.retain(|ns, set| live.contains(&object(ns, set)));
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
