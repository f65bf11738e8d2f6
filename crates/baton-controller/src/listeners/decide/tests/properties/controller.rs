//! The simulated controller: its watch's observations (the Lease index: when each holder record
//! was first seen; the liveness tracker: when each agent was last seen writing its liveness
//! Lease, kept after the Lease is gone), its caches, and a reconcile as the shell makes it.
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tokio::time::Instant;

use super::api::{Api, ListenerLease, D};
use super::check_decision;
use crate::listeners::decide::*;

/// A listener Lease's holder record: (holder, renewTime, acquireTime, token).
type Record = (Option<(String, String)>, u64, u64, i32);

/// What the liveness tracker knows of one pod.
struct Tracked {
    lease: Option<LiveLease>,
    /// (registered, renewTime, registration).
    record: (bool, u64, i32),
    observed: Option<Instant>,
    /// When the registration it records was first seen.
    registration_seen: Option<Instant>,
}

/// Caches as a reconcile reads them: the set's Leases and the pods' liveness.
type Facts = (Vec<LeaseFacts>, BTreeMap<String, LivenessFacts>);

/// One controller process.
pub(super) struct Ctl {
    /// The set's order of pods for ties ([`Input::seed`]).
    seed: u64,
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
    /// What the last reconcile read, to tell the next what changed as the shell does.
    numbers: Numbers,
}

/// The [`Delta`] a shell gives each pass, worked out from what the last pass read: the
/// listeners and Leases (their names and listeners) numbered anew when they differ, and the
/// places of the Leases whose facts differ.
#[derive(Default)]
struct Numbers {
    wanted: Vec<Wanted>,
    leases: Vec<LeaseFacts>,
    spec: u64,
    shape: u64,
    at: u64,
    last: u64,
}

impl Numbers {
    fn next(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// `(spec, shape, from, to)` and the changed places for a pass reading `wanted`, `leases`.
    fn delta(&mut self, wanted: &[Wanted], leases: &[LeaseFacts]) -> ([u64; 4], Vec<usize>) {
        if wanted != self.wanted.as_slice() {
            self.spec = self.next();
            self.wanted = wanted.to_vec();
        }
        let shaped = leases.len() == self.leases.len()
            && leases
                .iter()
                .zip(&self.leases)
                .all(|(a, b)| a.name == b.name && a.view.listener == b.view.listener);
        if !shaped {
            self.shape = self.next();
        }
        let changed = leases
            .iter()
            .zip(&self.leases)
            .enumerate()
            .filter(|(_, (a, b))| shaped && a != b)
            .map(|(i, _)| i)
            .collect();
        let from = self.at;
        self.at = self.next();
        self.leases = leases.to_vec();
        ([self.spec, self.shape, from, self.at], changed)
    }
}

impl Ctl {
    /// A controller starting at `now`: fresh memory, nothing observed yet (its watches list
    /// everything at once).
    pub fn new(now: Instant, seed: u64) -> Ctl {
        Ctl {
            seed,
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
            numbers: Numbers::default(),
        }
    }

    /// The watches deliver nothing until `until` (then everything at once).
    pub fn stall(&mut self, until: Instant) {
        self.stalled_until = Some(until);
    }

    /// The watches deliver the API server's state at `now` (unless stalled).
    pub fn observe(&mut self, api: &Api, now: Instant) {
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
                registration_seen: None,
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
                registration_seen: None,
            });
            // An agent's write of a registered Lease is a sign of life (the controller's own
            // writes never register it).
            if l.registered && (e.record != record || e.observed.is_none()) {
                e.observed = Some(now);
            }
            // A registration number not seen registered before (or on a Lease made anew).
            let anew = e.lease.is_none() || !e.record.0 || e.record.2 != l.transitions;
            if !l.registered {
                e.registration_seen = None;
            } else if anew || e.registration_seen.is_none() {
                e.registration_seen = Some(now);
            }
            e.record = record;
            e.lease = Some(LiveLease {
                name: format!("baton-agent.{uid}"),
                resource_version: l.rv.to_string(),
                registered: l.registered,
                fenced: l.fenced,
                leaving: l.registered && l.leaving,
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
                    successor: l.successor.clone().filter(|_| l.release_requested),
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
                    registration_seen: t.registration_seen,
                };
                (uid.clone(), facts)
            })
            .collect();
        (leases, liveness)
    }
}

