//! Leader election for the baton controller on a `coordination.k8s.io/v1` Lease, with
//! client-go semantics and a sub-second graceful handover.
//!
//! # How it works
//!
//! Every replica runs [`run`]. A replica is either a *standby* or the *leader*; only the leader
//! runs the reconcilers, which [`run`] starts by calling the caller's `lead` factory with a
//! [`Leader`] context and stops by cancelling [`Leader::stop`].
//!
//! * **The election runs on a thread of its own.** Standing by, acquiring, renewing, the
//!   renew-deadline bookkeeping and the release run on a dedicated OS thread
//!   (`baton-election`) with a current-thread tokio runtime of its own and, built there with
//!   [`ElectionClient::build`], a client of its own. The `lead` future is polled by [`run`]'s
//!   own future on the caller's runtime; the two talk over channels. However long the work's
//!   polls hold their thread (the controllers poll their reconcilers inside their own streams,
//!   and one ListenerSet decision over thousands of listeners is a synchronous pass), or every
//!   worker of the caller's runtime, renewals go out every retry period, as client-go's do
//!   from a goroutine of their own: a busy leader keeps its Lease.
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
//!   `last_renew_sent + renew_deadline` the election thread cancels [`Leader::stop`] *at that
//!   instant*, whatever the caller's runtime is doing (`renew_deadline < lease_duration` leaves
//!   the gap for the work to wind down). If the `lead` future still has not finished halfway
//!   through that gap (`last_renew_sent + renew_deadline + (lease_duration - renew_deadline) /
//!   2`) the thread has [`run`]'s future drop it, which cancels it at its next `.await`: that
//!   future checks the thread's word before every poll of the work, so work whose polls hog
//!   the thread is dropped as soon as its current poll returns (no future can be interrupted
//!   inside a poll). The `lead` future is polled inside [`run`]'s own future (never spawned),
//!   so dropping it really stops everything it owns; work it spawned itself must be tied to
//!   [`Leader::stop`]. [`run`] then returns [`ElectionError::LostLeadership`] and the process
//!   is expected to exit non-zero. A renew that finds another holder on the Lease ends
//!   leadership at once, without waiting for the deadline. Dropping [`run`]'s future drops the
//!   work, cancels [`Leader::stop`] and ends the election thread (no more renewals, no release).
//! * **Graceful handover.** When `shutdown` fires on the leader, it cancels [`Leader::stop`],
//!   *keeps renewing* while the `lead` future winds down, and only after that future has
//!   finished releases the Lease like client-go's `ReleaseOnCancel`: `holderIdentity` cleared,
//!   `leaseDurationSeconds: 1`, again conditional on the resourceVersion it last wrote.
//!   Standbys do not only poll every retry period: each also *watches* the Lease (a kube
//!   [`watcher`](fn@kube::runtime::watcher) with the field selector `metadata.name=<lease>` in the namespace) and tries to
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
//! client-go's guarantees (read in its source, its `src/state.rs`): renewals (and forced
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
//! [`run`], which stops the work first and releases the Lease after. Give the election a client
//! of its own, built on its thread ([`ElectionClient::build`]); a ready-made `kube::Client`
//! also works, but its dispatch task stays on the runtime that built it.
//!
//! ```no_run
//! # async fn run_controllers(_: kube::Client, _stop: impl std::future::Future<Output = ()> + Send + Sync + 'static) {}
//! # async fn demo(config: kube::Config, work_client: kube::Client) {
//! use baton_controller::election::{self, ElectionClient, ElectionConfig, ElectionStatus, Leader};
//! let cfg = ElectionConfig::new("baton-controller", "baton-system", "baton-7d9f-abcde");
//! let (status_tx, _status_rx) = tokio::sync::watch::channel(ElectionStatus::default());
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! let client = ElectionClient::build(move || kube::Client::try_from(config));
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
//!
//! # Layout
//!
//! `config` (settings and timing rules), `lock` (the Lease's conditional reads and writes),
//! `thread` (the election thread and its messages), `standby` (watching and acquiring) and
//! `leader` (renewing, fencing, releasing) on that thread, and `work` (polling `shutdown` and
//! the `lead` future in [`run`]'s own future).
use std::future::Future;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

mod config;
mod leader;
mod lock;
mod standby;
mod thread;
mod work;

pub use config::{
    ConfigError, ElectionConfig, DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD, JITTER_FACTOR,
    RELEASED_LEASE_DURATION_SECONDS,
};
pub use lock::{holder_of, LeaseLock, WriteOutcome};

