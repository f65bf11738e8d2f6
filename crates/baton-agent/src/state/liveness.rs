//! The agent's side of its pod's liveness Lease ([`baton_api::listenerset::liveness`]): register,
//! renew, notice a fence. Pure, like the rest of the state machine: the shell sends what
//! [`Liveness::issue`] asks for and reports the answer to [`Liveness::on_op`].
//!
//! A *registration* is a chain of conditional writes that starts with the write setting the
//! holder and ends with the first write that fails for any reason but a transient one (the Lease
//! changed under it and is no longer ours, or is gone). While the chain holds, every listener
//! acknowledged during it stays valid until the last successful write's send time + lease
//! duration − safety margin. A fence (the controller clearing the holder) breaks the chain: the
//! next renewal answers 409, the read that follows shows the Lease is not ours.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{OpError, Retry};
use baton_api::listenerset::liveness;
use baton_api::listenerset::{PROTOCOL_ANNOTATION, PROTOCOL_VERSION};

/// A request on the liveness Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiveOp {
    /// Set the holder to this pod and start a new registration (`leaseTransitions + 1`).
    Register,
    /// Renew the registration (`renewTime`).
    Renew,
    /// Read the Lease back (after a conflict).
    Read,
}

/// What the liveness Lease shows, for this agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LivePhase {
    /// Not seen (not created yet, deleted, or the controller speaks the per-listener protocol).
    Absent,
    /// Seen, not registered by this agent (new, fenced, or registered by an earlier incarnation).
    Unregistered,
    /// Registered by this agent: the chain of renewals holds.
    Registered,
}

/// The agent's liveness Lease and its registration.
#[derive(Debug)]
pub(crate) struct Liveness {
    pub(crate) name: String,
    pod: String,
    pub(crate) lease: Option<Lease>,
    pub(crate) phase: LivePhase,
    /// Local number of the current (or last) registration; 0 before the first.
    pub(crate) registration: u64,
    /// Send instant of the last successful write of the current registration.
    pub(crate) base: Option<Instant>,
    pub(crate) in_flight: Option<(Instant, LiveOp)>,
    pub(crate) due: Instant,
    /// The Lease was seen at least once (the controller speaks the liveness protocol).
    pub(crate) seen: bool,
    /// The agent is shutting down: every write marks the registration leaving
    /// ([`liveness::LEAVING_ANNOTATION`]), so the controller gives the pod nothing new.
    pub(crate) leaving: bool,
    /// The request in flight marks the registration leaving.
    carries_mark: bool,
    /// A write that marked the registration leaving succeeded.
    marked: bool,
    retry: Retry,
}

/// The result of a liveness request: the Lease the server answered with (`None`: read, not found).
pub(crate) type LiveResult = Result<Option<Lease>, OpError>;

/// What a finished liveness request changed for the listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiveChange {
    Nothing,
    /// A new registration began: every listener must be acknowledged again under it.
    Registered,
    /// The registration ended (fenced, deleted, taken): what it covered stops at its deadline.
    Ended,
}

impl Liveness {
    pub(crate) fn new(name: String, pod: String, now: Instant, retry: Retry) -> Self {
        Liveness {
            name,
            pod,
            lease: None,
            phase: LivePhase::Absent,
            registration: 0,
            base: None,
            in_flight: None,
            due: now,
            seen: false,
            leaving: false,
            carries_mark: false,
            marked: false,
            retry,
        }
    }

    /// The agent shuts down: mark the registration leaving now (a renewal at once), not at the
    /// next renewal's time, or the controller keeps assigning to the pod what its agent releases.
    pub(crate) fn leave(&mut self, now: Instant) {
        self.leaving = true;
        if self.phase == LivePhase::Registered && self.retry.failures() == 0 {
            self.due = now;
        }
    }

    /// Whether the controller can know the agent leaves: its registration is marked leaving, or
    /// there is none to mark, or marking it fails (releases are then not held back for it).
    pub(crate) fn left(&self) -> bool {
        self.phase != LivePhase::Registered || self.marked || self.retry.failures() > 0
    }

    /// When the next write is due after one sent at `sent` succeeded: at once when the agent
    /// began leaving after it was sent (the mark must not wait for a renewal's time).
    fn after_success(&mut self, sent: Instant, now: Instant, renew_every: Duration) -> Instant {
        self.marked |= self.carries_mark;
        if self.leaving && !self.marked {
            now
        } else {
            sent + renew_every
        }
    }

