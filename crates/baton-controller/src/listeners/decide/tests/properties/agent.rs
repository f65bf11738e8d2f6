//! The agents of the simulated cluster, following their side of the protocol (`crate::agent`)
//! and, above all, its safety rule: a listener runs from a successful acknowledgement until the
//! later of that acknowledgement's send time and, if it was sent under the registration still
//! current, that registration's last successful renewal's send time, plus the lease duration,
//! minus the safety margin. A fence ends a registration: no renewal of it succeeds afterwards.
//! Agents of the per-listener protocol (`legacy`) never register and renew every Lease they
//! hold instead.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::api::{Api, D};

/// The agents' safety margin.
pub(super) const MARGIN: Duration = Duration::from_millis(500);
/// Ticks between two renewals (a quarter of the lease duration).
const RENEW_EVERY: u32 = 2;

/// A listener the pod's app runs.
#[derive(Clone, Debug)]
pub(super) struct Run {
    pub token: i32,
    /// The send time of its last successful acknowledgement.
    pub ack: Instant,
    /// The registration that acknowledgement was sent under, if still current when it succeeded.
    pub reg: Option<i32>,
}

/// One agent process (and its app: they die together).
#[derive(Clone, Debug)]
pub(super) struct Agent {
    /// Tells this process's requests from those of the one before it.
    pub epoch: u64,
    /// The registration it holds, as far as it knows (numbered by this process, as the agent
    /// does: a Lease made anew numbers its registrations from 0 again).
    pub reg: Option<i32>,
    /// The Lease copy that registration is on: (its creation, its `leaseTransitions`).
    reg_on: Option<(u64, i32)>,
    registrations: i32,
    /// Registration → the send time of its last successful write (registration or renewal).
    pub regs: BTreeMap<i32, Instant>,
    pub running: BTreeMap<String, Run>,
    /// It shuts down (SIGTERM): it marks its registration leaving, stops and releases everything
    /// it holds, and everything assigned to it after.
    pub leaving: bool,
    /// Requests in flight: "" for the liveness Lease, else a listener.
    in_flight: BTreeSet<String>,
    ticks: u32,
}

/// What an agent asks of the API server.
#[derive(Clone, Debug)]
pub(super) enum Ask {
    Register,
    Renew { reg: i32 },
    Ack { listener: String, reg: Option<i32> },
    Release { listener: String },
}

/// A request on its way: from pod `pod` (its index), process `epoch`, sent at `at`,
/// conditional on `rv`.
#[derive(Clone, Debug)]
pub(super) struct Sent {
    pub pod: usize,
    pub epoch: u64,
    pub at: Instant,
    pub rv: u64,
    pub ask: Ask,
    /// Sent by an agent shutting down: a liveness write marks the registration leaving.
    pub leaving: bool,
}

/// What a successful request answers.
#[derive(Clone, Copy, Debug)]
pub(super) enum Answer {
    /// Registered on the Lease copy (created at, `leaseTransitions`).
    Registered((u64, i32)),
    Acknowledged {
        token: i32,
        requested: bool,
    },
    Done,
}

impl Ask {
    fn key(&self) -> &str {
        match self {
            Ask::Register | Ask::Renew { .. } => "",
            Ask::Ack { listener, .. } | Ask::Release { listener } => listener,
        }
    }
}

impl Agent {
    pub fn new(epoch: u64) -> Agent {
        Agent {
            epoch,
            reg: None,
            reg_on: None,
            registrations: 0,
            regs: BTreeMap::new(),
            running: BTreeMap::new(),
            leaving: false,
            in_flight: BTreeSet::new(),
            ticks: 0,
        }
    }

    /// When the app stops `run` unless something extends it first.
    pub fn deadline(&self, run: &Run) -> Instant {
        let base = run
            .reg
            .and_then(|r| self.regs.get(&r))
            .map_or(run.ack, |b| run.ack.max(*b));
        base + D - MARGIN
    }

