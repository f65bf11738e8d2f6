//! Leader election for the baton controller on a `coordination.k8s.io/v1` Lease, with
//! client-go semantics and a sub-second graceful handover.
//!
//! # How it works
//!
//! Every replica runs [`run`]. A replica is either a *standby* or the *leader*; only the leader
//! runs the reconcilers, which [`run`] starts by calling the caller's `lead` factory with a
//! [`Leader`] context and stops by cancelling [`Leader::stop`].
//!
//! * **Every write is conditional.** Acquire and renew read the Lease, then either create it
//!   (when absent; `409 AlreadyExists` = another replica won) or *replace* it with the observed
//!   `metadata.resourceVersion` (`409 Conflict` = the read is stale, someone else wrote first).
//!   Two candidates can never both believe they won: see [`LeaseLock`].
//! * **Expiry is judged on the local monotonic clock**, never by comparing the holder's
//!   `renewTime` with the local wall clock. A standby remembers the
//!   [`tokio::time::Instant`] at which it *observed the record change* (holder, `renewTime` or
//!   `resourceVersion`) and considers the holder gone only when `leaseDurationSeconds` have passed
//!   on its own clock since then without a further change. Clock *skew* between nodes is
//!   irrelevant; only clock *rate* matters (as in client-go).
//! * **The leader fences itself by time.** The leader measures its renew deadline from the
//!   monotonic instant at which it *sent* (started) its last successful acquire/renew: the write
//!   reached the server after that, and any standby observed it later still, so a standby cannot
//!   take over before `last_renew_sent + lease_duration`. If no renew succeeds by
//!   `last_renew_sent + renew_deadline` the leader cancels [`Leader::stop`] *at that instant*
//!   (`renew_deadline < lease_duration` leaves the gap for the work to wind down). If the `lead`
//!   future still has not finished halfway through that gap
//!   (`last_renew_sent + renew_deadline + (lease_duration - renew_deadline) / 2`) it is dropped,
//!   which cancels it at its next `.await`. The `lead` future is polled inside [`run`]'s own
//!   future (never spawned), so dropping it really stops everything it owns; work it spawned
//!   itself must be tied to [`Leader::stop`]. [`run`] then returns
//!   [`ElectionError::LostLeadership`] and the process is expected to exit non-zero.
//!   A renew that finds another holder on the Lease ends leadership at once, without waiting
//!   for the deadline.
//! * **Graceful handover.** When `shutdown` fires on the leader, it cancels [`Leader::stop`],
//!   *keeps renewing* while the `lead` future winds down, and only after that future has
//!   finished releases the Lease like client-go's `ReleaseOnCancel`: `holderIdentity` cleared,
//!   `leaseDurationSeconds: 1`, again conditional on the resourceVersion it last wrote.
//!   Standbys do not only poll every retry period: each also *watches* the Lease (a kube
//!   [`watcher`] with the field selector `metadata.name=<lease>` in the namespace) and tries to
//!   acquire the moment it sees `holderIdentity` cleared or the Lease deleted, so the handover
//!   takes a few round trips instead of a retry period or a lease duration.
//! * **Standbys retry** every `retry_period` with client-go's jitter (×[1, 2.2)), and
//!   additionally at the exact instant the observed lease would expire, so a crashed leader is
//!   replaced within about `lease_duration` of its last renewal.
//! * **`leaseTransitions`** is incremented only when the Lease passes to a different holder
//!   (including from a released, holder-less Lease); renewals and re-acquisition by the same
//!   identity keep it. Its value when this replica acquired is handed to the work as
//!   [`Leader::lease_transitions`], usable as a fencing token.
//!
//! # Timing rules
//!
//! Defaults are client-go's: lease duration 15 s, renew deadline 10 s, retry period 2 s.
//! [`ElectionConfig::validate`] enforces, like client-go, `lease_duration > renew_deadline >
//! 1.2 × retry_period` ([`JITTER_FACTOR`]) and all three > 0 (the lease duration ≥ 1 s, since
//! the Lease stores whole seconds).
//!
//! # Status for metrics and readiness
//!
//! [`run`] publishes an [`ElectionStatus`] on a [`tokio::sync::watch`] channel: whether this
//! replica is leading, how many times it became leader, and the holder and `leaseTransitions`
//! it last observed on the Lease.
//!
//! # Why not `kube-lease-manager`
//!
//! `kube-lease-manager` 0.13 is the only maintained crate on kube 5, but it does not give
//! client-go's guarantees (read at the source, `src/state.rs`): renewals (and forced
//! acquisition) are strategic-merge patches with no resourceVersion precondition, so a stale
//! holder can overwrite a new one; taking an orphaned lease is a server-side apply followed by a
//! *separate* patch for `leaseTransitions`, so the counter is not written atomically with the
//! holder; and expiry is `renewTime + leaseDurationSeconds` compared with the local
//! `SystemTime`, so clock skew between nodes shortens or lengthens leases (a node whose clock
//! runs ahead takes over early, while the old leader still works). It also has no notion of
//! a renew deadline that stops the guarded work before the lease can expire, and no watch for
//! a fast handover. The state machine here is small enough to own. (`kube-leader-election` is
//! on kube 4 and acquires with a merge patch without resourceVersion; `kube-coordinate` is
//! on kube 2.)
//!
//! # Wiring
//!
//! Pass as `lead` a closure that starts the controllers and returns a future that runs them
//! until [`Leader::stop`] is cancelled and resolves only once they have stopped (for a kube
//! `Controller`: `.graceful_shutdown_on(leader.stop.cancelled_owned())`, then await the stream to
//! its end). Do not also bind the controllers to the process's signal: `shutdown` goes to
//! [`run`], which stops the work first and releases the Lease after.
//!
//! ```no_run
//! # async fn run_controllers(_: kube::Client, _stop: impl std::future::Future<Output = ()> + Send + Sync + 'static) {}
//! # async fn demo(client: kube::Client) {
//! use baton::election::{self, ElectionConfig, ElectionStatus, Leader};
//! let cfg = ElectionConfig::new("baton-controller", "baton-system", "baton-7d9f-abcde");
//! let (status_tx, _status_rx) = tokio::sync::watch::channel(ElectionStatus::default());
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! let work_client = client.clone();
//! let lead = move |leader: Leader| run_controllers(work_client, leader.stop.cancelled_owned());
//! match election::run(client, cfg, shutdown, lead, status_tx).await {
//!     Ok(outcome) => tracing::info!(?outcome, "leader election ended"),
//!     Err(e) => {
//!         tracing::error!(error = %e, "leader election failed");
//!         std::process::exit(1)
//!     }
//! }
//! # }
//! ```
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// client-go's default lease duration.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// client-go's default renew deadline.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// client-go's default retry period.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// client-go's `JitterFactor`: standbys wait `retry_period × [1, 1 + JITTER_FACTOR)` between
/// attempts, and the renew deadline must exceed `JITTER_FACTOR × retry_period`.
pub const JITTER_FACTOR: f64 = 1.2;
/// `leaseDurationSeconds` written when releasing (client-go's `ReleaseOnCancel`).
pub const RELEASED_LEASE_DURATION_SECONDS: i32 = 1;

