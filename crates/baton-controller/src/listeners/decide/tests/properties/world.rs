//! A small cluster: an API server holding the set's listener Leases and the pods' liveness
//! Leases ([`super::api`]), pods with their agents ([`super::agent`]), and the controller
//! ([`super::controller`]), which decides from its caches (current, or where its last reconcile
//! saw them) and its watch's observations (each change seen as it lands); its ceiling is written
//! first, then its fences, liveness Leases and Lease writes, each conditional as the API server
//! makes them. What happens in the cluster is an [`Op`].
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tokio::time::Instant;

use super::agent::{Agent, Answer, Ask, Sent};
use super::api::{Api, LiveM};
use super::controller::{Ctl, Reads};
use crate::listeners::assigner::ListenerState;
use crate::listeners::decide::*;

pub(super) const STEP: Duration = Duration::from_millis(250);
pub(super) const LISTENERS: usize = 4;
const MAX_PODS: usize = 4;

/// Something that happens in the simulated cluster.
#[derive(Clone, Debug)]
pub(super) enum Op {
    /// Time passes; what agents send stays in flight until the next tick when `hold`.
    Tick {
        hold: bool,
    },
    Reconcile,
    /// A reconcile right after the last one (no time passed), from the caches that reconcile
    /// read (its writes not seen yet).
    LaggingReconcile,
    /// A listener Lease deleted by hand (its finalizer holds it).
    DeleteLease(usize),
    /// A pod's liveness Lease deleted by hand.
    DeleteLiveness(usize),
    /// The pod's agent and app die; the pod stays Ready.
    Kill(usize),
    /// The pod's agent alone is SIGTERMed (it shuts down; the pod stays Ready).
    Term(usize),
    /// A dead (or shutting-down) agent's container restarts.
    Revive(usize),
    Partition(usize),
    Heal(usize),
    ForceDelete(usize),
    GracefulDelete(usize),
    /// The pod is marked for drain, or no longer (it stays Ready; it takes nothing new).
    Drain(usize),
    /// The garbage collector catches up with deleted pods.
    Collect,
    Suspend(usize),
    Recover,
    RestartController,
    /// The controller's watches deliver nothing for this many ticks.
    Stall(u32),
    AddPod {
        legacy: bool,
    },
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Tick { hold: false }),
        3 => Just(Op::Tick { hold: true }),
        6 => Just(Op::Reconcile),
        3 => Just(Op::LaggingReconcile),
        1 => (0..8usize).prop_map(Op::DeleteLease),
        1 => (0..8usize).prop_map(Op::DeleteLiveness),
        1 => (0..8usize).prop_map(Op::Kill),
        1 => (0..8usize).prop_map(Op::Term),
        1 => (0..8usize).prop_map(Op::Revive),
        1 => (0..8usize).prop_map(Op::Partition),
        1 => (0..8usize).prop_map(Op::Heal),
        1 => (0..8usize).prop_map(Op::ForceDelete),
        1 => (0..8usize).prop_map(Op::GracefulDelete),
        1 => (0..8usize).prop_map(Op::Drain),
        2 => Just(Op::Collect),
        1 => (0..8usize).prop_map(Op::Suspend),
        1 => Just(Op::Recover),
        1 => Just(Op::RestartController),
        1 => (1..12u32).prop_map(Op::Stall),
        1 => prop::bool::weighted(0.3).prop_map(|legacy| Op::AddPod { legacy }),
    ]
}

pub(super) struct PodM {
    pub name: String,
    pub uid: String,
    /// In the API server.
    pub exists: bool,
    pub restarts: i32,
    /// Its agent speaks the per-listener protocol.
    pub legacy: bool,
    pub connected: bool,
    pub draining: bool,
    /// `None`: dead (its app too).
    pub agent: Option<Agent>,
}

pub(super) struct World {
    pub now: Instant,
    pub api: Api,
    pub pods: Vec<PodM>,
    pub wanted: Vec<Wanted>,
    pub max_per_pod: u32,
    /// The status's token ceiling.
    pub ceiling: Option<i32>,
    /// Uids the kubelet reported stopped.
    pub stopped: BTreeSet<String>,
    pub ctl: Ctl,
    /// Agents' requests on their way.
    pub wire: Vec<Sent>,
    /// A recover is pending.
    pub recover: bool,
    /// Listener → the highest token any of its Leases carried.
    pub high: BTreeMap<String, i32>,
    epochs: u64,
    /// The set's order of pods for ties, kept across controller restarts (it is the set's).
    seed: u64,
}

