//! Leading, on the election thread: have the work started, renew the Lease, fence by time, and
//! end by releasing the Lease (or by losing it), as described on [`run`](super::run).

use std::future::Future;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::lock::transitions_of;
use super::thread::{FromWork, Link, ToWork};
use super::{
    holder_of, lease_ref, publish, publish_observed, ElectionConfig, ElectionError, ElectionOutcome, ElectionStatus,
    Leadership, LeaseLock, WriteOutcome,
};

/// Poll an optional future; pending forever when there is none.
async fn poll_opt<F: Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The Lease as won by this replica, and when the winning attempt started.
pub(super) struct Acquired {
    pub(super) lease: Lease,
    /// Monotonic instant before the read that preceded the winning write.
    pub(super) sent: Instant,
}

/// Result of one leader renewal attempt.
enum Renewal {
    Renewed(Box<Lease>),
    /// The Lease names another holder (or was deleted): leadership is gone.
    Taken(Option<String>),
    /// A concurrent write got in between read and write; retry.
    Conflict,
}

async fn renew_once(lock: &LeaseLock) -> Result<Renewal, kube::Error> {
    let Some(cur) = lock.get().await? else {
        return Ok(Renewal::Taken(None));
    };
    match holder_of(&cur) {
        Some(h) if h == lock.identity => {}
        other => return Ok(Renewal::Taken(other.map(str::to_string))),
    }
    Ok(match lock.acquire_or_renew(Some(&cur)).await? {
        WriteOutcome::Written(l) => Renewal::Renewed(l),
        WriteOutcome::Conflict => Renewal::Conflict,
    })
}

/// Lead, on the election thread: tell the caller's future to start the work, renew every
/// retry period, fence by time, and release once the work has finished, as described on
/// [`run`](super::run). None: the caller's future was dropped (and the work with it).
pub(super) async fn lead_until_done(
    lock: &LeaseLock,
    cfg: &ElectionConfig,
    acquired: Acquired,
    link: &mut Link,
    status: &watch::Sender<ElectionStatus>,
) -> Option<Result<ElectionOutcome, ElectionError>> {
    let lease_name = lease_ref(cfg);
    let transitions = transitions_of(&acquired.lease);
    info!(
        lease = %lease_name,
        identity = %cfg.identity,
        lease_transitions = transitions,
        "leader election: became leader"
    );
    publish(status, |s| {
        s.leadership = Leadership::Leading;
        s.acquisitions += 1;
    });
    let token = link.stop.clone();
    let stop = |why: &str| {
        if !token.is_cancelled() {
            info!(lease = %lease_name, reason = why, "leader election: stopping the leader's work");
            token.cancel();
            publish(status, |s| s.leadership = Leadership::Standby);
        }
    };
    let start = ToWork::Lead {
        lease_transitions: transitions,
    };
    if link.to_work.send(start).is_err() {
        stop("the election was dropped");
        return None;
    }
    let mut term = Term::new(acquired, cfg);
    let mut renewal = None;
    loop {
        let deadline = term.last_renew + cfg.renew_deadline;
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(deadline), if term.lost.is_none() => {
                let reason = format!(
                    "no successful renewal within the renew deadline ({:?} since the last renewal started)",
                    cfg.renew_deadline
                );
                error!(lease = %lease_name, %reason, "leader election: leadership lost");
                stop("renew deadline passed");
                term.lost = Some(reason);
                renewal = None;
            }
            () = tokio::time::sleep_until(deadline + cfg.abort_grace()), if term.lost.is_some() && !term.drop_asked => {
                error!(lease = %lease_name, "leader election: the leader's work ignored the stop signal; dropping it");
                term.drop_asked = true;
                let _ = link.to_work.send(ToWork::Drop);
            }
            msg = link.from_work.recv() => match msg {
                Some(FromWork::Shutdown) => {
                    term.shutdown_first = term.lost.is_none();
                    stop("shutdown");
                }
                Some(FromWork::Finished { dropped }) => {
                    if !token.is_cancelled() {
                        error!(lease = %lease_name, "leader election: the leader's work ended by itself");
                        term.ended_by_itself = true;
                        stop("the work ended");
                    }
                    term.work_aborted = dropped;
                    break;
                }
                None => {
                    stop("the election was dropped");
                    return None;
                }
            },
            r = poll_opt(&mut renewal) => {
                renewal = None;
                term.renewed(r, cfg, &lease_name, &stop);
            }
            () = tokio::time::sleep_until(term.next_renew), if renewal.is_none() && term.lost.is_none() => {
                term.renewal_sent = Instant::now();
                renewal = Some(Box::pin(tokio::time::timeout_at(deadline, renew_once(lock))));
            }
        }
    }
    drop(renewal);
    publish(status, |s| s.leadership = Leadership::Standby);
    Some(term.end(lock, cfg, lease_name, status).await)
}

