//! What the agent knows and decides: every Lease seen, the ones it holds and the phase of
//! each, and the Start and Stop events that follow. The API requests are in `ops`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::ops::{OpDone, OpError, OpKind};
use super::{AgentConfig, AgentEvent, Start, Stop, StopReason};
use crate::api::listenerset::{LISTENERSET_LABEL, LISTENER_LABEL, RELEASE_REQUESTED_ANNOTATION};

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

pub(super) struct Tracked {
    pub(super) set: String,
    pub(super) listener: String,
    pub(super) lease: Lease,
    pub(super) phase: Phase,
    /// Send instant of the last successful write of ours.
    pub(super) base: Option<Instant>,
    pub(super) duration: Duration,
    pub(super) busy: bool,
    pub(super) due: Instant,
    /// Bumped on every Start, so stale acks are ignored.
    pub(super) epoch: u64,
}

fn rv_num(l: &Lease) -> Option<u64> {
    l.metadata.resource_version.as_deref()?.parse().ok()
}

fn label<'a>(l: &'a Lease, key: &str) -> Option<&'a str> {
    l.metadata.labels.as_ref()?.get(key).map(String::as_str)
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
    l.metadata
        .annotations
        .as_ref()?
        .get(RELEASE_REQUESTED_ANNOTATION)
        .cloned()
}

pub(super) struct State {
    pub(super) cfg: AgentConfig,
    pub(super) client: kube::Client,
    pub(super) leases: Api<Lease>,
    pub(super) known: HashMap<String, Lease>,
    pub(super) tracked: BTreeMap<String, Tracked>,
    pub(super) events: mpsc::UnboundedSender<AgentEvent>,
    pub(super) ops: FuturesUnordered<futures::future::BoxFuture<'static, OpDone>>,
    pub(super) acks: FuturesUnordered<futures::future::BoxFuture<'static, (String, u64)>>,
    pub(super) shutting_down: bool,
    pub(super) epoch: u64,
}

impl State {
    fn is_mine(&self, l: &Lease) -> bool {
        let holder = l.spec.as_ref().and_then(|s| s.holder_identity.as_deref());
        let uid_ok = l
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Pod" && o.api_version == "v1" && o.uid == self.cfg.pod_uid);
        holder == Some(self.cfg.pod_name.as_str())
            && uid_ok
            && label(l, LISTENERSET_LABEL).is_some()
            && label(l, LISTENER_LABEL).is_some()
    }

    fn emit_stop(&mut self, name: &str, reason: StopReason, want_ack: bool) {
        let Some(t) = self.tracked.get(name) else { return };
        let (tx, rx) = oneshot::channel();
        let epoch = t.epoch;
        info!(set = %t.set, listener = %t.listener, ?reason, "stop");
        let _ = self.events.send(AgentEvent::Stop(Stop {
            set: t.set.clone(),
            listener: t.listener.clone(),
            reason,
            ack: Some(tx),
        }));
        if want_ack {
            let name = name.to_string();
            self.acks.push(
                async move {
                    let _ = rx.await;
                    (name, epoch)
                }
                .boxed(),
            );
        }
    }

    /// A newer copy of a Lease (or its deletion) was seen.
    pub(super) fn observe(&mut self, name: &str, lease: Option<Lease>) {
        match lease {
            Some(l) => {
                if let (Some(old), Some(new)) = (self.known.get(name).and_then(rv_num), rv_num(&l)) {
                    if new < old {
                        return;
                    }
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
        self.evaluate(name);
    }

    pub(super) fn evaluate(&mut self, name: &str) {
        let now = Instant::now();
        if !self.tracked.contains_key(name) {
            let Some(l) = self.known.get(name) else { return };
            if !self.is_mine(l) {
                return;
            }
            let release = self.shutting_down || release_reason(l).is_some();
            let t = Tracked {
                set: label(l, LISTENERSET_LABEL).unwrap_or_default().to_string(),
                listener: label(l, LISTENER_LABEL).unwrap_or_default().to_string(),
                lease: l.clone(),
                phase: if release { Phase::Releasing } else { Phase::Acquiring },
                base: None,
                duration: lease_duration(l),
                busy: false,
                due: now,
                epoch: 0,
            };
            debug!(lease = name, phase = ?t.phase, "tracking");
            self.tracked.insert(name.to_string(), t);
        }
        let Some(t) = self.tracked.get(name) else { return };
        if t.busy {
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
        let phase = t.phase;
        match phase {
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

    pub(super) fn on_op(&mut self, done: OpDone) {
        let now = Instant::now();
        let name = done.name.clone();
        let Some(t) = self.tracked.get_mut(&name) else { return };
        t.busy = false;
        match (done.kind, done.result) {
            (OpKind::Refresh, Ok((lease, _))) => {
                t.due = now;
                self.observe_forced(&name, lease);
                return;
            }
            (OpKind::Release, Ok((lease, _))) => {
                info!(set = %t.set, listener = %t.listener, "released");
                self.tracked.remove(&name);
                if let Some(l) = lease {
                    self.known.insert(name.clone(), l);
                }
                return;
            }
            (kind @ (OpKind::Acquire | OpKind::Renew), Ok((Some(lease), config))) => {
                t.base = Some(done.sent);
                t.duration = lease_duration(&lease);
                t.due = done.sent + self.cfg.renew_every(t.duration);
                t.lease = lease.clone();
                self.known.insert(name.clone(), lease.clone());
                if matches!(kind, OpKind::Acquire) && matches!(t.phase, Phase::Acquiring | Phase::Lost) {
                    let release = self.shutting_down || release_reason(&lease).is_some();
                    if !release && self.is_mine(&lease) {
                        let t = self.tracked.get_mut(&name).expect("tracked");
                        t.phase = Phase::Running;
                        self.epoch += 1;
                        t.epoch = self.epoch;
                        let token = lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0);
                        info!(set = %t.set, listener = %t.listener, token, "start");
                        let _ = self.events.send(AgentEvent::Start(Start {
                            set: t.set.clone(),
                            listener: t.listener.clone(),
                            config,
                            fencing_token: token,
                        }));
                    }
                }
            }
            (_, Ok(_)) => {}
            (_, Err(OpError::Conflict)) => {
                debug!(lease = %name, "conflict; re-reading");
                self.refresh(&name);
                return;
            }
            (_, Err(OpError::NotFound)) => {
                self.known.remove(&name);
            }
            (_, Err(OpError::Other(e))) => {
                debug!(lease = %name, error = %e, "write failed; retrying");
                t.due = now + self.cfg.retry_period;
            }
        }
        self.evaluate(&name);
    }

    /// A copy read straight from the server: newer than anything seen, whatever its rv.
    fn observe_forced(&mut self, name: &str, lease: Option<Lease>) {
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
        self.evaluate(name);
    }

    pub(super) fn on_ack(&mut self, name: &str, epoch: u64) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        if t.epoch != epoch || t.phase != Phase::Stopping {
            return;
        }
        t.phase = Phase::Releasing;
        t.due = Instant::now();
        self.evaluate(name);
    }

    /// Safety deadlines and due writes.
    pub(super) fn tick(&mut self) -> Option<Instant> {
        let now = Instant::now();
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
                if !t.busy {
                    next = Some(next.map_or(t.due, |n| n.min(t.due)));
                }
            }
        }
        next
    }
}