impl World {
    pub fn new(legacy: &[bool], max_per_pod: u32, seed: u64) -> World {
        let now = Instant::now();
        let mut w = World {
            now,
            api: Api::default(),
            pods: Vec::new(),
            wanted: (0..LISTENERS).map(|i| wanted_listener(&format!("l{i}"))).collect(),
            max_per_pod,
            ceiling: None,
            stopped: BTreeSet::new(),
            ctl: Ctl::new(now, seed),
            wire: Vec::new(),
            recover: false,
            high: BTreeMap::new(),
            epochs: 0,
            seed,
        };
        for l in legacy {
            w.add_pod(*l);
        }
        w
    }

    fn agent(&mut self) -> Agent {
        self.epochs += 1;
        Agent::new(self.epochs)
    }

    fn add_pod(&mut self, legacy: bool) {
        let n = self.pods.len();
        // Names come back (as a StatefulSet's do), never two existing pods with one name.
        let name = (0..)
            .map(|i| format!("p{i}"))
            .find(|name| !self.pods.iter().any(|p| p.exists && p.name == *name))
            .unwrap_or_default();
        let agent = Some(self.agent());
        self.pods.push(PodM {
            name,
            uid: format!("uid-{n}"),
            exists: true,
            restarts: 0,
            legacy,
            connected: true,
            draining: false,
            agent,
        });
    }

    fn pod_index(&self, i: usize) -> Option<usize> {
        (!self.pods.is_empty()).then(|| i % self.pods.len())
    }

    /// Time passes: requests sent before land, apps honour their deadlines, agents act (what
    /// they send lands at once unless `hold`).
    pub fn tick(&mut self, hold: bool) -> Result<(), TestCaseError> {
        self.now += STEP;
        let now = self.now;
        let due: Vec<Sent> = std::mem::take(&mut self.wire);
        for s in due {
            self.deliver(s)?;
        }
        let mut sent = Vec::new();
        for i in 0..self.pods.len() {
            let pod = &mut self.pods[i];
            let who = (pod.name.clone(), pod.uid.clone());
            let (legacy, connected) = (pod.legacy, pod.connected);
            if let Some(agent) = pod.agent.as_mut() {
                agent.expire(now);
                if connected {
                    sent.extend(agent.act(i, &who, legacy, &self.api, now));
                }
            }
        }
        if hold {
            self.wire = sent;
        } else {
            for s in sent {
                self.deliver(s)?;
            }
        }
        self.settle_step()
    }

    /// A request lands (conditional on its `resourceVersion`); its process hears the answer. An
    /// agent of the liveness protocol releasing a Lease whose request names a successor hands it
    /// over (checked as the controller's assignment is).
    fn deliver(&mut self, s: Sent) -> Result<(), TestCaseError> {
        let (name, uid) = (self.pods[s.pod].name.clone(), self.pods[s.pod].uid.clone());
        let who = Some((name.clone(), uid.clone()));
        let rv = self.api.rv + 1;
        if let Ask::Release { listener } = &s.ask {
            let to = (self.api.leases.get(listener)).filter(|l| l.rv == s.rv && l.holder == who && !l.terminating);
            if let Some((to, token)) = to.and_then(|l| Some((l.successor.clone()?, l.token + 1))) {
                if !self.pods[s.pod].legacy {
                    self.tenure(listener, &to, token)?;
                    if let Some(agent) = self.pods[s.pod].agent.as_mut().filter(|a| a.epoch == s.epoch) {
                        agent.answer(&s, Some(Answer::Done));
                    }
                    return Ok(());
                }
            }
        }
        let ok = match &s.ask {
            Ask::Register => self.api.live.get_mut(&uid).filter(|l| l.rv == s.rv).map(|l| {
                l.registered = true;
                l.fenced = false;
                l.leaving = s.leaving;
                l.transitions += 1;
                (l.renew, l.rv) = (rv, rv);
                Answer::Registered((l.created, l.transitions))
            }),
            Ask::Renew { .. } => self
                .api
                .live
                .get_mut(&uid)
                .filter(|l| l.rv == s.rv && l.registered)
                .map(|l| {
                    (l.renew, l.rv) = (rv, rv);
                    l.leaving |= s.leaving;
                    Answer::Done
                }),
            Ask::Ack { listener, .. } => self
                .api
                .leases
                .get_mut(listener)
                .filter(|l| l.rv == s.rv && l.holder == who)
                .map(|l| {
                    (l.renew, l.rv) = (rv, rv);
                    self.api.acknowledged.insert((listener.clone(), uid.clone(), l.token));
                    Answer::Acknowledged {
                        token: l.token,
                        requested: l.release_requested,
                    }
                }),
            Ask::Release { listener } => self
                .api
                .leases
                .get_mut(listener)
                .filter(|l| l.rv == s.rv && l.holder == who)
                .map(|l| {
                    l.holder = None;
                    l.rv = rv;
                    Answer::Done
                }),
        };
        if ok.is_some() {
            self.api.bump();
        }
        if let Some(agent) = self.pods[s.pod].agent.as_mut().filter(|a| a.epoch == s.epoch) {
            agent.answer(&s, ok);
        }
        Ok(())
    }

