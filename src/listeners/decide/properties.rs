//! Property tests of [`decide`](super::decide): a small world of pods, agents, an API server and
//! the controller, driven by random sequences of what happens in a cluster — time passing,
//! reconciles, Leases deleted by hand, pods dying without deletion, agents cut off and healed,
//! force and graceful deletions, controller restarts, new pods — and checked after every step:
//! no listener ever runs on two pods, and every new tenure's fencing token is above every token
//! the listener had before.
//!
//! The agents follow their side of the protocol (`crate::agent`): a connected agent renews the
//! Leases naming its pod (and uid), starts a listener only after a renewal, stops one at once when
//! its Lease is gone or names another pod, and releases on request; whatever the agent's state,
//! its app stops a listener at the agent's safety deadline (`validUntil`: last renewal + duration
//! − margin). The controller's Lease cache is either current or still where its last reconcile
//! saw it (a watch that has not delivered that reconcile's writes yet), corrected as the shell
//! corrects it with the writes it has not shown ([`Expectations`]); the controller must never
//! make a write conditional on a `resourceVersion` older than one of its own writes.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::api::listenerset::{Assignment, ListenerSetStatus};
use crate::listeners::assigner::ListenerState;

const D: Duration = Duration::from_secs(2);
const MARGIN: Duration = Duration::from_millis(500);
const STEP: Duration = Duration::from_millis(250);
const LISTENERS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Tick,
    Reconcile,
    /// A reconcile right after the last one (no time passed), whose cache has not moved since
    /// (that reconcile's writes not seen yet).
    LaggingReconcile,
    DeleteLease(usize),
    /// The pod's agent and app die; the pod stays Ready (nothing restarts them).
    Kill(usize),
    /// The pod's agent restarts (a new process; the restart count rises).
    Revive(usize),
    Partition(usize),
    Heal(usize),
    ForceDelete(usize),
    GracefulDelete(usize),
    RestartController,
    AddPod,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Tick),
        6 => Just(Op::Reconcile),
        3 => Just(Op::LaggingReconcile),
        1 => (0..8usize).prop_map(Op::DeleteLease),
        1 => (0..8usize).prop_map(Op::Kill),
        1 => (0..8usize).prop_map(Op::Revive),
        1 => (0..8usize).prop_map(Op::Partition),
        1 => (0..8usize).prop_map(Op::Heal),
        1 => (0..8usize).prop_map(Op::ForceDelete),
        1 => (0..8usize).prop_map(Op::GracefulDelete),
        1 => Just(Op::RestartController),
        1 => Just(Op::AddPod),
    ]
}

struct PodM {
    name: String,
    uid: String,
    /// In the API server.
    exists: bool,
    restarts: i32,
    agent_alive: bool,
    connected: bool,
    /// Listener → (token, the app's deadline: validUntil).
    running: BTreeMap<String, (i32, Instant)>,
}

#[derive(Clone)]
struct LeaseM {
    holder: Option<(String, String)>,
    token: i32,
    rv: u64,
    renew: u64,
    acquire: u64,
    release_requested: bool,
}

struct World {
    now: Instant,
    pods: Vec<PodM>,
    leases: BTreeMap<String, LeaseM>,
    rv: u64,
    memory: Memory,
    unresponsive: Unresponsive,
    status: ListenerSetStatus,
    stopped: BTreeSet<String>,
    /// Listener → the highest token any tenure had.
    high: BTreeMap<String, i32>,
    wanted: Vec<Wanted>,
    next_pod: usize,
    /// The Leases as the controller's last reconcile saw them (its cache, before its writes),
    /// and when.
    cache: Option<(Instant, Vec<LeaseFacts>)>,
    /// The controller's writes its cache has not shown.
    expected: Expectations<LeaseFacts>,
    /// Listener → the resourceVersion of the controller's last successful write of its Lease.
    own: BTreeMap<String, u64>,
}

impl World {
    fn new() -> World {
        let mut w = World {
            now: Instant::now(),
            pods: Vec::new(),
            leases: BTreeMap::new(),
            rv: 0,
            memory: Memory::default(),
            unresponsive: Unresponsive::default(),
            status: ListenerSetStatus::default(),
            stopped: BTreeSet::new(),
            high: BTreeMap::new(),
            wanted: (0..LISTENERS)
                .map(|i| Wanted {
                    id: format!("l{i}"),
                    ..Default::default()
                })
                .collect(),
            next_pod: 0,
            cache: None,
            expected: Expectations::default(),
            own: BTreeMap::new(),
        };
        for _ in 0..3 {
            w.add_pod();
        }
        w
    }