    /// The app honours its deadlines.
    pub fn expire(&mut self, now: Instant) {
        let deadlines: Vec<(String, Instant)> = self
            .running
            .iter()
            .map(|(id, run)| (id.clone(), self.deadline(run)))
            .collect();
        for (id, until) in deadlines {
            if now >= until {
                self.running.remove(&id);
            }
        }
    }

    fn send(&mut self, out: &mut Vec<Sent>, (pod, now): (usize, Instant), rv: u64, ask: Ask) {
        if self.in_flight.insert(ask.key().to_string()) {
            out.push(Sent {
                pod,
                epoch: self.epoch,
                at: now,
                rv,
                ask,
                leaving: self.leaving,
            });
        }
    }

    /// One tick of a connected agent of pod `pod` (index) named `who`: what it sends.
    pub fn act(&mut self, pod: usize, who: &(String, String), legacy: bool, api: &Api, now: Instant) -> Vec<Sent> {
        self.ticks += 1;
        let renew_due = self.ticks.is_multiple_of(RENEW_EVERY);
        let me = (pod, now);
        let mut out = Vec::new();
        // It watches its Leases: one gone or naming another pod stops at once.
        self.running
            .retain(|id, _| api.leases.get(id).is_some_and(|l| l.holder.as_ref() == Some(who)));
        if !legacy {
            match api.live.get(&who.1) {
                None => self.reg = None,
                Some(l) if l.registered && self.reg_on == Some((l.created, l.transitions)) => {
                    // Shutting down: the mark is written at once, not at the renewal's time.
                    let mark = self.leaving && !l.leaving;
                    if let Some(reg) = self.reg.filter(|_| renew_due || mark) {
                        self.send(&mut out, me, l.rv, Ask::Renew { reg });
                    }
                }
                Some(l) => {
                    self.reg = None;
                    self.send(&mut out, me, l.rv, Ask::Register);
                }
            }
        }
        for (id, lease) in api.leases.iter().filter(|(_, l)| l.holder.as_ref() == Some(who)) {
            let listener = id.clone();
            let running = self.running.get(id).map(|r| r.reg);
            // Asked to let it go, (an agent of the liveness protocol) its Lease is being deleted,
            // or it shuts down: stop, then release.
            if lease.release_requested || (lease.terminating && !legacy) || self.leaving {
                self.running.remove(id);
                self.send(&mut out, me, lease.rv, Ask::Release { listener });
            } else if legacy {
                if running.is_none() || renew_due {
                    self.send(&mut out, me, lease.rv, Ask::Ack { listener, reg: None });
                }
            } else if let Some(reg) = self.reg {
                // Acknowledged under this registration, or again.
                if running != Some(Some(reg)) {
                    self.send(
                        &mut out,
                        me,
                        lease.rv,
                        Ask::Ack {
                            listener,
                            reg: Some(reg),
                        },
                    );
                }
            }
        }
        out
    }

    /// The answer to a request of this process: `ok` its success, with for a registration the
    /// Lease copy it is on, for an acknowledgement the token and whether a release is requested.
    pub fn answer(&mut self, sent: &Sent, ok: Option<Answer>) {
        self.in_flight.remove(sent.ask.key());
        match (&sent.ask, ok) {
            (Ask::Register, Some(Answer::Registered(on))) => {
                self.registrations += 1;
                let reg = self.registrations;
                (self.reg, self.reg_on) = (Some(reg), Some(on));
                self.regs.insert(reg, sent.at);
            }
            (Ask::Renew { reg }, Some(_)) => {
                let last = self.regs.entry(*reg).or_insert(sent.at);
                *last = (*last).max(sent.at);
            }
            (Ask::Renew { reg }, None) if self.reg == Some(*reg) => self.reg = None,
            (
                Ask::Ack { listener, reg },
                Some(Answer::Acknowledged {
                    token,
                    requested: false,
                }),
            ) => {
                let reg = reg.filter(|r| self.reg == Some(*r));
                let run = Run {
                    token,
                    ack: sent.at,
                    reg,
                };
                self.running.insert(listener.clone(), run);
            }
            _ => {}
        }
    }
}
