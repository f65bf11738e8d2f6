//! The agent's state machine, pure: what it knows of every Lease it has seen, the ones it holds
//! and the phase of each. Events go in (a Lease observed or gone, the result of a request, an
//! application's acknowledgement, shutdown, time passing), each with `now` as an input; the
//! [`Action`]s that follow come out (send a write, read a Lease back, start or stop a listener).
//! The shell (`task`, `ops`) performs them and reports back; nothing here does I/O or reads a
//! clock, so the tests step it through time by hand.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{AgentConfig, Start, StopReason};
use crate::api::listenerset::lease;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Ours per the API; renew + config read in progress, not started.
    Acquiring,
    /// Started.
    Running,
    /// Stop emitted; waiting for the application's ack, still renewing.
    Stopping,
    /// Stopped because renewals failed; retrying to acquire.
    Lost,
    /// Stopped; clearing holderIdentity.
    Releasing,
}

/// The request a phase calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    /// Renew (conditional update), then read the listener's config.
    Acquire,
    /// Renew (conditional update).
    Renew,
    /// Clear `holderIdentity` (conditional update).
    Release,
    /// Read the Lease back (after a conflict).
    Read,
}

/// How a request ended.
#[derive(Debug)]
pub(super) enum OpError {
    Conflict,
    NotFound,
    Other(String),
}

/// A request's result: the Lease the server answered with (`None`: read, not found) and, for an
/// acquire, the listener's config.
pub(super) type OpResult = Result<(Option<Lease>, Option<String>), OpError>;

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Action {
    /// Send `kind` for Lease `name` based on `lease` (the copy carrying the resourceVersion to
    /// be conditional on); report the result with [`State::on_op`].
    Send {
        name: String,
        kind: OpKind,
        lease: Box<Lease>,
    },
    /// Tell the application to run a listener.
    Start(Start),
    /// Tell the application to stop a listener. With `ack = Some(epoch)`, report its
    /// acknowledgement with [`State::on_ack`]`(name, epoch)`.
    Stop {
        name: String,
        set: String,
        listener: String,
        reason: StopReason,
        ack: Option<u64>,
    },
}

pub(super) struct Tracked {
    pub(super) set: String,
    pub(super) listener: String,
    pub(super) lease: Lease,
    pub(super) phase: Phase,
    /// Send instant of the last successful write of ours.
    pub(super) base: Option<Instant>,
    pub(super) duration: Duration,
    /// Send instant of the request in flight, if any.
    pub(super) in_flight: Option<Instant>,
    pub(super) due: Instant,
    /// Bumped on every Start, so stale acks are ignored.
    pub(super) epoch: u64,
}

fn rv_num(l: &Lease) -> Option<u64> {
    l.metadata.resource_version.as_deref()?.parse().ok()
}

fn lease_duration(l: &Lease) -> Duration {
    let secs = l
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .filter(|d| *d > 0)
        .unwrap_or(crate::api::listenerset::DEFAULT_LEASE_DURATION_SECONDS);
    Duration::from_secs(u64::try_from(secs).unwrap_or(15))
}

fn release_reason(l: &Lease) -> Option<String> {
    lease::release_requested(l).map(str::to_string)
}

pub(super) struct State {
    pub(super) cfg: AgentConfig,
    pub(super) known: HashMap<String, Lease>,
    pub(super) tracked: BTreeMap<String, Tracked>,
    pub(super) shutting_down: bool,
    pub(super) epoch: u64,
    out: Vec<Action>,
}

impl State {
    pub(super) fn new(cfg: AgentConfig) -> State {
        State {
            cfg,
            known: HashMap::new(),
            tracked: BTreeMap::new(),
            shutting_down: false,
            epoch: 0,
            out: Vec::new(),
        }
    }

    /// The actions decided since the last call, in order.
    pub(super) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    fn is_mine(&self, l: &Lease) -> bool {
        lease::held_by(l, &self.cfg.pod_name, &self.cfg.pod_uid)
    }

    fn emit_stop(&mut self, name: &str, reason: StopReason, want_ack: bool) {
        let Some(t) = self.tracked.get(name) else { return };
        info!(set = %t.set, listener = %t.listener, ?reason, "stop");
        self.out.push(Action::Stop {
            name: name.to_string(),
            set: t.set.clone(),
            listener: t.listener.clone(),
            reason,
            ack: want_ack.then_some(t.epoch),
        });
    }