    fn add_pod(&mut self) {
        let n = self.next_pod;
        self.next_pod += 1;
        // Names come back (as a StatefulSet's do), never two existing pods with one name.
        let name = (0..)
            .map(|i| format!("p{i}"))
            .find(|name| !self.pods.iter().any(|p| p.exists && p.name == *name))
            .unwrap_or_default();
        self.pods.push(PodM {
            name,
            uid: format!("uid-{n}"),
            exists: true,
            restarts: 0,
            agent_alive: true,
            connected: true,
            running: BTreeMap::new(),
        });
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn pod(&mut self, i: usize) -> Option<&mut PodM> {
        let n = self.pods.len();
        (n > 0).then(|| &mut self.pods[i % n])
    }

    /// Time passes: agents act, apps honour their deadlines.
    fn tick(&mut self) -> Result<(), TestCaseError> {
        self.now += STEP;
        let now = self.now;
        for p in 0..self.pods.len() {
            let (name, uid, acts) = {
                let pod = &self.pods[p];
                (pod.name.clone(), pod.uid.clone(), pod.agent_alive && pod.connected)
            };
            if acts {
                let mine: Vec<String> = self
                    .leases
                    .iter()
                    .filter(|(_, l)| l.holder.as_ref() == Some(&(name.clone(), uid.clone())))
                    .map(|(id, _)| id.clone())
                    .collect();
                // Lost: the Lease is gone or names another pod.
                self.pods[p].running.retain(|id, _| mine.contains(id));
                for id in mine {
                    let rv = self.bump();
                    let Some(lease) = self.leases.get_mut(&id) else {
                        continue;
                    };
                    if lease.release_requested {
                        self.pods[p].running.remove(&id);
                        lease.holder = None;
                        lease.rv = rv;
                        continue;
                    }
                    lease.renew = rv;
                    lease.rv = rv;
                    let token = lease.token;
                    self.pods[p].running.insert(id, (token, now + D - MARGIN));
                }
            }
            self.pods[p].running.retain(|_, (_, until)| now < *until);
        }
        self.check()
    }

    /// The Leases as the controller sees them: its cache (current, or where the last reconcile
    /// saw it when `lagging`), corrected by its writes the cache has not shown.
    fn seen(&mut self, lagging: bool) -> Vec<LeaseFacts> {
        let current = self.facts().1;
        // A watch lags by moments, not by a Tick.
        let cache = match self.cache.take() {
            Some((at, last)) if lagging && at == self.now => last,
            _ => current,
        };
        self.cache = Some((self.now, cache.clone()));
        let cached = cache
            .into_iter()
            .map(|f| (f.name.clone(), f.view.resource_version.clone(), f))
            .collect();
        self.expected.overlay(cached)
    }

    /// The facts of `listener`'s Lease as it is now.
    fn lease_facts(&self, listener: &str) -> Option<LeaseFacts> {
        self.facts().1.into_iter().find(|f| f.view.listener == listener)
    }

    fn facts(&self) -> (Vec<PodFacts>, Vec<LeaseFacts>) {
        let pods = self
            .pods
            .iter()
            .filter(|p| p.exists)
            .map(|p| PodFacts {
                name: p.name.clone(),
                uid: p.uid.clone(),
                selected: true,
                eligible: true,
                restarts: p.restarts,
            })
            .collect();
        let leases = self
            .leases
            .iter()
            .map(|(id, l)| LeaseFacts {
                name: format!("set-{id}"),
                view: LeaseView {
                    listener: id.clone(),
                    holder: l.holder.as_ref().map(|h| h.0.clone()),
                    holder_uid: l.holder.as_ref().map(|h| h.1.clone()),
                    expired: false,
                    transitions: l.token,
                    resource_version: l.rv.to_string(),
                    release_requested: l.release_requested,
                    renewed: l.renew != l.acquire,
                },
                record: format!("{:?}|{}|{}|{}", l.holder, l.renew, l.acquire, l.token),
                duration: D,
            })
            .collect();
        (pods, leases)
    }

    /// One reconcile: decide, write the status, then the Leases (each conditional).
    fn reconcile(&mut self, lagging: bool) -> Result<(), TestCaseError> {
        let pods = self.facts().0;
        let leases = self.seen(lagging);
        let stopped = self.stopped.clone();
        let unresponsive = self.unresponsive.clone();
        let input = Input {
            deleting: false,
            listeners: &self.wanted,
            keep_unknown: false,
            max_per_pod: 0,
            pods: &pods,
            leases: &leases,
            status: &self.status,
            recover: None,
            unresponsive: &unresponsive,
            stopped: &stopped,
            lease_duration: D,
            now: self.now,
        };
        let d = decide(&input, &mut self.memory);
        self.unresponsive.learn(&d, &pods);
        self.status.fencing_tokens = d.tokens.clone();
        self.status.assignments = d
            .summary
            .states
            .iter()
            .filter_map(|(id, s)| match s {
                ListenerState::Running { pod, uid, transitions }
                | ListenerState::Starting { pod, uid, transitions } => Some(Assignment {
                    listener: id.clone(),
                    pod: pod.clone(),
                    pod_uid: Some(uid.clone()),
                    since: None,
                    transitions: *transitions,
                    starting: false,
                }),
                _ => None,
            })
            .collect();
        for w in &d.writes {
            if self.apply(&w.change)? {
                self.memory.written(&w.change, self.now);
                self.expect(&w.change);
            } else {
                // Refused (409/404), as the shell tells it: the token may be given again, and
                // `apply` checks it is above every tenure's.
                self.memory.refused(&w.change);
            }
        }
        self.check()
    }

    /// Remember a successful write as the shell does, until the cache shows it.
    fn expect(&mut self, m: &Move) {
        let (listener, replaced) = match m {
            Move::Assign {
                listener,
                from_resource_version: Some(rv),
                ..
            } => (listener, rv),
            Move::RequestRelease {
                listener,
                resource_version,
                ..
            }
            | Move::DeleteLease {
                listener,
                resource_version,
            } => (listener, resource_version),
            Move::Assign { .. } => return,
        };
        let written = self.lease_facts(listener);
        self.expected.wrote(&format!("set-{listener}"), replaced, written);
    }

    /// The controller never decides from a view older than its own last write of a Lease.
    fn check_fresh(&self, m: &Move) -> Result<(), TestCaseError> {
        let listener = m.listener();
        let Some(own) = self.own.get(listener).copied() else {
            return Ok(());
        };
        let read = match m {
            Move::Assign {
                from_resource_version: None,
                ..
            } => {
                // A create of a Lease this controller made and nobody has touched since.
                let again = self.leases.get(listener).is_some_and(|l| l.rv == own);
                prop_assert!(!again, "{listener} created again over its own create");
                return Ok(());
            }
            Move::Assign {
                from_resource_version: Some(rv),
                ..
            } => rv,
            Move::RequestRelease { resource_version, .. } | Move::DeleteLease { resource_version, .. } => {
                resource_version
            }
        };
        let read: u64 = read.parse().unwrap_or(0);
        prop_assert!(
            read >= own,
            "{m:?} decided from resourceVersion {read}, older than the controller's own write ({own})"
        );
        Ok(())
    }

    /// Apply one write as the API server would; whether it succeeded.
    fn apply(&mut self, m: &Move) -> Result<bool, TestCaseError> {
        self.check_fresh(m)?;
        let ok = self.apply_unchecked(m)?;
        if ok {
            let rv = self.leases.get(m.listener()).map_or(self.rv, |l| l.rv);
            self.own.insert(m.listener().to_string(), rv);
        }
        Ok(ok)
    }

    fn apply_unchecked(&mut self, m: &Move) -> Result<bool, TestCaseError> {
        let rv = self.bump();
        match m {
            Move::Assign {
                listener,
                pod,
                pod_uid,
                from_resource_version,
                transitions,
            } => {
                let current = self.leases.get(listener).map(|l| l.rv.to_string());
                if current != *from_resource_version {
                    return Ok(false);
                }
                let high = self.high.get(listener).copied();
                prop_assert!(
                    high.is_none_or(|h| *transitions > h),
                    "{listener} assigned with token {transitions} after {high:?}"
                );
                self.high.insert(listener.clone(), *transitions);
                self.leases.insert(
                    listener.clone(),
                    LeaseM {
                        holder: Some((pod.clone(), pod_uid.clone())),
                        token: *transitions,
                        rv,
                        renew: rv,
                        acquire: rv,
                        release_requested: false,
                    },
                );
            }
            Move::RequestRelease {
                listener,
                resource_version,
                ..
            } => match self.leases.get_mut(listener) {
                Some(l) if l.rv.to_string() == *resource_version => {
                    l.release_requested = true;
                    l.rv = rv;
                }
                _ => return Ok(false),
            },
            Move::DeleteLease {
                listener,
                resource_version,
            } => match self.leases.get(listener) {
                Some(l) if l.rv.to_string() == *resource_version => {
                    self.leases.remove(listener);
                }
                _ => return Ok(false),
            },
        }
        Ok(true)
    }

    /// The pod leaves the API server; the garbage collector deletes the Leases it owns.
    fn remove_pod(&mut self, i: usize) {
        let n = self.pods.len();
        let uid = self.pods[i % n].uid.clone();
        self.pods[i % n].exists = false;
        self.leases
            .retain(|_, l| l.holder.as_ref().is_none_or(|(_, u)| *u != uid));
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Tick => return self.tick(),
            Op::Reconcile => return self.reconcile(false),
            Op::LaggingReconcile => return self.reconcile(true),
            Op::DeleteLease(i) => {
                if let Some(id) = self.leases.keys().nth(i % LISTENERS).cloned() {
                    self.leases.remove(&id);
                }
            }
            Op::Kill(i) => {
                if let Some(p) = self.pod(*i) {
                    p.agent_alive = false;
                }
            }
            Op::Revive(i) => {
                if let Some(p) = self.pod(*i).filter(|p| !p.agent_alive && p.exists) {
                    p.agent_alive = true;
                    p.restarts += 1;
                }
            }
            Op::Partition(i) => {
                if let Some(p) = self.pod(*i) {
                    p.connected = false;
                }
            }
            Op::Heal(i) => {
                if let Some(p) = self.pod(*i) {
                    p.connected = true;
                }
            }
            Op::ForceDelete(i) => {
                if self.pod(*i).is_some_and(|p| p.exists) {
                    self.remove_pod(*i);
                }
            }
            Op::GracefulDelete(i) => {
                let Some(p) = self.pod(*i).filter(|p| p.exists) else {
                    return Ok(());
                };
                let who = (p.name.clone(), p.uid.clone());
                let releases = p.agent_alive && p.connected;
                // The kubelet stops every container (the agent releases first if it can), and
                // reports them terminated.
                p.running.clear();
                p.agent_alive = false;
                let uid = p.uid.clone();
                if releases {
                    let rv = self.bump();
                    for l in self.leases.values_mut().filter(|l| l.holder.as_ref() == Some(&who)) {
                        l.holder = None;
                        l.rv = rv;
                    }
                }
                self.stopped.insert(uid);
                self.remove_pod(*i);
            }
            Op::RestartController => {
                // A new process: fresh memory, and a cache that lists the current state.
                self.memory = Memory::default();
                self.unresponsive = Unresponsive::default();
                self.expected = Expectations::default();
                self.cache = None;
                self.own.clear();
            }
            Op::AddPod => {
                if self.pods.iter().filter(|p| p.exists).count() < 4 {
                    self.add_pod();
                }
            }
        }
        self.check()
    }

