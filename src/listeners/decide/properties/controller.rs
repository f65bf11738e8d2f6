//! The simulated controller: its watch's observations (the Lease index: when each holder record
//! was first seen; the liveness tracker: when each agent was last seen writing its liveness
//! Lease, kept after the Lease is gone), its caches, and a reconcile as the shell makes it.
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tokio::time::Instant;

use super::super::*;
use super::agent::D;
use super::check_decision;
use super::world::{ListenerLease, LiveM, World};

/// A listener Lease's holder record: (holder, renewTime, acquireTime, token).
type Record = (Option<(String, String)>, u64, u64, i32);

/// What the liveness tracker knows of one pod.
struct Tracked {
    lease: Option<LiveLease>,
    /// (registered, renewTime, registration).
    record: (bool, u64, i32),
    observed: Option<Instant>,
}

/// Caches as a reconcile reads them: the set's Leases and the pods' liveness.
type Facts = (Vec<LeaseFacts>, BTreeMap<String, LivenessFacts>);

/// One controller process.
pub(super) struct Ctl {
    memory: Memory,
    unresponsive: Unresponsive,
    started: Instant,
    /// Lease name → its holder record and when it was first seen so.
    seen: BTreeMap<String, (Record, Instant)>,
    /// Pod uid → its liveness.
    tracker: BTreeMap<String, Tracked>,
    /// What the last reconcile decided from, and when.
    last: Option<(Instant, Facts)>,
    /// The Lease cache.
    cache: BTreeMap<String, ListenerLease>,
    /// The watches deliver nothing before then.
    stalled_until: Option<Instant>,
    /// The last liveness record of each pod the watch has to deliver, and the pods whose agents
    /// wrote since the watch last delivered: a stalled watch delivers late, never loses a write.
    /// (One that relists does: the tracker keeps the last renewal it saw, older than the last
    /// that landed, and a Lease gone meanwhile leaves nothing to fence. Not modelled here.)
    wire: BTreeMap<String, (bool, u64, i32)>,
    late: BTreeSet<String>,
}

impl Ctl {
    /// A controller starting at `now`: fresh memory, nothing observed yet (its watches list
    /// everything at once).
    pub fn new(now: Instant) -> Ctl {
        Ctl {
            memory: Memory::default(),
            unresponsive: Unresponsive::default(),
            started: now,
            seen: BTreeMap::new(),
            tracker: BTreeMap::new(),
            last: None,
            cache: BTreeMap::new(),
            stalled_until: None,
            wire: BTreeMap::new(),
            late: BTreeSet::new(),
        }
    }

    /// The watches deliver nothing until `until` (then everything at once).
    pub fn stall(&mut self, until: Instant) {
        self.stalled_until = Some(until);
    }

    /// The watches deliver the API server's state at `now` (unless stalled).
    pub fn observe(&mut self, api: &super::world::Api, now: Instant) {
        for (uid, l) in &api.live {
            let record = (l.registered, l.renew, l.transitions);
            if l.registered && self.wire.get(uid) != Some(&record) {
                self.late.insert(uid.clone());
            }
            self.wire.insert(uid.clone(), record);
        }
        if self.stalled_until.is_some_and(|until| now < until) {
            return;
        }
        // An agent's writes, seen now (a stall delays them, in order, even past the Lease's
        // deletion).
        for uid in std::mem::take(&mut self.late) {
            let e = self.tracker.entry(uid).or_insert(Tracked {
                lease: None,
                record: (false, 0, -1),
                observed: None,
            });
            e.observed = Some(now);
        }
        self.cache.clone_from(&api.leases);
        for (id, l) in &api.leases {
            let record = (l.holder.clone(), l.renew, l.acquire, l.token);
            let e = self.seen.entry(id.clone()).or_insert_with(|| (record.clone(), now));
            if e.0 != record {
                *e = (record, now);
            }
        }
        self.seen.retain(|id, _| api.leases.contains_key(id));
        for (uid, l) in &api.live {
            let record = (l.registered, l.renew, l.transitions);
            let e = self.tracker.entry(uid.clone()).or_insert(Tracked {
                lease: None,
                record: (false, 0, -1),
                observed: None,
            });
            // An agent's write of a registered Lease is a sign of life (the controller's own
            // writes never register it).
            if l.registered && (e.record != record || e.observed.is_none()) {
                e.observed = Some(now);
            }
            e.record = record;
            e.lease = Some(LiveLease {
                name: format!("baton-agent.{uid}"),
                resource_version: l.rv.to_string(),
                registered: l.registered,
                fenced: l.fenced,
            });
        }
        for (uid, e) in &mut self.tracker {
            if !api.live.contains_key(uid) {
                e.lease = None;
            }
        }
    }