    /// Whether the Lease carries the protocol this agent speaks (written by the controller).
    fn speaks_protocol(lease: &Lease) -> bool {
        lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PROTOCOL_ANNOTATION))
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| PROTOCOL_VERSION.parse::<u32>().is_ok_and(|ours| v >= ours))
    }

    /// Whether a copy of the Lease is still this agent's current registration.
    fn still_ours(&self, lease: &Lease) -> bool {
        let Some(mine) = self.lease.as_ref() else { return false };
        lease.metadata.uid == mine.metadata.uid
            && liveness::registration(lease, &self.pod).is_some()
            && liveness::registration(lease, &self.pod) == liveness::registration(mine, &self.pod)
    }

    /// The registration ends: listeners it covered keep their deadline, nothing extends it.
    fn end(&mut self, why: &str) -> LiveChange {
        let was = self.phase == LivePhase::Registered;
        self.phase = if self.lease.is_some() {
            LivePhase::Unregistered
        } else {
            LivePhase::Absent
        };
        if was {
            warn!(lease = %self.name, "liveness registration ended: {why}; registering again");
            LiveChange::Ended
        } else {
            LiveChange::Nothing
        }
    }

    /// A copy seen on the watch (`None`: deleted).
    pub(crate) fn observe(&mut self, lease: Option<Lease>, now: Instant) -> LiveChange {
        let Some(l) = lease else {
            self.lease = None;
            return self.end("its liveness Lease was deleted");
        };
        if !Self::speaks_protocol(&l) {
            return LiveChange::Nothing;
        }
        self.seen = true;
        let newer = match (rv(self.lease.as_ref()), rv(Some(&l))) {
            (Some(a), Some(b)) => b >= a || self.lease.as_ref().map(|m| &m.metadata.uid) != Some(&l.metadata.uid),
            _ => true,
        };
        if !newer {
            return LiveChange::Nothing;
        }
        if self.phase == LivePhase::Registered && !self.still_ours(&l) {
            self.lease = Some(l);
            // Register again now, not at the renewal's time: until then nothing it covered is
            // extended.
            self.due = now;
            return self.end("the controller fenced it or it was replaced");
        }
        if self.phase == LivePhase::Absent {
            self.phase = LivePhase::Unregistered;
            self.due = now;
        }
        self.lease = Some(l);
        LiveChange::Nothing
    }

    /// When the next request is due: a retry's time, or for a registration the last renewal +
    /// `renew_every` (the interval of the shortest lease held now, which may be shorter than when
    /// that renewal was sent).
    pub(crate) fn next_due(&self, renew_every: Duration) -> Instant {
        match (self.phase, self.base) {
            (LivePhase::Registered, Some(base)) if self.retry.failures() == 0 => self.due.min(base + renew_every),
            _ => self.due,
        }
    }

    /// The request to send now, if one is due: `(kind, the copy to be conditional on)`.
    pub(crate) fn issue(&mut self, now: Instant, renew_every: Duration) -> Option<(LiveOp, Lease)> {
        if self.in_flight.is_some() || now < self.next_due(renew_every) {
            return None;
        }
        let lease = self.lease.clone()?;
        let op = match self.phase {
            LivePhase::Absent => return None,
            LivePhase::Unregistered => LiveOp::Register,
            LivePhase::Registered => LiveOp::Renew,
        };
        self.in_flight = Some((now, op));
        self.carries_mark = self.leaving;
        Some((op, lease))
    }

    /// A request ended.
    pub(crate) fn on_op(&mut self, op: LiveOp, result: LiveResult, now: Instant, renew_every: Duration) -> LiveChange {
        let Some((sent, kind)) = self.in_flight.take() else {
            return LiveChange::Nothing;
        };
        debug_assert_eq!(kind, op);
        match (op, result) {
            (LiveOp::Register, Ok(Some(l))) => {
                self.registration += 1;
                self.lease = Some(l);
                self.phase = LivePhase::Registered;
                self.base = Some(sent);
                self.due = self.after_success(sent, now, renew_every);
                self.retry.reset();
                info!(lease = %self.name, "liveness registered");
                LiveChange::Registered
            }
            (LiveOp::Renew, Ok(Some(l))) => {
                self.lease = Some(l);
                self.base = Some(sent);
                self.due = self.after_success(sent, now, renew_every);
                self.retry.reset();
                LiveChange::Nothing
            }
            (LiveOp::Read, Ok(Some(l))) => {
                self.due = now;
                if self.phase == LivePhase::Registered && self.still_ours(&l) {
                    // Our own write landed unanswered, or something else touched the Lease:
                    // still our registration; renew on this copy.
                    self.lease = Some(l);
                    return LiveChange::Nothing;
                }
                self.lease = Some(l);
                self.end("the controller fenced it")
            }
            (_, Ok(None)) | (_, Err(OpError::NotFound)) => {
                self.lease = None;
                self.end("its liveness Lease is gone")
            }
            (_, Err(OpError::Conflict)) => {
                debug!(lease = %self.name, "liveness conflict; re-reading");
                // Read back now: the shell sends the read right away.
                self.in_flight = Some((now, LiveOp::Read));
                LiveChange::Nothing
            }
            (_, Err(OpError::Refused(e))) => {
                let wait = self.retry.next();
                if super::worth_a_warning(self.retry.failures()) {
                    warn!(lease = %self.name, refusals = self.retry.failures(), error = %e, ?wait,
                        "the API server refused this liveness write (RBAC or an admission policy); retrying with backoff");
                }
                self.due = now + wait;
                LiveChange::Nothing
            }
            (_, Err(OpError::Other(e))) => {
                let wait = self.retry.next();
                debug!(lease = %self.name, error = %e, ?wait, "liveness write failed; retrying");
                self.due = now + wait;
                LiveChange::Nothing
            }
        }
    }

    /// Whether a read was just asked for by [`Self::on_op`] (a conflict).
    pub(crate) fn reading(&self) -> Option<Lease> {
        match self.in_flight {
            Some((_, LiveOp::Read)) => self.lease.clone(),
            _ => None,
        }
    }

    /// Registering has failed several times in a row (listeners are then acknowledged without
    /// waiting for it, and kept alive by their own Leases).
    pub(crate) fn failing(&self) -> bool {
        self.retry.failures() >= 3
    }

    /// The registration current now (0: none).
    pub(crate) fn current(&self) -> u64 {
        if self.phase == LivePhase::Registered {
            self.registration
        } else {
            0
        }
    }
}

fn rv(l: Option<&Lease>) -> Option<u64> {
    l?.metadata.resource_version.as_deref()?.parse().ok()
}