/// Settings of one election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// Name of the Lease object (e.g. `baton-controller`).
    pub lease_name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity written to `holderIdentity` (the pod name); must be unique.
    pub identity: String,
    /// How long standbys wait, after they last saw the record change, before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops its work.
    pub renew_deadline: Duration,
    /// Time between a standby's acquire attempts and between the leader's renewals.
    pub retry_period: Duration,
}

/// What is wrong with an [`ElectionConfig`]. Messages follow client-go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("leader election: lease name must not be empty")]
    EmptyLeaseName,
    #[error("leader election: namespace must not be empty")]
    EmptyNamespace,
    #[error("leader election: identity must not be empty (Lock identity is empty)")]
    EmptyIdentity,
    #[error("leader election: leaseDuration must be greater than zero")]
    ZeroLeaseDuration,
    #[error("leader election: renewDeadline must be greater than zero")]
    ZeroRenewDeadline,
    #[error("leader election: retryPeriod must be greater than zero")]
    ZeroRetryPeriod,
    #[error("leader election: leaseDuration ({0:?}) must be at least 1s: the Lease stores whole seconds")]
    LeaseDurationTooShort(Duration),
    #[error(
        "leader election: leaseDuration ({lease_duration:?}) must be greater than renewDeadline ({renew_deadline:?})"
    )]
    LeaseNotLongerThanRenew {
        lease_duration: Duration,
        renew_deadline: Duration,
    },
    #[error(
        "leader election: renewDeadline ({renew_deadline:?}) must be greater than retryPeriod*JitterFactor ({retry_period:?} * {JITTER_FACTOR} = {min:?})"
    )]
    RenewNotLongerThanJitteredRetry {
        renew_deadline: Duration,
        retry_period: Duration,
        min: Duration,
    },
}

