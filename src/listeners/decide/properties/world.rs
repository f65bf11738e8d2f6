//! A small cluster: an API server holding the set's listener Leases and the pods' liveness
//! Leases, pods with their agents ([`super::agent`]), and the controller, which decides from its
//! caches (current, or where its last reconcile saw them) and its watch's observations (each
//! change seen as it lands), writes its ceiling first, then its fences, liveness Leases and Lease
//! writes, each conditional as the API server makes them.
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tokio::time::Instant;

use super::super::*;
use super::agent::{Agent, Answer, Ask, Sent};
use super::controller::Ctl;
use super::Op;

pub(super) const STEP: Duration = Duration::from_millis(250);
pub(super) const LISTENERS: usize = 4;
const MAX_PODS: usize = 4;

/// A listener Lease as the API server holds it.
#[derive(Clone, Debug)]
pub(super) struct ListenerLease {
    pub holder: Option<(String, String)>,
    /// The uid its Pod ownerReference (and holder label) names; a release keeps it.
    pub owner: Option<String>,
    pub token: i32,
    pub rv: u64,
    pub renew: u64,
    pub acquire: u64,
    pub release_requested: bool,
    pub terminating: bool,
}

/// A pod's liveness Lease as the API server holds it.
#[derive(Clone, Debug)]
pub(super) struct LiveM {
    /// When it was created (its uid).
    pub created: u64,
    pub registered: bool,
    pub transitions: i32,
    pub renew: u64,
    pub rv: u64,
    pub fenced: bool,
}

#[derive(Default)]
pub(super) struct Api {
    pub rv: u64,
    /// By listener.
    pub leases: BTreeMap<String, ListenerLease>,
    /// By pod uid.
    pub live: BTreeMap<String, LiveM>,
}

impl Api {
    pub fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }
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
}

impl World {
    pub fn new(legacy: &[bool], max_per_pod: u32) -> World {
        let now = Instant::now();
        let mut w = World {
            now,
            api: Api::default(),
            pods: Vec::new(),
            wanted: (0..LISTENERS).map(|i| wanted_listener(&format!("l{i}"))).collect(),
            max_per_pod,
            ceiling: None,
            stopped: BTreeSet::new(),
            ctl: Ctl::new(now),
            wire: Vec::new(),
            recover: false,
            high: BTreeMap::new(),
            epochs: 0,
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
            self.deliver(s);
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
                self.deliver(s);
            }
        }
        self.settle_step()
    }

    /// A request lands (conditional on its `resourceVersion`); its process hears the answer.
    fn deliver(&mut self, s: Sent) {
        let (name, uid) = (self.pods[s.pod].name.clone(), self.pods[s.pod].uid.clone());
        let who = Some((name.clone(), uid.clone()));
        let rv = self.api.rv + 1;
        let ok = match &s.ask {
            Ask::Register => self.api.live.get_mut(&uid).filter(|l| l.rv == s.rv).map(|l| {
                l.registered = true;
                l.fenced = false;
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
                    Answer::Done
                }),
            Ask::Ack { listener, .. } => self
                .api
                .leases
                .get_mut(listener)
                .filter(|l| l.rv == s.rv && l.holder == who)
                .map(|l| {
                    (l.renew, l.rv) = (rv, rv);
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
            Op::Revive(i) => {
                if let Some(p) = self
                    .pod_index(*i)
                    .filter(|p| self.pods[*p].exists && self.pods[*p].agent.is_none())
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
            Op::Collect => self.collect(),
            Op::Suspend(i) => {
                let l = &mut self.wanted[i % LISTENERS];
                l.suspended = !l.suspended;
            }
            Op::Recover => self.recover = true,
            Op::RestartController => self.ctl = Ctl::new(self.now),
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
