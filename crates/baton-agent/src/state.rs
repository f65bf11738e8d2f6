//! The agent's state machine, pure: its pod's liveness Lease ([`liveness`]), the listener Leases
//! assigned to its pod and the phase of each. Events go in (a Lease observed or gone, the result
//! of a request, an application's acknowledgement, shutdown, time passing), each with `now` as an
//! input; the [`Action`]s that follow come out (send a write, read a Lease back, start or stop a
//! listener, open the per-set watch). The shell (`task`, `ops`) performs them and reports back;
//! nothing here does I/O or reads a clock, so the tests step it through time by hand.
//!
//! # When a listener may run
//!
//! A listener runs from a successful *acknowledgement* (a conditional write of its Lease's
//! `renewTime`) until its deadline: the later of that write's send time and, if it was sent
//! under the current liveness registration, the send time of the registration's last successful
//! renewal, plus the lease duration, minus the safety margin. So:
//!
//! * at rest nothing but the liveness Lease is written, every quarter of the shortest lease;
//! * a listener acknowledged before the current registration (before it began, or under one the
//!   controller fenced) is not covered by its renewals: it is acknowledged again, which is also
//!   how it is kept alive when there is no registration at all (a controller of the
//!   per-listener protocol never creates the liveness Lease: then every running listener's Lease
//!   is renewed every quarter of its duration, as that protocol asks);
//! * the controller takes a listener from a pod only after a conditional write that proves the
//!   pod's agent wrote nothing since it judged it expired (a fence of the liveness Lease, then
//!   the Lease of the listener itself), so both can never win.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{AgentConfig, Start, StopReason};
use baton_api::listenerset::{lease, liveness as wire, DEFAULT_LEASE_DURATION_SECONDS};
use due::{op_due, Gates};

mod deadlines;
mod due;
mod handover;
mod liveness;
mod registration;
mod retry;
mod work;

pub(super) use liveness::{LiveChange, LiveOp, LivePhase, LiveResult, Liveness};
pub(super) use retry::Retry;

/// How long after start an agent that has seen no liveness Lease of its pod decides the
/// controller speaks the per-listener protocol (and watches every Lease of its sets).
pub(super) const LIVENESS_WAIT: Duration = Duration::from_secs(2);
/// Listener requests in flight at once (each is one connection of the client's pool).
pub(super) const MAX_OPS_IN_FLIGHT: usize = 32;
/// How long a shutting-down agent holds its releases back until its registration is marked
/// leaving: a release the controller sees before the mark would be given back to this pod.
pub(super) const LEAVING_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Ours per the API; acknowledgement (config read + conditional write) pending, not started.
    Acking,
    /// Started.
    Running,
    /// Stop emitted; waiting for the application's ack.
    Stopping,
    /// Stopped because its deadline passed; to be acknowledged again before it runs again.
    Lost,
    /// Stopped; clearing holderIdentity.
    Releasing,
}

/// A request on a listener Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    /// Read the listener's config, then write `renewTime` (conditional): the acknowledgement.
    Ack,
    /// Write `renewTime` (conditional) for a running listener no registration covers.
    Renew,
    /// Clear `holderIdentity` (conditional).
    Release,
    /// Read the Lease back (after a conflict).
    Read,
}

/// How a request ended.
#[derive(Debug)]
pub(super) enum OpError {
    Conflict,
    NotFound,
    /// 403 or 422: RBAC or an admission policy refused the write; the same write will be
    /// refused again, so it is logged (at WARN, ever more rarely) while it is retried.
    Refused(String),
    Other(String),
}

/// Whether the `n`th consecutive failure is logged at WARN: the 1st, 2nd, 4th, 8th… — a
/// refused write retried with backoff writes a handful of lines, not one per attempt.
pub(super) fn worth_a_warning(n: u32) -> bool {
    n.is_power_of_two()
}