/// What the leading loop keeps between events.
struct Term {
    current: Lease,
    /// When the last successful renewal was sent: the renew deadline counts from it.
    last_renew: Instant,
    next_renew: Instant,
    renewal_sent: Instant,
    /// Why leadership was lost, once it was.
    lost: Option<String>,
    shutdown_first: bool,
    ended_by_itself: bool,
    /// The caller's future was asked to drop the work.
    drop_asked: bool,
    work_aborted: bool,
}

impl Term {
    fn new(acquired: Acquired, cfg: &ElectionConfig) -> Self {
        Term {
            current: acquired.lease,
            last_renew: acquired.sent,
            next_renew: acquired.sent + cfg.retry_period,
            renewal_sent: acquired.sent,
            lost: None,
            shutdown_first: false,
            ended_by_itself: false,
            drop_asked: false,
            work_aborted: false,
        }
    }

    /// A renewal attempt ended (`Err`: it timed out at the deadline, which ends leadership).
    fn renewed(
        &mut self,
        r: Result<Result<Renewal, kube::Error>, tokio::time::error::Elapsed>,
        cfg: &ElectionConfig,
        lease_name: &str,
        stop: &impl Fn(&str),
    ) {
        let retry = Instant::now() + cfg.retry_period;
        match r {
            Ok(Ok(Renewal::Renewed(l))) => {
                self.current = *l;
                self.last_renew = self.renewal_sent;
                self.next_renew = self.renewal_sent + cfg.retry_period;
                debug!(lease = %lease_name, "leader election: renewed");
            }
            Ok(Ok(Renewal::Taken(holder))) => {
                let reason = format!(
                    "the Lease now names {} as holder",
                    holder
                        .as_deref()
                        .map_or("nobody (or was deleted)".to_string(), |h| format!("{h:?}"))
                );
                error!(lease = %lease_name, %reason, "leader election: leadership lost");
                stop("another holder");
                self.lost = Some(reason);
            }
            Ok(Ok(Renewal::Conflict)) => {
                debug!(lease = %lease_name, "leader election: renew conflict (409); re-reading");
                self.next_renew = Instant::now();
            }
            Ok(Err(e)) => {
                warn!(lease = %lease_name, error = %e, "leader election: renew failed; retrying");
                self.next_renew = retry;
            }
            Err(_) => self.next_renew = retry,
        }
    }

    /// The work has stopped: release the Lease while it is still ours, and say how it ended.
    async fn end(
        self,
        lock: &LeaseLock,
        cfg: &ElectionConfig,
        lease_name: String,
        status: &watch::Sender<ElectionStatus>,
    ) -> Result<ElectionOutcome, ElectionError> {
        if let Some(reason) = self.lost {
            return if self.shutdown_first {
                Ok(ElectionOutcome::NotReleased { reason })
            } else {
                Err(ElectionError::LostLeadership {
                    lease: lease_name,
                    reason,
                    work_aborted: self.work_aborted,
                })
            };
        }
        // Still within the renew deadline: the Lease is ours to release.
        let deadline = self.last_renew + cfg.renew_deadline;
        let released = match tokio::time::timeout_at(deadline, lock.release(&self.current)).await {
            Ok(Ok(true)) => {
                info!(lease = %lease_name, "leader election: work stopped; Lease released");
                publish_observed(status, None);
                Ok(())
            }
            Ok(Ok(false)) => Err("the Lease was no longer ours".to_string()),
            Ok(Err(e)) => Err(format!("release failed: {e}")),
            Err(_) => Err("release timed out at the renew deadline".to_string()),
        };
        if let Err(reason) = &released {
            warn!(lease = %lease_name, %reason, "leader election: Lease not released; standbys wait for expiry");
        }
        if self.ended_by_itself {
            return Err(ElectionError::WorkEnded {
                lease: lease_name,
                released: released.is_ok(),
            });
        }
        Ok(match released {
            Ok(()) => ElectionOutcome::Released,
            Err(reason) => ElectionOutcome::NotReleased { reason },
        })
    }
}