/// What a reconcile reads besides the controller's own caches: the pods the API server has, the
/// spec's listeners, the status's token ceiling, the kubelet's reports and a pending recover.
pub(super) struct Reads<'a> {
    pub pods: &'a [PodFacts],
    pub wanted: &'a [Wanted],
    pub max_per_pod: u32,
    pub ceiling: Option<i32>,
    /// The live pods a recover names.
    pub recover: Option<&'a BTreeSet<String>>,
    pub stopped: &'a BTreeSet<String>,
}

impl Ctl {
    /// One reconcile's decision, as the shell makes it: from the caches (current, or, `lagging`,
    /// where the last reconcile at this same instant saw them), checked against the rules and
    /// decided again the same; the pods it found unresponsive are remembered.
    pub fn decide(&mut self, reads: &Reads<'_>, lagging: bool, now: Instant) -> Result<Decision, TestCaseError> {
        let current = self.facts(now);
        let (leases, liveness) = match self.last.take() {
            Some((at, facts)) if lagging && at == now => facts,
            _ => current,
        };
        self.last = Some((now, (leases.clone(), liveness.clone())));
        // Evening out on, with no residence: its release requests meet every fault here too.
        let rebalance = Rebalance {
            max_skew: 1,
            max_moves: 2,
            min_residence: std::time::Duration::ZERO,
        };
        let under_way = BTreeSet::new();
        let ([spec, shape, from, to], changed) = self.numbers.delta(reads.wanted, &leases);
        let input = Input {
            rebalance: Some(&rebalance),
            under_way: &under_way,
            deleting: false,
            listeners: reads.wanted,
            keep_unknown: false,
            max_per_pod: reads.max_per_pod,
            pods: reads.pods,
            leases: &leases,
            liveness: &liveness,
            ceiling: reads.ceiling,
            recover: reads.recover,
            unresponsive: &self.unresponsive,
            stopped: reads.stopped,
            lease_duration: D,
            seed: self.seed,
            started: self.started,
            now,
            // Every pass sets its settled listeners aside from what the last kept (checked
            // against the whole set in tests), and decides what the full pass does.
            delta: Some(Delta {
                spec,
                shape,
                from,
                to,
                changed: &changed,
            }),
        };
        let mut full_memory = self.memory.clone();
        let split = decide(&input, &mut self.memory);
        // The full pass decides the same, and learns the same; its summary lists every listener.
        let d = decide_full(&input, &mut full_memory);
        if let Err(e) = super::super::same_decision(&split, &d) {
            return Err(TestCaseError::fail(format!("decide and decide_full differ: {e}")));
        }
        prop_assert_eq!(&self.memory, &full_memory, "decide and decide_full learnt differently");
        check_decision(&input, &d)?;
        let again = decide(&input, &mut self.memory.clone());
        prop_assert_eq!(&again.writes, &d.writes, "decided again, the writes differ");
        prop_assert_eq!(&again.fences, &d.fences);
        let registered: BTreeSet<&str> = liveness
            .iter()
            .filter(|(_, l)| l.lease.as_ref().is_some_and(|l| l.registered))
            .map(|(uid, _)| uid.as_str())
            .collect();
        self.unresponsive.learn(&d, reads.pods, |uid| registered.contains(uid));
        self.unresponsive.retain(|uid| reads.pods.iter().any(|p| p.uid == uid));
        Ok(d)
    }
}
