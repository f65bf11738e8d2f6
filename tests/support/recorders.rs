//! Recorders that watch a Rollout's statuses and pods, so tests can assert on every
//! intermediate state.
#![allow(dead_code)]
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use baton::api::rollout::{labels, RolloutStatus};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::ResourceExt;
use tokio::task::JoinHandle;

use super::{pod_slot, wait, Env, LONG};

/// Records every status a watcher sees on a Rollout.
/// Status snapshots with the generation they were observed at.
pub type Snapshots = Arc<Mutex<Vec<(Option<i64>, RolloutStatus)>>>;

pub struct StatusRecorder {
    pub snapshots: Snapshots,
    /// The watch's initial list is in (see [`StatusRecorder::wait_synced`]).
    synced: Arc<std::sync::atomic::AtomicBool>,
    handle: JoinHandle<()>,
}

impl StatusRecorder {
    pub fn start(env: &Env, name: &str) -> StatusRecorder {
        let api = env.rollouts();
        let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let snapshots: Snapshots = Arc::default();
        let out = snapshots.clone();
        let synced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = synced.clone();
        let handle = tokio::spawn(async move {
            let mut stream = std::pin::pin!(kube::runtime::WatchStreamExt::default_backoff(watcher(api, cfg)));
            while let Some(ev) = stream.next().await {
                let r = match ev {
                    Ok(watcher::Event::Apply(r)) | Ok(watcher::Event::InitApply(r)) => r,
                    Ok(watcher::Event::InitDone) => {
                        done.store(true, std::sync::atomic::Ordering::SeqCst);
                        continue;
                    }
                    _ => continue,
                };
                if let Some(st) = r.status.clone() {
                    let mut g = out.lock().unwrap();
                    if g.last().is_none_or(|(_, last)| *last != st) {
                        g.push((r.metadata.generation, st));
                    }
                }
            }
        });
        StatusRecorder {
            snapshots,
            synced,
            handle,
        }
    }

    /// Wait until the recorder's watch has listed the Rollout: every status written after this
    /// is recorded (a recorder that starts late sees only the status of its first list).
    pub async fn wait_synced(&self) {
        let synced = &self.synced;
        wait::poll("the status recorder's first list", LONG, wait::POLL, || async move {
            if synced.load(std::sync::atomic::Ordering::SeqCst) {
                Ok(())
            } else {
                Err(())
            }
        })
        .await
        .unwrap_or_else(|(m, ())| panic!("{m}"));
    }

    pub fn take(&self) -> Vec<(Option<i64>, RolloutStatus)> {
        self.snapshots.lock().unwrap().clone()
    }
}

impl Drop for StatusRecorder {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// What [`PodRecorder`] has seen.
#[derive(Debug, Default, Clone)]
pub struct PodHistory {
    /// Pods that exist right now: name → (uid, slot).
    pub present: BTreeMap<String, (String, i32)>,
    /// Every uid ever seen per pod name.
    pub uids_by_name: BTreeMap<String, BTreeSet<String>>,
    /// Most pods (terminating included) ever seen in one slot, per slot.
    pub max_per_slot: BTreeMap<i32, usize>,
    /// Most pods (terminating included) ever seen at once.
    pub max_total: usize,
    /// Pods being deleted (deletionTimestamp set) that still exist.
    pub terminating: BTreeSet<String>,
    /// Most live pods (terminating not included) ever seen in one slot, per slot.
    pub max_live_per_slot: BTreeMap<i32, usize>,
    /// Most live pods (terminating not included) ever seen at once: what `maxSurge` bounds
    /// under `podReplacementPolicy: TerminationStarted`.
    pub max_live_total: usize,
    /// Pods in the order their deletion started (deletionTimestamp set, or gone).
    pub deletions: Vec<String>,
    /// Pods in the order they were created (after the recorder started).
    pub creations: Vec<String>,
    /// The first list is done.
    pub listed: bool,
}

impl PodHistory {
    fn observe(&mut self, p: &Pod, initial: bool) {
        let name = p.name_any();
        let uid = p.uid().unwrap_or_default();
        if self.uids_by_name.entry(name.clone()).or_default().insert(uid.clone()) && !initial {
            self.creations.push(name.clone());
        }
        if p.metadata.deletion_timestamp.is_some() {
            self.terminating.insert(name.clone());
            if !self.deletions.contains(&name) {
                self.deletions.push(name.clone());
            }
        }
        self.present.insert(name, (uid, pod_slot(p)));
        self.measure();
    }