    fn facts(&self, now: Instant) -> Facts {
        let leases = self
            .cache
            .iter()
            .map(|(id, l)| LeaseFacts {
                name: format!("set-{id}"),
                view: LeaseView {
                    held_for: None,
                    rebalancing: false,
                    listener: id.clone(),
                    holder: l.holder.as_ref().map(|h| h.0.clone()),
                    holder_uid: l.owner.clone(),
                    expired: false,
                    transitions: l.token,
                    resource_version: l.rv.to_string(),
                    release_requested: l.release_requested,
                    renewed: l.renew != l.acquire,
                },
                observed: self.seen.get(id).map_or(now, |e| e.1).max(self.started),
                duration: D,
                terminating: l.terminating,
                adopted: true,
                labelled_uid: l.owner.clone(),
            })
            .collect();
        let liveness = self
            .tracker
            .iter()
            .map(|(uid, t)| {
                let facts = LivenessFacts {
                    wakes_after: None,
                    lease: t.lease.clone(),
                    observed: t.observed,
                };
                (uid.clone(), facts)
            })
            .collect();
        (leases, liveness)
    }
}

impl World {
    /// One reconcile, as the shell makes it: decide from the caches (current, or, `lagging`,
    /// where the last reconcile at this same instant saw them), write the ceiling, the fences,
    /// the liveness Leases, then the Lease writes to pods the API server has.
    pub fn reconcile(&mut self, lagging: bool) -> Result<(), TestCaseError> {
        let now = self.now;
        let current = self.ctl.facts(now);
        let (leases, liveness) = match self.ctl.last.take() {
            Some((at, facts)) if lagging && at == now => facts,
            _ => current,
        };
        self.ctl.last = Some((now, (leases.clone(), liveness.clone())));
        let pods: Vec<PodFacts> = self
            .pods
            .iter()
            .filter(|p| p.exists)
            .map(|p| PodFacts {
                revision: None,
                weight: 1,
                name: p.name.clone(),
                uid: p.uid.clone(),
                selected: true,
                // A pod whose agent died stays Ready: nothing restarts it.
                eligible: true,
                restarts: p.restarts,
            })
            .collect();
        let live_now = std::mem::take(&mut self.recover).then(|| self.recover_list());
        let (stopped, unresponsive) = (self.stopped.clone(), self.ctl.unresponsive.clone());
        // Evening out on, with no residence: its release requests meet every fault here too.
        let rebalance = Rebalance {
            max_skew: 1,
            max_moves: 2,
            min_residence: std::time::Duration::ZERO,
        };
        let under_way = BTreeSet::new();
        let input = Input {
            rebalance: Some(&rebalance),
            under_way: &under_way,
            deleting: false,
            listeners: &self.wanted,
            keep_unknown: false,
            max_per_pod: self.max_per_pod,
            pods: &pods,
            leases: &leases,
            liveness: &liveness,
            ceiling: self.ceiling,
            recover: live_now.as_ref(),
            unresponsive: &unresponsive,
            stopped: &stopped,
            lease_duration: D,
            started: self.ctl.started,
            now,
        };
        let d = decide(&input, &mut self.ctl.memory);
        check_decision(&input, &d)?;
        let again = decide(&input, &mut self.ctl.memory.clone());
        prop_assert_eq!(&again.writes, &d.writes, "decided again, the writes differ");
        prop_assert_eq!(&again.fences, &d.fences);
        let registered: BTreeSet<&str> = liveness
            .iter()
            .filter(|(_, l)| l.lease.as_ref().is_some_and(|l| l.registered))
            .map(|(uid, _)| uid.as_str())
            .collect();
        self.ctl.unresponsive.learn(&d, &pods, |uid| registered.contains(uid));
        self.ctl.unresponsive.retain(|uid| pods.iter().any(|p| p.uid == uid));
        prop_assert!(
            d.ceiling >= self.ceiling,
            "the ceiling fell: {:?} < {:?}",
            d.ceiling,
            self.ceiling
        );
        self.ceiling = d.ceiling;
        for f in &d.fences {
            self.fence(f);
        }
        for (_, uid) in &d.liveness_creates {
            if !self.api.live.contains_key(uid) {
                let rv = self.api.bump();
                let lease = LiveM {
                    created: rv,
                    registered: false,
                    transitions: 0,
                    renew: 0,
                    rv,
                    fenced: false,
                };
                self.api.live.insert(uid.clone(), lease);
            }
        }
        let exist: BTreeSet<(String, String)> = pods.iter().map(|p| (p.name.clone(), p.uid.clone())).collect();
        for w in confirmed(&d.writes, &exist).0 {
            self.apply(&w.change)?;
        }
        self.settle_step()
    }