    /// A newer copy of a Lease (`None`: its deletion) was seen on the watch.
    pub(super) fn observe(&mut self, name: &str, lease: Option<Lease>, now: Instant) {
        match lease {
            Some(l) => {
                if let (Some(old), Some(new)) = (self.known.get(name).and_then(rv_num), rv_num(&l)) {
                    if new < old {
                        return;
                    }
                }
                // Another Lease under the same name (deleted and recreated between two things
                // the watch showed), or another tenure: what runs belongs to the old one.
                let replaced = self.tracked.get(name).is_some_and(|t| {
                    t.lease.metadata.uid != l.metadata.uid || lease::fencing_token(&t.lease) != lease::fencing_token(&l)
                });
                if replaced {
                    if self.tracked.get(name).is_some_and(|t| t.phase == Phase::Running) {
                        self.emit_stop(name, StopReason::Lost, false);
                    }
                    self.tracked.remove(name);
                }
                if let Some(t) = self.tracked.get_mut(name) {
                    let newer = match (rv_num(&t.lease), rv_num(&l)) {
                        (Some(a), Some(b)) => b >= a,
                        _ => true,
                    };
                    if newer {
                        t.lease = l.clone();
                    }
                }
                self.known.insert(name.to_string(), l);
            }
            None => {
                self.known.remove(name);
            }
        }
        self.evaluate(name, now);
    }

    /// Each running listener's safety deadline, `(set, listener)` → the instant at which the
    /// agent stops it unless a renewal succeeds first (last renewal sent + duration − margin).
    pub(super) fn valid_until(&self) -> BTreeMap<(String, String), Instant> {
        self.tracked
            .values()
            .filter(|t| t.phase == Phase::Running)
            .filter_map(|t| {
                let base = t.base?;
                let until = base + t.duration.saturating_sub(self.cfg.margin(t.duration));
                Some(((t.set.clone(), t.listener.clone()), until))
            })
            .collect()
    }