    fn gone(&mut self, p: &Pod) {
        let name = p.name_any();
        if !self.deletions.contains(&name) {
            self.deletions.push(name.clone());
        }
        self.present.remove(&name);
        self.terminating.remove(&name);
    }

    fn measure(&mut self) {
        let mut per_slot: BTreeMap<i32, usize> = BTreeMap::new();
        for (_, slot) in self.present.values() {
            *per_slot.entry(*slot).or_default() += 1;
        }
        for (slot, n) in per_slot {
            let max = self.max_per_slot.entry(slot).or_default();
            *max = (*max).max(n);
        }
        self.max_total = self.max_total.max(self.present.len());
        let mut live_per_slot: BTreeMap<i32, usize> = BTreeMap::new();
        for (name, (_, slot)) in &self.present {
            if !self.terminating.contains(name) {
                *live_per_slot.entry(*slot).or_default() += 1;
            }
        }
        self.max_live_total = self.max_live_total.max(live_per_slot.values().sum());
        for (slot, n) in live_per_slot {
            let max = self.max_live_per_slot.entry(slot).or_default();
            *max = (*max).max(n);
        }
    }

    /// Pod names that were created more than once (distinct uids).
    pub fn recreated(&self) -> Vec<String> {
        self.uids_by_name
            .iter()
            .filter(|(_, uids)| uids.len() > 1)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// What a surge of one guarantees: never more than 2 live pods in a slot (old and new),
    /// never more than `max_live` live pods at once, and no pod name created twice.
    pub fn assert_surge_of_one(&self, max_live: usize) {
        assert!(
            self.max_live_per_slot.values().all(|n| *n <= 2),
            "a slot had more than 2 live pods: {:?}",
            self.max_live_per_slot
        );
        assert!(
            self.max_live_total <= max_live,
            "more than replicas + maxSurge ({max_live}) live pods at once: {}",
            self.max_live_total
        );
        assert!(
            self.recreated().is_empty(),
            "pod names created twice: {:?}",
            self.recreated()
        );
    }
}

/// Watches the pods of a Rollout and records counts per slot and in total at every change.
pub struct PodRecorder {
    pub history: Arc<Mutex<PodHistory>>,
    handle: JoinHandle<()>,
}

impl PodRecorder {
    /// Starts watching; returns once the initial list has been seen.
    pub async fn start(env: &Env, name: &str) -> PodRecorder {
        let api = env.pods_api();
        let cfg = watcher::Config::default().labels(&format!("{}={name}", labels::ROLLOUT));
        let history: Arc<Mutex<PodHistory>> = Arc::default();
        let out = history.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut stream = std::pin::pin!(kube::runtime::WatchStreamExt::default_backoff(watcher(api, cfg)));
            while let Some(ev) = stream.next().await {
                let mut h = out.lock().unwrap();
                match ev {
                    Ok(watcher::Event::Init) => {
                        h.present.clear();
                        h.terminating.clear();
                    }
                    Ok(watcher::Event::InitApply(p)) => {
                        let initial = !h.listed;
                        h.observe(&p, initial)
                    }
                    Ok(watcher::Event::Apply(p)) => h.observe(&p, false),
                    Ok(watcher::Event::Delete(p)) => h.gone(&p),
                    Ok(watcher::Event::InitDone) => {
                        h.listed = true;
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Err(_) => {}
                }
            }
        });
        tokio::time::timeout(LONG, ready_rx)
            .await
            .expect("pod watch lists within the deadline")
            .expect("pod recorder alive");
        PodRecorder { history, handle }
    }

    pub fn take(&self) -> PodHistory {
        self.history.lock().unwrap().clone()
    }
}

impl Drop for PodRecorder {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