    /// No listener runs on two pods.
    fn check(&self) -> Result<(), TestCaseError> {
        for w in &self.wanted {
            let on: Vec<&str> = self
                .pods
                .iter()
                .filter(|p| p.running.contains_key(&w.id))
                .map(|p| p.uid.as_str())
                .collect();
            prop_assert!(on.len() <= 1, "{} runs on {:?}", w.id, on);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 384,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_listener_ever_runs_twice_and_tokens_only_rise(ops in prop::collection::vec(op(), 40..160)) {
        let mut w = World::new();
        for op in &ops {
            w.step(op)?;
        }
        // Then a quiet cluster settles: every pod back, time passes, reconciles run.
        // (Every container restarts: an agent that came back holding nothing is eligible again.)
        for p in w.pods.iter_mut().filter(|p| p.exists) {
            p.agent_alive = true;
            p.connected = true;
            p.restarts += 1;
        }
        for _ in 0..40 {
            w.tick()?;
            w.reconcile(false)?;
        }
        if w.pods.iter().any(|p| p.exists) {
            for l in &w.wanted {
                let on = w.pods.iter().filter(|p| p.running.contains_key(&l.id)).count();
                prop_assert_eq!(on, 1, "{} does not run once the cluster is quiet", l.id);
            }
        }
    }
}