    /// Begin a graceful shutdown: stop every listener and release every Lease.
    pub(super) fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let names: Vec<String> = self.tracked.keys().cloned().collect();
        for name in names {
            self.evaluate(&name, now);
        }
    }

    fn evaluate(&mut self, name: &str, now: Instant) {
        if !self.tracked.contains_key(name) {
            let Some(l) = self.known.get(name) else { return };
            if !self.is_mine(l) {
                return;
            }
            let release = self.shutting_down || release_reason(l).is_some();
            let (set, listener) = lease::listener_of(l).unwrap_or_default();
            let t = Tracked {
                set: set.to_string(),
                listener: listener.to_string(),
                lease: l.clone(),
                phase: if release { Phase::Releasing } else { Phase::Acquiring },
                base: None,
                duration: lease_duration(l),
                in_flight: None,
                due: now,
                epoch: 0,
            };
            debug!(lease = name, phase = ?t.phase, "tracking");
            self.tracked.insert(name.to_string(), t);
        }
        let Some(t) = self.tracked.get(name) else { return };
        if t.in_flight.is_some() {
            return;
        }
        let gone = !self.known.contains_key(name);
        if gone || !self.is_mine(&t.lease) {
            if matches!(t.phase, Phase::Running) {
                self.emit_stop(name, StopReason::Lost, false);
            }
            self.tracked.remove(name);
            return;
        }
        let reason = release_reason(&t.lease);
        let want_release = self.shutting_down || reason.is_some();
        match t.phase {
            Phase::Running if want_release => {
                let why = match reason {
                    Some(r) if !self.shutting_down => StopReason::ReleaseRequested(r),
                    _ => StopReason::Shutdown,
                };
                self.emit_stop(name, why, true);
                if let Some(t) = self.tracked.get_mut(name) {
                    t.phase = Phase::Stopping;
                }
            }
            Phase::Acquiring | Phase::Lost if want_release => {
                if let Some(t) = self.tracked.get_mut(name) {
                    t.phase = Phase::Releasing;
                    t.due = now;
                }
                self.issue(name, now);
            }
            _ => self.issue(name, now),
        }
    }

    /// Send the write this Lease's phase calls for, if it is due and none is in flight.
    fn issue(&mut self, name: &str, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        if t.in_flight.is_some() || now < t.due {
            return;
        }
        let kind = match t.phase {
            Phase::Acquiring | Phase::Lost => OpKind::Acquire,
            Phase::Running | Phase::Stopping => OpKind::Renew,
            Phase::Releasing => OpKind::Release,
        };
        t.in_flight = Some(now);
        self.out.push(Action::Send {
            name: name.to_string(),
            kind,
            lease: Box::new(t.lease.clone()),
        });
    }

    /// Read the Lease back: after a conflict, our copy is stale.
    fn read_back(&mut self, name: &str, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        t.in_flight = Some(now);
        self.out.push(Action::Send {
            name: name.to_string(),
            kind: OpKind::Read,
            lease: Box::new(t.lease.clone()),
        });
    }

    /// The request in flight for `name` ended.
    pub(super) fn on_op(&mut self, name: &str, kind: OpKind, result: OpResult, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        let Some(sent) = t.in_flight.take() else { return };
        match (kind, result) {
            (OpKind::Read, Ok((lease, _))) => {
                t.due = now;
                self.observe_forced(name, lease, now);
                return;
            }
            (OpKind::Release, Ok((lease, _))) => {
                info!(set = %t.set, listener = %t.listener, "released");
                self.tracked.remove(name);
                if let Some(l) = lease {
                    self.known.insert(name.to_string(), l);
                }
                return;
            }
            (kind @ (OpKind::Acquire | OpKind::Renew), Ok((Some(lease), config))) => {
                self.renewed(name, kind, sent, lease, config);
            }
            (_, Ok(_)) => {}
            (_, Err(OpError::Conflict)) => {
                debug!(lease = %name, "conflict; re-reading");
                self.read_back(name, now);
                return;
            }
            (_, Err(OpError::NotFound)) => {
                self.known.remove(name);
            }
            (_, Err(OpError::Other(e))) => {
                debug!(lease = %name, error = %e, "write failed; retrying");
                t.due = now + self.cfg.retry_period;
            }
        }
        self.evaluate(name, now);
    }

    /// A renewal sent at `sent` succeeded: the safety deadline moves, and an acquisition starts
    /// the listener.
    fn renewed(&mut self, name: &str, kind: OpKind, sent: Instant, lease: Lease, config: Option<String>) {
        let release = self.shutting_down || release_reason(&lease).is_some();
        let mine = self.is_mine(&lease);
        let renew_every = self.cfg.renew_every(lease_duration(&lease));
        let Some(t) = self.tracked.get_mut(name) else { return };
        t.base = Some(sent);
        t.duration = lease_duration(&lease);
        t.due = sent + renew_every;
        t.lease = lease.clone();
        let start = kind == OpKind::Acquire && matches!(t.phase, Phase::Acquiring | Phase::Lost) && !release && mine;
        if start {
            t.phase = Phase::Running;
            self.epoch += 1;
            t.epoch = self.epoch;
            let token = lease::fencing_token(&lease);
            info!(set = %t.set, listener = %t.listener, token, "start");
            self.out.push(Action::Start(Start {
                set: t.set.clone(),
                listener: t.listener.clone(),
                config,
                fencing_token: token,
            }));
        }
        self.known.insert(name.to_string(), lease);
    }

    /// A copy read straight from the server: newer than anything seen, whatever its rv.
    fn observe_forced(&mut self, name: &str, lease: Option<Lease>, now: Instant) {
        match lease {
            Some(l) => {
                if let Some(t) = self.tracked.get_mut(name) {
                    t.lease = l.clone();
                }
                self.known.insert(name.to_string(), l);
            }
            None => {
                self.known.remove(name);
            }
        }
        self.evaluate(name, now);
    }

    /// The application acknowledged the stop emitted with `epoch`.
    pub(super) fn on_ack(&mut self, name: &str, epoch: u64, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        if t.epoch != epoch || t.phase != Phase::Stopping {
            return;
        }
        t.phase = Phase::Releasing;
        t.due = now;
        self.evaluate(name, now);
    }

    /// Time passed: safety deadlines and due writes. Returns when to be called next.
    pub(super) fn tick(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let names: Vec<String> = self.tracked.keys().cloned().collect();
        for name in names {
            let Some(t) = self.tracked.get(&name) else { continue };
            if matches!(t.phase, Phase::Running | Phase::Stopping) {
                let base = t.base.unwrap_or(now);
                let deadline = base + t.duration.saturating_sub(self.cfg.margin(t.duration));
                if now < deadline {
                    next = Some(next.map_or(deadline, |n| n.min(deadline)));
                } else if t.phase == Phase::Running {
                    warn!(set = %t.set, listener = %t.listener, "renewals failed for too long; stopping before the Lease can expire");
                    self.emit_stop(&name, StopReason::RenewFailed, false);
                    if let Some(t) = self.tracked.get_mut(&name) {
                        t.phase = Phase::Lost;
                        t.epoch = 0;
                    }
                }
                // Stopping past the deadline: the stop is out; the release still waits for its ack.
            }
            self.issue(&name, now);
            if let Some(t) = self.tracked.get(&name) {
                if t.in_flight.is_none() {
                    next = Some(next.map_or(t.due, |n| n.min(t.due)));
                }
            }
        }
        next
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