    /// The controller's watch sees what changed; then no listener may run on two pods.
    pub fn settle_step(&mut self) -> Result<(), TestCaseError> {
        self.ctl.observe(&self.api, self.now);
        for w in &self.wanted {
            let on: Vec<&str> = self
                .pods
                .iter()
                .filter(|p| p.agent.as_ref().is_some_and(|a| a.running.contains_key(&w.id)))
                .map(|p| p.uid.as_str())
                .collect();
            prop_assert!(on.len() <= 1, "{} runs on {:?}", w.id, on);
        }
        Ok(())
    }

    /// The garbage collector catches up: the liveness Leases of gone pods are deleted, their
    /// listener Leases marked deleted (the finalizer holds them).
    pub fn collect(&mut self) {
        let exists: BTreeSet<String> = self.pods.iter().filter(|p| p.exists).map(|p| p.uid.clone()).collect();
        self.api.live.retain(|uid, _| exists.contains(uid));
        let rv = self.api.rv + 1;
        let mut changed = false;
        for l in self.api.leases.values_mut() {
            if l.owner.as_ref().is_some_and(|o| !exists.contains(o)) && !l.terminating {
                l.terminating = true;
                l.rv = rv;
                changed = true;
            }
        }
        if changed {
            self.api.bump();
        }
    }

