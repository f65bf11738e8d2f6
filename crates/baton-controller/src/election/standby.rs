//! Standing by: watch the Lease, judge the holder's expiry on the local monotonic clock, and try
//! to acquire every (jittered) retry period, at the observed expiry, and at once on a release.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::leader::Acquired;
use super::{
    holder_of, lease_ref, publish_observed, ElectionConfig, ElectionStatus, LeaseLock, WriteOutcome, JITTER_FACTOR,
};

/// A standby's memory of the Lease record, for judging expiry on the local monotonic clock.
#[derive(Debug, Default)]
pub(super) struct Observer {
    /// (resourceVersion, holder, renewTime) of the last observed record; None = absent/unseen.
    key: Option<(Option<String>, Option<String>, Option<MicroTime>)>,
    /// When `key` last changed, on this process's monotonic clock.
    at: Option<Instant>,
    /// Holder and lease duration of the last observed record.
    holder: Option<String>,
    duration: Duration,
}

impl Observer {
    /// Record what was read at `now`; the clock restarts only if the record changed.
    pub(super) fn observe(&mut self, lease: Option<&Lease>, now: Instant, default_duration: Duration) {
        let Some(lease) = lease else {
            *self = Observer::default();
            return;
        };
        let spec = lease.spec.as_ref();
        let key = (
            lease.metadata.resource_version.clone(),
            holder_of(lease).map(str::to_string),
            spec.and_then(|s| s.renew_time.clone()),
        );
        if self.key.as_ref() != Some(&key) {
            self.key = Some(key);
            self.at = Some(now);
        }
        self.holder = holder_of(lease).map(str::to_string);
        self.duration = spec
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(default_duration);
    }

    /// When the observed holder's claim runs out (None: no holder, nothing to wait for).
    pub(super) fn expires_at(&self) -> Option<Instant> {
        self.holder.as_ref()?;
        self.at.map(|at| at + self.duration)
    }
}

/// `d × [1, 1 + JITTER_FACTOR)`, like client-go's `wait.Jitter`.
pub(super) fn jittered(d: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
    d + d.mul_f64(frac * JITTER_FACTOR)
}

/// Wait until this replica acquires the Lease (Some) or `shutdown` fires (None).
pub(super) async fn stand_by<S: Future<Output = ()>>(
    lock: &LeaseLock,
    cfg: &ElectionConfig,
    mut shutdown: std::pin::Pin<&mut S>,
    status: &watch::Sender<ElectionStatus>,
) -> Option<Acquired> {
    let lease = lease_ref(cfg);
    info!(%lease, identity = %cfg.identity, "leader election: standing by");
    let mut events = watcher(
        lock.api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={}", cfg.lease_name)),
    )
    .default_backoff()
    .boxed();
    let mut watching = true;
    let mut observer = Observer::default();
    let mut next_attempt = Instant::now();
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                info!(%lease, "leader election: shutdown while standing by");
                return None;
            }
            ev = events.next(), if watching => match ev {
                Some(Ok(watcher::Event::Apply(l) | watcher::Event::InitApply(l))) => {
                    observer.observe(Some(&l), Instant::now(), cfg.lease_duration);
                    publish_observed(status, Some(&l));
                    if holder_of(&l).is_none() || holder_of(&l) == Some(cfg.identity.as_str()) {
                        debug!(%lease, "leader election: watch saw the Lease free; trying at once");
                        next_attempt = Instant::now();
                    }
                }
                Some(Ok(watcher::Event::Delete(_))) => {
                    observer.observe(None, Instant::now(), cfg.lease_duration);
                    publish_observed(status, None);
                    debug!(%lease, "leader election: watch saw the Lease deleted; trying at once");
                    next_attempt = Instant::now();
                }
                Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
                Some(Err(e)) => debug!(%lease, error = %e, "leader election: Lease watch error (retrying)"),
                None => {
                    warn!(%lease, "leader election: Lease watch ended; polling only");
                    watching = false;
                }
            },
            () = tokio::time::sleep_until(next_attempt) => {
                let attempt = try_acquire(lock, cfg, &mut observer, status);
                let result = tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        info!(%lease, "leader election: shutdown while standing by");
                        return None;
                    }
                    r = tokio::time::timeout(cfg.renew_deadline, attempt) => r,
                };
                let retry = Instant::now() + jittered(cfg.retry_period);
                next_attempt = match result {
                    Ok(Ok(Some(acquired))) => return Some(acquired),
                    Ok(Ok(None)) => match observer.expires_at() {
                        // Try again when the holder's claim runs out, if that is sooner.
                        Some(exp) => retry.min(exp + Duration::from_millis(5)),
                        None => retry,
                    },
                    Ok(Err(e)) => {
                        warn!(%lease, error = %e, "leader election: acquire attempt failed");
                        retry
                    }
                    Err(_) => {
                        warn!(%lease, timeout = ?cfg.renew_deadline, "leader election: acquire attempt timed out");
                        retry
                    }
                };
            }
        }
    }
}

/// One standby attempt: read, judge expiry on the local clock, conditionally write.
async fn try_acquire(
    lock: &LeaseLock,
    cfg: &ElectionConfig,
    observer: &mut Observer,
    status: &watch::Sender<ElectionStatus>,
) -> Result<Option<Acquired>, kube::Error> {
    let lease = lease_ref(cfg);
    let sent = Instant::now();
    let current = lock.get().await?;
    let now = Instant::now();
    observer.observe(current.as_ref(), now, cfg.lease_duration);
    publish_observed(status, current.as_ref());
    if let Some(holder) = current.as_ref().and_then(holder_of) {
        if holder != cfg.identity {
            if let Some(exp) = observer.expires_at() {
                if now < exp {
                    debug!(%lease, %holder, remaining = ?(exp - now), "leader election: Lease held");
                    return Ok(None);
                }
            }
            info!(%lease, %holder, "leader election: holder's lease expired on our clock; taking over");
        }
    }
    match lock.acquire_or_renew(current.as_ref()).await? {
        WriteOutcome::Written(l) => {
            publish_observed(status, Some(&l));
            Ok(Some(Acquired { lease: *l, sent }))
        }
        WriteOutcome::Conflict => {
            debug!(%lease, "leader election: lost the race for the Lease (409)");
            Ok(None)
        }
    }
}