    /// A recover: the operator makes sure what is not live runs nothing (gone pods' processes
    /// end); the live pods are those the API server has whose agent runs.
    fn recover_list(&mut self) -> BTreeSet<String> {
        for p in self.pods.iter_mut().filter(|p| !p.exists) {
            p.agent = None;
        }
        self.pods
            .iter()
            .filter(|p| p.exists && p.agent.is_some())
            .map(|p| p.name.clone())
            .collect()
    }

    fn fence(&mut self, f: &Fence) {
        match &f.lease {
            Some((_, rv)) => {
                let next = self.api.rv + 1;
                if let Some(l) = self.api.live.get_mut(&f.uid).filter(|l| l.rv.to_string() == *rv) {
                    l.registered = false;
                    l.fenced = true;
                    l.rv = next;
                    self.api.bump();
                }
            }
            None if !self.api.live.contains_key(&f.uid) => {
                let rv = self.api.bump();
                let lease = LiveM {
                    created: rv,
                    registered: false,
                    transitions: 0,
                    renew: 0,
                    rv,
                    fenced: true,
                };
                self.api.live.insert(f.uid.clone(), lease);
            }
            None => {}
        }
    }

    /// Whether `rv` is the `resourceVersion` of `listener`'s Lease.
    fn at(&self, listener: &str, rv: &str) -> bool {
        self.api.leases.get(listener).is_some_and(|l| l.rv.to_string() == rv)
    }

    /// Apply one Lease write as the API server would (each conditional). An assignment that
    /// succeeds is checked: nothing may still run its listener, its token is above every token
    /// the listener's Leases carried and within the ceiling the status carries.
    fn apply(&mut self, m: &Move) -> Result<(), TestCaseError> {
        match m {
            Move::Assign {
                listener,
                pod,
                pod_uid,
                from_resource_version,
                transitions,
            } => {
                let current = self.api.leases.get(listener).map(|l| l.rv.to_string());
                if current != *from_resource_version {
                    return Ok(());
                }
                let on: Vec<(&str, i32)> = self
                    .pods
                    .iter()
                    .filter_map(|p| Some((p.uid.as_str(), p.agent.as_ref()?.running.get(listener)?.token)))
                    .collect();
                prop_assert!(
                    on.is_empty(),
                    "{listener} assigned to {pod} (token {transitions}) while (pod, token) {on:?} may run it"
                );
                let high = self.high.get(listener).copied();
                prop_assert!(
                    high.is_none_or(|h| *transitions > h),
                    "{listener} assigned with token {transitions} after {high:?}"
                );
                prop_assert!(
                    self.ceiling.is_some_and(|c| *transitions <= c),
                    "token {transitions} above the ceiling {:?}",
                    self.ceiling
                );
                self.high.insert(listener.clone(), *transitions);
                let terminating = self.api.leases.get(listener).is_some_and(|l| l.terminating);
                let rv = self.api.bump();
                let lease = ListenerLease {
                    holder: Some((pod.clone(), pod_uid.clone())),
                    owner: Some(pod_uid.clone()),
                    token: *transitions,
                    rv,
                    renew: rv,
                    acquire: rv,
                    release_requested: false,
                    terminating,
                };
                self.api.leases.insert(listener.clone(), lease);
            }
            Move::RequestRelease {
                listener,
                resource_version,
                ..
            }
            | Move::Adopt {
                listener,
                resource_version,
                ..
            } => {
                if self.at(listener, resource_version) {
                    let rv = self.api.bump();
                    if let Some(l) = self.api.leases.get_mut(listener) {
                        l.release_requested |= matches!(m, Move::RequestRelease { .. });
                        l.rv = rv;
                    }
                }
            }
            Move::DeleteLease {
                listener,
                resource_version,
            }
            | Move::RemoveFinalizer {
                listener,
                resource_version,
            } => {
                if self.at(listener, resource_version) {
                    let rv = self.api.bump();
                    let deleted = matches!(m, Move::DeleteLease { .. })
                        || self.api.leases.get(listener).is_some_and(|l| l.terminating);
                    if deleted {
                        self.api.leases.remove(listener);
                    } else if let Some(l) = self.api.leases.get_mut(listener) {
                        l.rv = rv;
                    }
                }
            }
        }
        Ok(())
    }
}