impl ElectionConfig {
    /// A config with client-go's default timings.
    pub fn new(lease_name: impl Into<String>, namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        ElectionConfig {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// Check the settings as client-go's `NewLeaderElector` does:
    /// `lease_duration > renew_deadline > JITTER_FACTOR × retry_period`, all greater than zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_name.is_empty() {
            return Err(ConfigError::EmptyLeaseName);
        }
        if self.namespace.is_empty() {
            return Err(ConfigError::EmptyNamespace);
        }
        if self.identity.is_empty() {
            return Err(ConfigError::EmptyIdentity);
        }
        if self.lease_duration.is_zero() {
            return Err(ConfigError::ZeroLeaseDuration);
        }
        if self.renew_deadline.is_zero() {
            return Err(ConfigError::ZeroRenewDeadline);
        }
        if self.retry_period.is_zero() {
            return Err(ConfigError::ZeroRetryPeriod);
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(ConfigError::LeaseDurationTooShort(self.lease_duration));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(ConfigError::LeaseNotLongerThanRenew {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        let min = self.retry_period.mul_f64(JITTER_FACTOR);
        if self.renew_deadline <= min {
            return Err(ConfigError::RenewNotLongerThanJitteredRetry {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
                min,
            });
        }
        Ok(())
    }

    /// `leaseDurationSeconds` to write: the lease duration rounded up to whole seconds.
    fn lease_duration_seconds(&self) -> i32 {
        let secs = self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }

    /// How long after the renew deadline a `lead` future that ignores [`Leader::stop`] is dropped:
    /// half the gap between the renew deadline and the lease duration.
    fn abort_grace(&self) -> Duration {
        self.lease_duration.saturating_sub(self.renew_deadline) / 2
    }
}

/// Whether this replica currently leads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Leadership {
    /// Not leading (waiting to acquire, stopping, or stopped).
    #[default]
    Standby,
    /// Holding the Lease and running the work.
    Leading,
}

/// What [`run`] publishes for metrics and readiness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElectionStatus {
    /// `Leading` from the moment the Lease is acquired until the work is told to stop.
    pub leadership: Leadership,
    /// How many times this replica became leader (a counter).
    pub acquisitions: u64,
    /// The holder last observed on the Lease (None: free, absent or not read yet).
    pub observed_holder: Option<String>,
    /// `leaseTransitions` last observed on the Lease.
    pub lease_transitions: Option<i32>,
}

/// Handed to the `lead` factory each time this replica becomes leader.
#[derive(Debug, Clone)]
pub struct Leader {
    /// Cancelled the moment this replica must stop acting as leader: the renew deadline passed,
    /// another holder was seen on the Lease, or shutdown started. The work must stop and its
    /// future finish; the Lease is released only after that. `stop.cancelled_owned()` fits
    /// `kube::runtime::Controller::graceful_shutdown_on`.
    pub stop: CancellationToken,
    /// `leaseTransitions` of the Lease as acquired: grows with every change of holder, so it can
    /// serve as a fencing token for writes the work makes.
    pub lease_transitions: i32,
    /// This replica's identity.
    pub identity: String,
}

/// How [`run`] ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionOutcome {
    /// Shutdown while leading: the work stopped, then the Lease was released for a standby.
    Released,
    /// Shutdown while standing by: nothing to release.
    NotLeading,
    /// Shutdown while leading: the work stopped, but the Lease could not be released (the
    /// release write failed or leadership was lost while the work wound down). Standbys take
    /// over after the lease expires.
    NotReleased { reason: String },
}