/// A request's result: the Lease the server answered with (`None`: read, not found) and, for an
/// acknowledgement, the listener's config.
pub(super) type OpResult = Result<(Option<Lease>, Option<String>), OpError>;

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Action {
    /// Send `kind` for listener Lease `name` based on `lease` (the copy carrying the
    /// resourceVersion to be conditional on); report the result with [`State::answered`]
    /// (`tracking`: which tracking of the Lease asked).
    Send {
        name: String,
        kind: OpKind,
        lease: Box<Lease>,
        tracking: u64,
    },
    /// Send `kind` for the liveness Lease based on `lease`, renewing for `duration_seconds`;
    /// report the result with [`State::on_live_op`].
    SendLive {
        kind: LiveOp,
        lease: Box<Lease>,
        duration_seconds: i32,
        /// Mark the registration leaving (the agent shuts down).
        leaving: bool,
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
    /// Watch every Lease of the served sets: no liveness Lease appeared, so the controller
    /// speaks the per-listener protocol and does not label Leases with their holder.
    WatchSets,
}

pub(super) struct Tracked {
    pub(super) set: String,
    pub(super) listener: String,
    pub(super) lease: Lease,
    pub(super) phase: Phase,
    /// Send instant of the last successful acknowledgement or renewal of this Lease.
    pub(super) ack_base: Option<Instant>,
    /// The registration current when that write was sent (0: none).
    pub(super) ack_reg: u64,
    pub(super) duration: Duration,
    /// The request in flight: sent at, what, the registration current then.
    pub(super) in_flight: Option<(Instant, OpKind, u64)>,
    pub(super) due: Instant,
    /// Bumped on every Start, so stale acks are ignored.
    pub(super) epoch: u64,
    /// Which tracking of the Lease this is (a Lease forgotten and tracked again is another):
    /// an answer to a request of an earlier one is ignored.
    pub(super) tracking: u64,
    /// When the stop the application is to acknowledge was emitted.
    stop_sent: Option<Instant>,
    /// The deadline the published map holds for this tracking (none: it is not in it), as
    /// [`State::refresh_valid_until`] last left it.
    shown: Option<Instant>,
    retry: Retry,
}

fn rv_num(l: &Lease) -> Option<u64> {
    l.metadata.resource_version.as_deref()?.parse().ok()
}

fn lease_duration(l: &Lease) -> Duration {
    lease::duration_of(l, DEFAULT_LEASE_DURATION_SECONDS)
}

/// Why the holder must let the listener go, if it must: asked to, or its Lease is being deleted.
fn release_reason(l: &Lease) -> Option<String> {
    lease::release_requested(l).map(str::to_string).or_else(|| {
        lease::is_terminating(l).then(|| baton_api::listenerset::ReleaseReason::LeaseDeleted.as_str().to_string())
    })
}

pub(super) struct State {
    pub(super) cfg: AgentConfig,
    /// Listener Leases as last seen (watches, answers), by name.
    pub(super) known: HashMap<String, Lease>,
    /// Listener Leases held by this pod.
    pub(super) tracked: BTreeMap<String, Tracked>,
    pub(super) live: Liveness,
    started: Instant,
    /// The per-set watch is open (the controller speaks the per-listener protocol).
    pub(super) watching_sets: bool,
    pub(super) shutting_down: bool,
    /// When the shutdown began.
    leaving_since: Option<Instant>,
    /// Trackings forgotten while the published map held their deadline: each leaves it at the
    /// next [`State::refresh_valid_until`].
    shown_forgotten: Vec<((String, String), Instant)>,
    pub(super) epoch: u64,
    ops_in_flight: usize,
    /// Running listeners wait to be stopped for their release ([`handover`]).
    stops_deferred: bool,
    /// How long the application takes to stop a listener, and how fast releases go, lately
    /// ([`handover`]).
    pace: handover::Pace,
    /// Trackings of listener Leases so far.
    trackings: u64,
    /// What changed since the last look ([`work`]).
    work: work::Work,
    out: Vec<Action>,
}

impl State {
    pub(super) fn new(cfg: AgentConfig, now: Instant) -> State {
        let name = wire::liveness_lease_name(&cfg.pod_uid);
        let retry = Retry::new(cfg.retry_period, cfg.max_retry_period, &cfg.pod_uid);
        let live = Liveness::new(name, cfg.pod_name.clone(), now, retry);
        State {
            cfg,
            known: HashMap::new(),
            tracked: BTreeMap::new(),
            live,
            started: now,
            watching_sets: false,
            shutting_down: false,
            leaving_since: None,
            shown_forgotten: Vec::new(),
            epoch: 0,
            ops_in_flight: 0,
            stops_deferred: false,
            pace: handover::Pace::default(),
            trackings: 0,
            work: work::Work::default(),
            out: Vec::new(),
        }
    }

    /// The actions decided since the last call, in order.
    pub(super) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    fn is_mine(&self, l: &Lease) -> bool {
        lease::held_by(l, &self.cfg.pod_name, &self.cfg.pod_uid)
            && lease::listener_of(l).is_some_and(|(set, _)| self.cfg.serves(set))
    }

    /// A Lease seen on a watch: the pod's liveness Lease or a listener Lease (`None`: its
    /// deletion, or it left the watch's selector, `rv` then being the event's version).
    pub(super) fn observe(&mut self, name: &str, lease: Option<Lease>, now: Instant) {
        if name == self.live.name {
            let change = self.live.observe(lease, now);
            self.live_changed(change, now);
            return;
        }
        match lease {
            Some(l) if wire::is_liveness(&l) => {}
            Some(l) => {
                if let (Some(old), Some(new)) = (self.known.get(name).and_then(rv_num), rv_num(&l)) {
                    if new < old {
                        return;
                    }
                }
                self.end_replaced(name, &l);
                if let Some(t) = self.tracked.get_mut(name) {
                    if rv_num(&l) >= rv_num(&t.lease) {
                        t.lease = l.clone();
                        self.work.touch(name);
                    }
                }
                self.known.insert(name.to_string(), l);
            }
            None => {
                self.known.remove(name);
            }
        }
        self.evaluate(name, now);
        self.stop_deferred(now);
    }

    /// Another Lease under the same name (deleted and recreated between two things the watch
    /// showed), or another tenure: what runs belongs to the old one.
    fn end_replaced(&mut self, name: &str, l: &Lease) {
        let replaced = self.tracked.get(name).is_some_and(|t| {
            t.lease.metadata.uid != l.metadata.uid || lease::fencing_token(&t.lease) != lease::fencing_token(l)
        });
        if replaced {
            if self.tracked.get(name).is_some_and(|t| t.phase == Phase::Running) {
                self.emit_stop(name, StopReason::Lost, false);
            }
            self.forget(name);
        }
    }

    /// A deletion seen on one watch at version `rv`: a copy newer than that (from the other
    /// watch) stands.
    pub(super) fn observe_gone(&mut self, name: &str, rv: Option<u64>, now: Instant) {
        if name != self.live.name {
            if let (Some(known), Some(gone)) = (self.known.get(name).and_then(rv_num), rv) {
                if known > gone {
                    return;
                }
            }
        }
        self.observe(name, None, now);
    }

    fn forget(&mut self, name: &str) {
        if let Some(t) = self.tracked.remove(name) {
            self.work.touch(name);
            self.work.phase(Some(t.phase), None);
            self.work.duration(Some(t.duration), None);
            if t.in_flight.is_some() {
                self.ops_in_flight = self.ops_in_flight.saturating_sub(1);
            }
            if let Some(at) = t.shown {
                self.work.shown_count = self.work.shown_count.saturating_sub(1);
                self.shown_forgotten.push(((t.set, t.listener), at));
            }
        }
    }

    /// What lets a write due now go out (see [`op_due`]).
    fn gates(&self, now: Instant) -> Gates {
        Gates {
            may_ack: self.may_ack(now),
            current: self.live.current(),
            may_release: self.may_release(now),
        }
    }

    /// Acknowledgements may be sent: under a registration, or when none is coming (no liveness
    /// Lease after the wait, or registering keeps failing).
    fn may_ack(&self, now: Instant) -> bool {
        match self.live.phase {
            LivePhase::Registered => true,
            LivePhase::Absent => now >= self.started + LIVENESS_WAIT,
            LivePhase::Unregistered => self.live.failing(),
        }
    }

    fn evaluate(&mut self, name: &str, now: Instant) {
        if !self.tracked.contains_key(name) {
            let Some(l) = self.known.get(name) else { return };
            if !self.is_mine(l) {
                return;
            }
            let release = self.shutting_down || release_reason(l).is_some();
            // Acknowledged by this pod before this agent saw it: an earlier incarnation of the
            // agent (a restarted sidecar) may have started it, and the application may run it
            // still. It is released only once the application has applied a document without
            // it, as any stop is; an unacknowledged one nobody can have started.
            let may_run = release && lease::acknowledged(l);
            let why = match release_reason(l) {
                Some(r) if !self.shutting_down => StopReason::ReleaseRequested(r),
                _ => StopReason::Shutdown,
            };
            let (set, listener) = lease::listener_of(l).unwrap_or_default();
            let t = Tracked {
                set: set.to_string(),
                listener: listener.to_string(),
                lease: l.clone(),
                phase: match (release, may_run) {
                    (true, true) => Phase::Stopping,
                    (true, false) => Phase::Releasing,
                    _ => Phase::Acking,
                },
                ack_base: None,
                ack_reg: 0,
                duration: lease_duration(l),
                in_flight: None,
                due: now,
                epoch: 0,
                tracking: {
                    self.trackings += 1;
                    self.trackings
                },
                stop_sent: may_run.then_some(now),
                shown: None,
                retry: Retry::new(self.cfg.retry_period, self.cfg.max_retry_period, name),
            };
            debug!(lease = name, phase = ?t.phase, "tracking");
            self.work.phase(None, Some(t.phase));
            self.work.duration(None, Some(t.duration));
            self.work.touch(name);
            self.tracked.insert(name.to_string(), t);
            if may_run {
                self.emit_stop(name, why, true);
                return;
            }
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
            self.forget(name);
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
                self.stop_for_release(name, why, now);
            }
            Phase::Acking | Phase::Lost if want_release => {
                if let Some(t) = self.tracked.get_mut(name) {
                    self.work.phase(Some(t.phase), Some(Phase::Releasing));
                    t.phase = Phase::Releasing;
                    t.due = now;
                    self.work.touch(name);
                }
                self.issue(name, now);
            }
            _ => self.issue(name, now),
        }
    }

    /// Send the write this Lease's phase calls for, if it is due, none is in flight and a slot
    /// is free.
    fn issue(&mut self, name: &str, now: Instant) {
        if self.ops_in_flight >= MAX_OPS_IN_FLIGHT {
            return;
        }
        let gates = self.gates(now);
        let Some(t) = self.tracked.get_mut(name) else { return };
        let Some(kind) = op_due(t, now, gates) else {
            return;
        };
        t.in_flight = Some((now, kind, gates.current));
        self.ops_in_flight += 1;
        self.out.push(Action::Send {
            name: name.to_string(),
            kind,
            lease: Box::new(t.lease.clone()),
            tracking: t.tracking,
        });
    }

    /// Read the Lease back: after a conflict, our copy is stale.
    fn read_back(&mut self, name: &str, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        t.in_flight = Some((now, OpKind::Read, 0));
        self.ops_in_flight += 1;
        self.out.push(Action::Send {
            name: name.to_string(),
            kind: OpKind::Read,
            lease: Box::new(t.lease.clone()),
            tracking: t.tracking,
        });
    }

    /// The answer to a request the shell sent for tracking `tracking` of listener Lease `name`:
    /// [`State::on_op`] unless that Lease was forgotten (and maybe tracked again) meanwhile, or
    /// the answer is not to the request in flight.
    pub(super) fn answered(&mut self, name: &str, tracking: u64, kind: OpKind, result: OpResult, now: Instant) {
        let current = self
            .tracked
            .get(name)
            .is_some_and(|t| t.tracking == tracking && t.in_flight.is_some_and(|(_, k, _)| k == kind));
        if current {
            self.on_op(name, kind, result, now);
        }
    }

    /// The request in flight for listener Lease `name` ended.
    pub(super) fn on_op(&mut self, name: &str, kind: OpKind, result: OpResult, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        let Some((sent, _, reg)) = t.in_flight.take() else {
            return;
        };
        self.work.touch(name);
        self.ops_in_flight = self.ops_in_flight.saturating_sub(1);
        match (kind, result) {
            (OpKind::Read, Ok((lease, _))) => {
                t.due = now;
                self.observe_forced(name, lease, now);
                return;
            }
            (OpKind::Release, Ok((lease, _))) => {
                match lease.as_ref().and_then(|l| l.spec.as_ref()?.holder_identity.as_deref()) {
                    Some(to) => info!(set = %t.set, listener = %t.listener, to, "handed over"),
                    None => info!(set = %t.set, listener = %t.listener, "released"),
                }
                self.pace.released(now, now.saturating_duration_since(sent));
                self.forget(name);
                if let Some(l) = lease {
                    self.known.insert(name.to_string(), l);
                }
                self.stop_deferred(now);
                return;
            }
            (kind @ (OpKind::Ack | OpKind::Renew), Ok((Some(lease), config))) => {
                self.acknowledged(name, kind, (sent, reg), lease, config, now);
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
            (_, Err(OpError::Refused(e))) => {
                let wait = t.retry.next();
                if worth_a_warning(t.retry.failures()) {
                    warn!(lease = %name, write = ?kind, refusals = t.retry.failures(), error = %e, ?wait,
                        "the API server refused this write (RBAC or an admission policy); retrying with backoff");
                }
                t.due = now + wait;
            }
            (_, Err(OpError::Other(e))) => {
                let wait = t.retry.next();
                debug!(lease = %name, error = %e, ?wait, "write failed; retrying");
                t.due = now + wait;
            }
        }
        self.evaluate(name, now);
        self.issue_waiting(now);
        self.stop_deferred(now);
    }

    /// An acknowledgement (or renewal) sent at `sent` under registration `reg` succeeded: the
    /// listener's deadline moves, and a first acknowledgement starts it.
    fn acknowledged(
        &mut self,
        name: &str,
        kind: OpKind,
        (sent, reg): (Instant, u64),
        lease: Lease,
        config: Option<String>,
        now: Instant,
    ) {
        let release = self.shutting_down || release_reason(&lease).is_some();
        let mine = self.is_mine(&lease);
        let renew_every = self.cfg.renew_every(lease_duration(&lease));
        let current = self.live.current();
        let Some(t) = self.tracked.get_mut(name) else { return };
        self.work.touch(name);
        t.ack_base = Some(sent);
        // Covered by the registration only if it is still the current one.
        t.ack_reg = if reg != 0 && reg == current { reg } else { 0 };
        self.work.duration(Some(t.duration), Some(lease_duration(&lease)));
        t.duration = lease_duration(&lease);
        t.lease = lease.clone();
        t.retry.reset();
        // A release waits for nothing once the application has acknowledged its stop.
        t.due = if t.phase == Phase::Releasing {
            now
        } else {
            sent + renew_every
        };
        let start = kind == OpKind::Ack && matches!(t.phase, Phase::Acking | Phase::Lost) && !release && mine;
        if start {
            self.work.phase(Some(t.phase), Some(Phase::Running));
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
                self.end_replaced(name, &l);
                if let Some(t) = self.tracked.get_mut(name) {
                    t.lease = l.clone();
                    self.work.touch(name);
                }
                self.known.insert(name.to_string(), l);
            }
            None => {
                self.known.remove(name);
            }
        }
        self.evaluate(name, now);
        self.issue_waiting(now);
        self.stop_deferred(now);
    }

    /// The application acknowledged the stop emitted with `epoch`.
    pub(super) fn on_ack(&mut self, name: &str, epoch: u64, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        if t.epoch != epoch || t.phase != Phase::Stopping {
            return;
        }
        self.work.phase(Some(t.phase), Some(Phase::Releasing));
        t.phase = Phase::Releasing;
        t.due = now;
        self.work.touch(name);
        if let Some(at) = t.stop_sent.take() {
            self.pace.stopped(now.saturating_duration_since(at));
        }
        self.evaluate(name, now);
    }

    /// Time passed: safety deadlines and due writes. Returns when to be called next.
    pub(super) fn tick(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if !self.watching_sets && !self.live.seen {
            let decide_at = self.started + LIVENESS_WAIT;
            if now >= decide_at {
                info!(
                    lease = %self.live.name,
                    "no liveness Lease for this pod: the controller speaks the per-listener protocol; watching every \
                     Lease of the served sets"
                );
                self.watching_sets = true;
                self.out.push(Action::WatchSets);
            } else {
                at(decide_at);
            }
        }
        self.expire(now, &mut at);
        // Stops begun here end deadlines that were counted: an earlier wake is only a wasted
        // look.
        self.stop_deferred(now);
        self.issue_waiting(now);
        // A write due later wakes it at its time; one due that could not be sent (no free slot,
        // no registration yet) is looked at again when a request ends or the gates change.
        if let Some(t) = self.work.next_timer() {
            at(t);
        }
        // Acknowledgements held back by the wait after start (no liveness Lease now).
        if self.live.phase == LivePhase::Absent && now < self.started + LIVENESS_WAIT {
            at(self.started + LIVENESS_WAIT);
        }
        // Releases held back for the leaving mark.
        if let Some(since) = self.leaving_since.filter(|_| !self.may_release(now)) {
            at(since + LEAVING_WAIT);
        }
        self.tick_live(now, &mut at);
        #[cfg(test)]
        self.check_work(now);
        next
    }
}

#[cfg(test)]
mod tests;