use lock::transitions_of;

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
    /// The election thread could not start (no thread, runtime or client) or ended without an
    /// outcome; if it was leading, the work has been stopped.
    #[error("the election thread failed: {0}")]
    Thread(String),
}

/// The client the election thread uses: built on that thread ([`ElectionClient::build`]), or
/// given ready-made (`From<kube::Client>`).
///
/// A kube [`Client`](kube::Client) hands every request to a dispatch task spawned on the
/// runtime it was built on. Built on the election thread, that task runs there too, so
/// renewals depend on nothing the caller's runtime does; a ready-made client still sends its
/// requests from the election thread, but its dispatch task needs its own runtime to be
/// responsive (fine in tests, not for a controller whose work can hog its runtime).
pub struct ElectionClient(ClientSource);

enum ClientSource {
    Ready(kube::Client),
    Build(Box<dyn FnOnce() -> Result<kube::Client, String> + Send>),
}

impl ElectionClient {
    /// A client that `make` builds on the election thread (its error ends [`run`] with
    /// [`ElectionError::Thread`]).
    pub fn build<E: std::fmt::Display>(make: impl FnOnce() -> Result<kube::Client, E> + Send + 'static) -> Self {
        ElectionClient(ClientSource::Build(Box::new(move || make().map_err(|e| e.to_string()))))
    }

    fn make(self) -> Result<kube::Client, String> {
        match self.0 {
            ClientSource::Ready(c) => Ok(c),
            ClientSource::Build(make) => make(),
        }
    }
}

impl From<kube::Client> for ElectionClient {
    fn from(client: kube::Client) -> Self {
        ElectionClient(ClientSource::Ready(client))
    }
}

impl std::fmt::Debug for ElectionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            ClientSource::Ready(_) => "ElectionClient(ready)",
            ClientSource::Build(_) => "ElectionClient(built on the election thread)",
        })
    }
}

fn work_fate(aborted: bool) -> &'static str {
    if aborted {
        "dropped after ignoring the stop signal"
    } else {
        "stopped"
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

/// Run the election until `shutdown` fires or leadership is lost.
///
/// The election itself runs on a thread of its own (see the module docs); `run`'s future polls
/// `shutdown` and the `lead` future, and does what that thread says.
///
/// * Standing by, it watches the Lease and tries to acquire it every `retry_period` (jittered),
///   at the instant the observed holder's lease would expire, and at once when the Lease is
///   released or deleted.
/// * On acquiring, it publishes [`Leadership::Leading`] and calls `lead` once with a
///   [`Leader`]; the returned future is polled by `run` itself while the election thread renews
///   the Lease every `retry_period`, however long the future's polls take.
/// * `shutdown` while leading: [`Leader::stop`] is cancelled, renewals continue until the
///   `lead` future finishes, then the Lease is released → `Ok(`[`ElectionOutcome::Released`]`)`.
///   `shutdown` while standing by → `Ok(`[`ElectionOutcome::NotLeading`]`)`.
/// * No successful renewal by the renew deadline (or another holder seen): [`Leader::stop`] is
///   cancelled at that instant, the `lead` future is awaited (dropped if it overstays, see the
///   module docs) → `Err(`[`ElectionError::LostLeadership`]`)`: exit non-zero.
/// * The `lead` future ending on its own → Lease released → `Err(`[`ElectionError::WorkEnded`]`)`.
/// * Dropping `run`'s future drops the `lead` future, cancels [`Leader::stop`] and ends the
///   election thread without releasing the Lease (standbys take over after it expires).
///
/// A replica leads at most once per call: after losing leadership the process should restart.
pub async fn run<S, F, Fut>(
    client: impl Into<ElectionClient>,
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
    let stop = CancellationToken::new();
    let (to_thread, from_work) = mpsc::unbounded_channel();
    let (to_work, from_thread) = mpsc::unbounded_channel();
    let identity = cfg.identity.clone();
    let link = thread::Link {
        from_work,
        to_work,
        stop: stop.clone(),
    };
    thread::spawn(client.into(), cfg, status, link).map_err(|e| ElectionError::Thread(format!("starting it: {e}")))?;
    let link = work::Link {
        to_thread,
        from_thread,
        stop,
        identity,
    };
    work::follow(shutdown, lead, link).await
}

fn lease_ref(cfg: &ElectionConfig) -> String {
    format!("{}/{}", cfg.namespace, cfg.lease_name)
}

#[cfg(test)]
mod tests;