/// Why [`run`] failed. Every variant means: exit non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// Leadership was lost without a shutdown request; the work has been stopped.
    #[error("lost leadership of Lease {lease}: {reason}; the work was {}", work_fate(*.work_aborted))]
    LostLeadership {
        /// `namespace/name`.
        lease: String,
        reason: String,
        /// The `lead` future did not finish in time after being told to stop and was dropped.
        work_aborted: bool,
    },
    /// The `lead` future finished without being told to stop; the Lease was released (when
    /// possible) so a standby takes over.
    #[error("the leader's work ended by itself while it held Lease {lease} (released: {released})")]
    WorkEnded { lease: String, released: bool },
}

fn work_fate(aborted: bool) -> &'static str {
    if aborted {
        "dropped after ignoring the stop signal"
    } else {
        "stopped"
    }
}

/// Result of one conditional write.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    /// The write was accepted; the Lease as stored.
    Written(Box<Lease>),
    /// `409`: the Lease changed since it was read, or it was created by someone else meanwhile.
    Conflict,
}

/// The Lease as a lock: reads and resourceVersion-conditional writes, no timing decisions.
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration_seconds: i32,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("lease_duration_seconds", &self.lease_duration_seconds)
            .finish()
    }
}

/// The non-empty holder of a Lease.
pub fn holder_of(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

fn transitions_of(lease: &Lease) -> i32 {
    lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0)
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl LeaseLock {
    /// A lock on Lease `cfg.namespace/cfg.lease_name` for `cfg.identity`.
    pub fn new(client: kube::Client, cfg: &ElectionConfig) -> Self {
        LeaseLock {
            api: Api::namespaced(client, &cfg.namespace),
            name: cfg.lease_name.clone(),
            identity: cfg.identity.clone(),
            lease_duration_seconds: cfg.lease_duration_seconds(),
        }
    }

    /// Read the Lease (None when it does not exist).
    pub async fn get(&self) -> Result<Option<Lease>, kube::Error> {
        self.api.get_opt(&self.name).await
    }

    /// Make this identity the holder, or renew it, conditional on `current` being the latest
    /// version: create when `current` is None, else replace with `current`'s resourceVersion.
    /// Renewing (holder already this identity) keeps `acquireTime` and `leaseTransitions`;
    /// taking over from anyone else (or from a free Lease) sets `acquireTime` and increments
    /// `leaseTransitions`. Deciding *whether* to take over (expiry) is the caller's job.
    pub async fn acquire_or_renew(&self, current: Option<&Lease>) -> Result<WriteOutcome, kube::Error> {
        let now = now_micro();
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(self.lease_duration_seconds),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(cur) => {
                let mut next = cur.clone();
                let ours = holder_of(cur) == Some(self.identity.as_str());
                let spec = next.spec.get_or_insert_with(LeaseSpec::default);
                if !ours {
                    spec.acquire_time = Some(now.clone());
                    spec.lease_transitions = Some(transitions_of(cur).saturating_add(1));
                } else if spec.acquire_time.is_none() {
                    spec.acquire_time = Some(now.clone());
                }
                spec.holder_identity = Some(self.identity.clone());
                spec.lease_duration_seconds = Some(self.lease_duration_seconds);
                spec.renew_time = Some(now);
                self.replace(&next).await
            }
        };
        match result {
            Ok(l) => Ok(WriteOutcome::Written(Box::new(l))),
            Err(e) if is_conflict(&e) => Ok(WriteOutcome::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Release a Lease this identity holds, conditional on `current` being the latest version:
    /// `holderIdentity` cleared and `leaseDurationSeconds: 1` (client-go's `ReleaseOnCancel`),
    /// `leaseTransitions` kept. If `current` is stale but the Lease is still ours (a write of
    /// ours landed after `current` was read, or someone touched its metadata), it re-reads and
    /// retries once. Returns whether the Lease was released.
    pub async fn release(&self, current: &Lease) -> Result<bool, kube::Error> {
        let mut cur = current.clone();
        for _ in 0..2 {
            if holder_of(&cur) != Some(self.identity.as_str()) {
                return Ok(false);
            }
            let mut next = cur.clone();
            let now = now_micro();
            let spec = next.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(RELEASED_LEASE_DURATION_SECONDS);
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            match self.replace(&next).await {
                Ok(_) => return Ok(true),
                Err(e) if is_conflict(&e) => match self.get().await? {
                    Some(l) => cur = l,
                    None => return Ok(false),
                },
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        // `lease` carries the resourceVersion it was read with: the server answers 409 if the
        // Lease has changed since.
        self.api.replace(&self.name, &PostParams::default(), lease).await
    }
}

/// A standby's memory of the Lease record, for judging expiry on the local monotonic clock.
#[derive(Debug, Default)]
struct Observer {
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
    fn observe(&mut self, lease: Option<&Lease>, now: Instant, default_duration: Duration) {
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
    fn expires_at(&self) -> Option<Instant> {
        self.holder.as_ref()?;
        self.at.map(|at| at + self.duration)
    }
}

/// `d × [1, 1 + JITTER_FACTOR)`, like client-go's `wait.Jitter`.
fn jittered(d: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
    d + d.mul_f64(frac * JITTER_FACTOR)
}

/// Poll an optional future; pending forever when there is none.
async fn poll_opt<F: Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn publish(status: &watch::Sender<ElectionStatus>, f: impl FnOnce(&mut ElectionStatus)) {
    status.send_if_modified(|s| {
        let before = s.clone();
        f(s);
        *s != before
    });
}

fn publish_observed(status: &watch::Sender<ElectionStatus>, lease: Option<&Lease>) {
    publish(status, |s| {
        s.observed_holder = lease.and_then(holder_of).map(str::to_string);
        s.lease_transitions = lease.map(transitions_of);
    });
}

/// The Lease as won by this replica, and when the winning attempt started.
struct Acquired {
    lease: Lease,
    /// Monotonic instant before the read that preceded the winning write.
    sent: Instant,
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

/// Run the election until `shutdown` fires or leadership is lost.
///
/// * Standing by, it watches the Lease and tries to acquire it every `retry_period` (jittered),
///   at the instant the observed holder's lease would expire, and at once when the Lease is
///   released or deleted.
/// * On acquiring, it publishes [`Leadership::Leading`] and calls `lead` once with a
///   [`Leader`]; the returned future is polled by `run` itself while it renews the Lease every
///   `retry_period`.
/// * `shutdown` while leading: [`Leader::stop`] is cancelled, renewals continue until the
///   `lead` future finishes, then the Lease is released → `Ok(`[`ElectionOutcome::Released`]`)`.
///   `shutdown` while standing by → `Ok(`[`ElectionOutcome::NotLeading`]`)`.
/// * No successful renewal by the renew deadline (or another holder seen): [`Leader::stop`] is
///   cancelled at that instant, the `lead` future is awaited (dropped if it overstays, see the
///   module docs) → `Err(`[`ElectionError::LostLeadership`]`)`: exit non-zero.
/// * The `lead` future ending on its own → Lease released → `Err(`[`ElectionError::WorkEnded`]`)`.
///
/// A replica leads at most once per call: after losing leadership the process should restart.
pub async fn run<S, F, Fut>(
    client: kube::Client,
    cfg: ElectionConfig,
    shutdown: S,
    lead: F,
    status: watch::Sender<ElectionStatus>,
) -> Result<ElectionOutcome, ElectionError>
where
    S: Future<Output = ()>,
    F: FnOnce(Leader) -> Fut,
    Fut: Future,
{
    cfg.validate()?;
    let lock = LeaseLock::new(client, &cfg);
    let mut shutdown = std::pin::pin!(shutdown);
    publish(&status, |s| s.leadership = Leadership::Standby);
    let acquired = match stand_by(&lock, &cfg, shutdown.as_mut(), &status).await {
        Some(a) => a,
        None => return Ok(ElectionOutcome::NotLeading),
    };
    lead_until_done(&lock, &cfg, acquired, shutdown, lead, &status).await
}

fn lease_ref(cfg: &ElectionConfig) -> String {
    format!("{}/{}", cfg.namespace, cfg.lease_name)
}

/// Wait until this replica acquires the Lease (Some) or `shutdown` fires (None).
async fn stand_by<S: Future<Output = ()>>(
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

/// Lead: run the work, renew, and end as described on [`run`].
async fn lead_until_done<S, F, Fut>(
    lock: &LeaseLock,
    cfg: &ElectionConfig,
    acquired: Acquired,
    mut shutdown: std::pin::Pin<&mut S>,
    lead: F,
    status: &watch::Sender<ElectionStatus>,
) -> Result<ElectionOutcome, ElectionError>
where
    S: Future<Output = ()>,
    F: FnOnce(Leader) -> Fut,
    Fut: Future,
{
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
    let token = CancellationToken::new();
    let stop = |why: &str| {
        if !token.is_cancelled() {
            info!(lease = %lease_name, reason = why, "leader election: stopping the leader's work");
            token.cancel();
            publish(status, |s| s.leadership = Leadership::Standby);
        }
    };
    let mut work = Some(Box::pin(lead(Leader {
        stop: token.clone(),
        lease_transitions: transitions,
        identity: cfg.identity.clone(),
    })));

    let mut current = acquired.lease;
    let mut last_renew = acquired.sent;
    let mut next_renew = last_renew + cfg.retry_period;
    let mut renewal = None;
    let mut renewal_sent = last_renew;
    let mut lost: Option<String> = None;
    let mut shutdown_seen = false;
    let mut shutdown_first = false;
    let mut ended_by_itself = false;
    let mut work_aborted = false;

    while work.is_some() {
        let deadline = last_renew + cfg.renew_deadline;
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(deadline), if lost.is_none() => {
                let reason = format!(
                    "no successful renewal within the renew deadline ({:?} since the last renewal started)",
                    cfg.renew_deadline
                );
                error!(lease = %lease_name, %reason, "leader election: leadership lost");
                stop("renew deadline passed");
                lost = Some(reason);
                renewal = None;
            }
            () = tokio::time::sleep_until(deadline + cfg.abort_grace()), if lost.is_some() => {
                error!(lease = %lease_name, "leader election: the leader's work ignored the stop signal; dropping it");
                work = None;
                work_aborted = true;
            }
            _ = poll_opt(&mut work) => {
                work = None;
                if !token.is_cancelled() {
                    error!(lease = %lease_name, "leader election: the leader's work ended by itself");
                    ended_by_itself = true;
                    stop("the work ended");
                }
            }
            () = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                shutdown_first = lost.is_none();
                stop("shutdown");
            }
            r = poll_opt(&mut renewal) => {
                renewal = None;
                let retry = Instant::now() + cfg.retry_period;
                match r {
                    Ok(Ok(Renewal::Renewed(l))) => {
                        current = *l;
                        last_renew = renewal_sent;
                        next_renew = renewal_sent + cfg.retry_period;
                        debug!(lease = %lease_name, "leader election: renewed");
                    }
                    Ok(Ok(Renewal::Taken(holder))) => {
                        let reason = format!(
                            "the Lease now names {} as holder",
                            holder.as_deref().map_or("nobody (or was deleted)".to_string(), |h| format!("{h:?}"))
                        );
                        error!(lease = %lease_name, %reason, "leader election: leadership lost");
                        stop("another holder");
                        lost = Some(reason);
                    }
                    Ok(Ok(Renewal::Conflict)) => {
                        debug!(lease = %lease_name, "leader election: renew conflict (409); re-reading");
                        next_renew = Instant::now();
                    }
                    Ok(Err(e)) => {
                        warn!(lease = %lease_name, error = %e, "leader election: renew failed; retrying");
                        next_renew = retry;
                    }
                    // Timed out at the deadline: the deadline branch ends leadership.
                    Err(_) => next_renew = retry,
                }
            }
            () = tokio::time::sleep_until(next_renew), if renewal.is_none() && lost.is_none() => {
                renewal_sent = Instant::now();
                renewal = Some(Box::pin(tokio::time::timeout_at(deadline, renew_once(lock))));
            }
        }
    }
    drop(renewal);
    publish(status, |s| s.leadership = Leadership::Standby);

    if let Some(reason) = lost {
        return if shutdown_first {
            Ok(ElectionOutcome::NotReleased { reason })
        } else {
            Err(ElectionError::LostLeadership {
                lease: lease_name,
                reason,
                work_aborted,
            })
        };
    }

    // Still within the renew deadline: the Lease is ours to release.
    let deadline = last_renew + cfg.renew_deadline;
    let released = match tokio::time::timeout_at(deadline, lock.release(&current)).await {
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
    if ended_by_itself {
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

#[cfg(test)]
mod tests;