    pub fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Tick { hold } => return self.tick(*hold),
            Op::Reconcile => return self.reconcile(false),
            Op::LaggingReconcile => return self.reconcile(true),
            Op::DeleteLease(i) => {
                let rv = self.api.rv + 1;
                let n = self.api.leases.len().max(1);
                if let Some(l) = self.api.leases.values_mut().nth(i % n).filter(|l| !l.terminating) {
                    l.terminating = true;
                    l.rv = rv;
                    self.api.bump();
                }
            }
            Op::DeleteLiveness(i) => {
                if let Some(p) = self.pod_index(*i) {
                    let uid = self.pods[p].uid.clone();
                    self.api.live.remove(&uid);
                }
            }
            Op::Kill(i) => {
                if let Some(p) = self.pod_index(*i) {
                    self.pods[p].agent = None;
                }
            }
            Op::Term(i) => {
                if let Some(agent) = self.pod_index(*i).and_then(|p| self.pods[p].agent.as_mut()) {
                    agent.leaving = true;
                }
            }
            Op::Revive(i) => {
                if let Some(p) = self
                    .pod_index(*i)
                    .filter(|p| self.pods[*p].exists && self.pods[*p].agent.as_ref().is_none_or(|a| a.leaving))
                {
                    self.pods[p].agent = Some(self.agent());
                    self.pods[p].restarts += 1;
                }
            }
            Op::Partition(i) | Op::Heal(i) => {
                if let Some(p) = self.pod_index(*i) {
                    self.pods[p].connected = matches!(op, Op::Heal(_));
                }
            }
            Op::ForceDelete(i) => {
                if let Some(p) = self.pod_index(*i) {
                    self.pods[p].exists = false;
                }
            }
            Op::GracefulDelete(i) => self.graceful_delete(*i),
            Op::Drain(i) => {
                if let Some(p) = self.pod_index(*i) {
                    self.pods[p].draining = !self.pods[p].draining;
                }
            }
            Op::Collect => self.collect(),
            Op::Suspend(i) => {
                let l = &mut self.wanted[i % LISTENERS];
                l.suspended = !l.suspended;
            }
            Op::Recover => self.recover = true,
            Op::RestartController => self.ctl = Ctl::new(self.now, self.seed),
            Op::Stall(ticks) => self.ctl.stall(self.now + STEP * *ticks),
            Op::AddPod { legacy } => {
                if self.pods.iter().filter(|p| p.exists).count() < MAX_PODS {
                    self.add_pod(*legacy);
                }
            }
        }
        self.settle_step()
    }

    /// The pod is deleted gracefully: its agent (if it can) stops everything and releases every
    /// Lease; the kubelet stops its containers and reports them terminated.
    fn graceful_delete(&mut self, i: usize) {
        let Some(p) = self.pod_index(i).filter(|p| self.pods[*p].exists) else {
            return;
        };
        let pod = &mut self.pods[p];
        let who = Some((pod.name.clone(), pod.uid.clone()));
        let releases = pod.agent.is_some() && pod.connected;
        pod.agent = None;
        pod.exists = false;
        self.stopped.insert(pod.uid.clone());
        if releases {
            let rv = self.api.bump();
            for l in self.api.leases.values_mut().filter(|l| l.holder == who) {
                l.holder = None;
                l.rv = rv;
            }
        }
    }

    /// A quiet cluster: the controller's watches catch up, the garbage collector too, nothing is
    /// suspended, and once the controller has looked (and made the liveness Leases that are
    /// missing) every container restarts: a fresh agent of the liveness protocol, connected (a
    /// fenced agent of the per-listener protocol never registers, so it would get nothing new
    /// until replaced); gone pods' processes end. The agents then register and acknowledge what
    /// they hold before the controller looks again (an assignment judged lapsed just after a
    /// container restarted counts against the new process, which then gets nothing new in the
    /// set until it restarts again).
    pub fn quiet(&mut self) -> Result<(), TestCaseError> {
        self.ctl.stall(self.now);
        self.wire.clear();
        self.collect();
        for l in &mut self.wanted {
            l.suspended = false;
        }
        self.ctl.observe(&self.api, self.now);
        self.reconcile(false)?;
        for i in 0..self.pods.len() {
            let agent = self.pods[i].exists.then(|| self.agent());
            let pod = &mut self.pods[i];
            pod.connected = true;
            pod.draining = false;
            pod.legacy = false;
            if pod.exists {
                pod.restarts += 1;
            }
            pod.agent = agent;
        }
        for _ in 0..3 {
            self.tick(false)?;
        }
        Ok(())
    }

    /// How many listeners the quiet cluster can run.
    pub fn capacity(&self) -> usize {
        let pods = self.pods.iter().filter(|p| p.exists).count();
        match self.max_per_pod {
            0 if pods > 0 => LISTENERS,
            0 => 0,
            m => LISTENERS.min(pods * usize::try_from(m).unwrap_or(0)),
        }
    }

    /// One reconcile, as the shell makes it: the controller decides (from its caches as they
    /// are, or, `lagging`, where its last reconcile at this same instant saw them), then writes
    /// the ceiling, the fences, the liveness Leases, then the Lease writes to pods the API server
    /// has.
    pub fn reconcile(&mut self, lagging: bool) -> Result<(), TestCaseError> {
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
                eligible: !p.draining,
                ready: true,
                restarts: p.restarts,
            })
            .collect();
        let live_now = std::mem::take(&mut self.recover).then(|| self.recover_list());
        let reads = Reads {
            pods: &pods,
            wanted: &self.wanted,
            max_per_pod: self.max_per_pod,
            ceiling: self.ceiling,
            recover: live_now.as_ref(),
            stopped: &self.stopped,
        };
        let d = self.ctl.decide(&reads, lagging, self.now)?;
        // The status counts a listener running only in a tenure its holder acknowledged, whatever
        // the caches lag behind.
        for (id, state) in &d.summary.states {
            if let ListenerState::Running { uid, transitions, .. } = state {
                let tenure = (id.clone(), uid.clone(), *transitions);
                prop_assert!(
                    self.api.acknowledged.contains(&tenure),
                    "{id} counted running on {uid} with token {transitions}, a tenure never acknowledged"
                );
            }
        }
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
                    leaving: false,
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
                    leaving: false,
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
                self.tenure(listener, &(pod.clone(), pod_uid.clone()), *transitions)?;
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
                        if let Move::RequestRelease { to, .. } = m {
                            l.release_requested = true;
                            l.successor = to.as_ref().map(|s| (s.pod.clone(), s.uid.clone()));
                        }
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

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.pods {
            let running: Vec<&String> = p.agent.iter().flat_map(|a| a.running.keys()).collect();
            let reg = p.agent.as_ref().map(|a| a.reg);
            writeln!(
                f,
                "pod {} {} exists={} legacy={} connected={} agent reg={reg:?} runs {running:?}",
                p.name, p.uid, p.exists, p.legacy, p.connected
            )?;
        }
        for (id, l) in &self.api.leases {
            writeln!(f, "lease {id}: {l:?}")?;
        }
        for (uid, l) in &self.api.live {
            writeln!(f, "liveness {uid}: {l:?}")?;
        }
        writeln!(f, "ceiling {:?}, wanted {:?}", self.ceiling, self.wanted)
    }
}

fn wanted_listener(id: &str) -> Wanted {
    Wanted {
        id: id.into(),
        ..Default::default()
    }
}
