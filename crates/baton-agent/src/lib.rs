//! The baton agent: runs inside (library) or beside ([`sidecar`]) an application pod, holds
//! that pod's listener Leases and tells the application which listeners to run.
//!
//! ```no_run
//! # async fn app(client: kube::Client) {
//! use baton_agent::{Agent, AgentConfig, AgentEvent};
//! let cfg = AgentConfig::new("default", "user-service-0-7d4a", "pod-uid").with_sets(["sxt"]);
//! let mut agent = Agent::start(client, cfg);
//! while let Some(event) = agent.next().await {
//!     match event {
//!         AgentEvent::Start(s) => { /* run s.listener with s.config, fencing token s.fencing_token */ }
//!         AgentEvent::Stop(stop) => { /* stop stop.listener, then: */ stop.ack(); }
//!     }
//! }
//! # }
//! ```
//!
//! # Protocol (the agent's side of [`baton_api::listenerset::lease`])
//!
//! * The agent watches the listener Leases of its namespace and considers *its own* those whose
//!   `holderIdentity` is its pod name **and** whose Pod ownerReference uid is its pod uid.
//! * **Start only after a successful conditional renewal.** When a Lease becomes its own, the
//!   agent first renews it (update conditional on `resourceVersion`), reads the config the
//!   controller named in annotation `baton.dev/config`, and only then emits
//!   [`AgentEvent::Start`] with the Lease's `leaseTransitions` as fencing token.
//! * **Renewal and the safety deadline.** Each renewal is a conditional update. Its *base* is
//!   the monotonic instant just before the request was sent; the controller can only judge the
//!   Lease expired `leaseDuration` after it *observed* that write, which is later. If no
//!   renewal succeeds, the agent emits [`AgentEvent::Stop`] at `base + leaseDuration -
//!   safety_margin` (reason [`StopReason::RenewFailed`]), so the application has stopped before
//!   anyone else can be given the listener. It keeps trying; if a later renewal succeeds and
//!   the Lease is still its own, the listener is started again.
//! * **Release.** When the controller asks for a release (annotation
//!   `baton.dev/release-requested`) or on [`Agent::shutdown`], the agent emits `Stop` and waits
//!   for the application's acknowledgement ([`Stop::ack`], or dropping the [`Stop`]) while still
//!   renewing, and only then clears `holderIdentity` with a conditional update (re-reading and
//!   retrying on 409 while the Lease is still its own). A listener is never released before the
//!   application has confirmed it stopped. Many releases asked for together (a drain) are
//!   stopped a batch at a time, as many as the writes that hand them over can take while the
//!   application stops one, or all at once when it takes a second or more per stop. On shutdown every listener is stopped at once and
//!   every Lease released as soon as its stop is acknowledged; Leases whose stop is not
//!   acknowledged within `stop_timeout` are left to expire.
//! * **Lost.** If a Lease stops being its own (holder changed, deleted), the agent emits `Stop`
//!   at once (reason [`StopReason::Lost`]) and forgets it.
//! * Dropping the [`Agent`] aborts it without releasing anything (like `kill -9`).
//!
//! # Layout
//!
//! The application-facing types are here; `config` holds [`AgentConfig`], `state` the agent's
//! view of its Leases and its decisions, `ops` the Lease requests, and `task` the watch and event
//! loop that drives them.
pub mod sidecar;

mod config;
mod configs;
mod ops;
mod state;
mod task;

pub use config::{AgentConfig, SetFilter};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use task::run;

/// What the application must do.
#[derive(Debug)]
pub enum AgentEvent {
    Start(Start),
    Stop(Stop),
}

/// Run a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub set: String,
    pub listener: String,
    /// The listener's config (the Secret key's value), if it has one.
    pub config: Option<String>,
    /// The Lease's `leaseTransitions`: strictly increases with every new holder. Hand it to
    /// downstream systems that can reject writes from an older holder.
    pub fencing_token: i32,
}

/// Why a listener must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The controller asked for the listener (reason from the annotation).
    ReleaseRequested(String),
    /// The agent is shutting down.
    Shutdown,
    /// Renewals failed for too long: the Lease could soon be judged expired.
    RenewFailed,
    /// The Lease is no longer this pod's.
    Lost,
}

/// Stop a listener; acknowledge with [`Stop::ack`] (or by dropping it) once it has stopped.
#[derive(Debug)]
pub struct Stop {
    pub set: String,
    pub listener: String,
    pub reason: StopReason,
    ack: Option<oneshot::Sender<()>>,
}

impl Stop {
    /// The listener has stopped: the agent may release its Lease.
    pub fn ack(mut self) {
        if let Some(tx) = self.ack.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(tx) = self.ack.take() {
            let _ = tx.send(());
        }
    }
}

/// Each running listener's safety deadline, `(set, listener)` → the instant (this process's
/// monotonic clock) at which the agent stops it unless a renewal succeeds first. Past it the
/// Lease may be given to another pod soon: an application that no longer hears from the agent
/// must have stopped the listener by then (the sidecar publishes it as `validUntil`).
pub type ValidUntil = std::collections::BTreeMap<(String, String), tokio::time::Instant>;

/// A running agent. Dropping it aborts the agent without releasing (see the module doc).
pub struct Agent {
    events: mpsc::UnboundedReceiver<AgentEvent>,
    shutdown: watch::Sender<bool>,
    valid_until: watch::Receiver<ValidUntil>,
    task: JoinHandle<()>,
}

/// Begins a graceful shutdown from anywhere.
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

impl Agent {
    /// Start the agent on `client`'s connection.
    pub fn start(client: kube::Client, cfg: AgentConfig) -> Agent {
        let (tx, events) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (valid_tx, valid_until) = watch::channel(ValidUntil::new());
        let task = tokio::spawn(run(client, cfg, tx, shutdown_rx, valid_tx));
        Agent {
            events,
            shutdown,
            valid_until,
            task,
        }
    }

    /// The running listeners' safety deadlines, updated with every renewal, before the events
    /// that follow from it are sent (so a `Start` always has its deadline here).
    pub fn valid_until(&self) -> watch::Receiver<ValidUntil> {
        self.valid_until.clone()
    }

    /// The next thing to do; `None` once the agent has finished (after [`shutdown`](Self::shutdown)).
    pub async fn next(&mut self) -> Option<AgentEvent> {
        self.events.recv().await
    }

    /// The next thing to do if one is waiting already (a burst of assignments arrives as many
    /// events at once: an application may apply them together).
    pub fn try_next(&mut self) -> Option<AgentEvent> {
        self.events.try_recv().ok()
    }

    /// Stop every listener, release every Lease, then end the event stream. Keep calling
    /// [`next`](Self::next) (and acknowledging the stops) until it returns `None`.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}
