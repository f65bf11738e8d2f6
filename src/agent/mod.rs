//! The baton agent: runs inside (library) or beside ([`sidecar`]) an application pod, holds
//! that pod's listener Leases and tells the application which listeners to run.
//!
//! ```no_run
//! # async fn app(client: kube::Client) {
//! use baton::agent::{Agent, AgentConfig, AgentEvent};
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
//! # Protocol (the agent's side of `crate::listeners::assigner`)
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
//!   application has confirmed it stopped. On shutdown every listener is stopped at once and
//!   every Lease released as soon as its stop is acknowledged; Leases whose stop is not
//!   acknowledged within `stop_timeout` are left to expire.
//! * **Lost.** If a Lease stops being its own (holder changed, deleted), the agent emits `Stop`
//!   at once (reason [`StopReason::Lost`]) and forgets it.
//! * Dropping the [`Agent`] aborts it without releasing anything (like `kill -9`).
pub mod sidecar;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::api::listenerset::{LISTENERSET_LABEL, LISTENER_LABEL, RELEASE_REQUESTED_ANNOTATION};
use crate::error::is_status;
use crate::listeners::CONFIG_ANNOTATION;

/// Which listener Leases the agent looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetFilter {
    /// Every ListenerSet of the namespace.
    All,
    /// These ListenerSets.
    Names(Vec<String>),
    /// Leases matching this extra label selector (e.g. `baton.dev/listenerset=sxt`).
    Selector(String),
}

/// Identity and timing of an agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub sets: SetFilter,
    /// Renew every this long; None = a quarter of each Lease's duration.
    pub renew_interval: Option<Duration>,
    /// Stop a listener this long before its Lease could expire; None = max(duration / 5, 500 ms)
    /// (at most half the duration). It must cover the time the application needs to stop.
    pub safety_margin: Option<Duration>,
    /// Wait between retries of a failed write.
    pub retry_period: Duration,
    /// Give up on one API request after this long.
    pub request_timeout: Duration,
    /// On shutdown, how long to wait for the application to acknowledge its stops.
    pub stop_timeout: Duration,
}

impl AgentConfig {
    pub fn new(namespace: impl Into<String>, pod_name: impl Into<String>, pod_uid: impl Into<String>) -> Self {
        AgentConfig {
            namespace: namespace.into(),
            pod_name: pod_name.into(),
            pod_uid: pod_uid.into(),
            sets: SetFilter::All,
            renew_interval: None,
            safety_margin: None,
            retry_period: Duration::from_millis(250),
            request_timeout: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(10),
        }
    }

    /// Only these ListenerSets.
    pub fn with_sets<I: IntoIterator<Item = S>, S: Into<String>>(mut self, sets: I) -> Self {
        self.sets = SetFilter::Names(sets.into_iter().map(Into::into).collect());
        self
    }

    fn label_selector(&self) -> String {
        match &self.sets {
            SetFilter::All => LISTENERSET_LABEL.to_string(),
            SetFilter::Names(n) if n.is_empty() => LISTENERSET_LABEL.to_string(),
            SetFilter::Names(n) => format!("{LISTENERSET_LABEL} in ({})", n.join(",")),
            SetFilter::Selector(s) => format!("{LISTENERSET_LABEL},{s}"),
        }
    }

    fn renew_every(&self, duration: Duration) -> Duration {
        self.renew_interval
            .unwrap_or(duration / 4)
            .max(Duration::from_millis(50))
    }

    fn margin(&self, duration: Duration) -> Duration {
        self.safety_margin
            .unwrap_or_else(|| (duration / 5).max(Duration::from_millis(500)))
            .min(duration / 2)
    }
}

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

/// A running agent. Dropping it aborts the agent without releasing (see the module doc).
pub struct Agent {
    events: mpsc::UnboundedReceiver<AgentEvent>,
    shutdown: watch::Sender<bool>,
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
        let task = tokio::spawn(run(client, cfg, tx, shutdown_rx));
        Agent { events, shutdown, task }
    }

    /// The next thing to do; `None` once the agent has finished (after [`shutdown`](Self::shutdown)).
    pub async fn next(&mut self) -> Option<AgentEvent> {
        self.events.recv().await
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
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

struct Tracked {
    set: String,
    listener: String,
    lease: Lease,
    phase: Phase,
    /// Send instant of the last successful write of ours.
    base: Option<Instant>,
    duration: Duration,
    busy: bool,
    due: Instant,
    /// Bumped on every Start, so stale acks are ignored.
    epoch: u64,
}

enum OpKind {
    Acquire,
    Renew,
    Release,
    Refresh,
}

enum OpError {
    Conflict,
    NotFound,
    Other(String),
}

struct OpDone {
    name: String,
    kind: OpKind,
    sent: Instant,
    result: Result<(Option<Lease>, Option<String>), OpError>,
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

struct State {
    cfg: AgentConfig,
    client: kube::Client,
    leases: Api<Lease>,
    known: HashMap<String, Lease>,
    tracked: BTreeMap<String, Tracked>,
    events: mpsc::UnboundedSender<AgentEvent>,
    ops: FuturesUnordered<futures::future::BoxFuture<'static, OpDone>>,
    acks: FuturesUnordered<futures::future::BoxFuture<'static, (String, u64)>>,
    shutting_down: bool,
    epoch: u64,
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
    fn observe(&mut self, name: &str, lease: Option<Lease>) {
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

    fn evaluate(&mut self, name: &str) {
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

    /// Start the write this lease's phase calls for, if it is due and none is in flight.
    fn issue(&mut self, name: &str, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        if t.busy || now < t.due {
            return;
        }
        let kind = match t.phase {
            Phase::Acquiring | Phase::Lost => OpKind::Acquire,
            Phase::Running | Phase::Stopping => OpKind::Renew,
            Phase::Releasing => OpKind::Release,
        };
        t.busy = true;
        let mut lease = t.lease.clone();
        let api = self.leases.clone();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let timeout = self.cfg.request_timeout;
        let name = name.to_string();
        let sent = Instant::now();
        let fut = async move {
            let is_acquire = matches!(kind, OpKind::Acquire);
            let classify = move |e: kube::Error| {
                if is_status(&e, 409) {
                    OpError::Conflict
                } else if is_status(&e, 404) && !is_acquire {
                    OpError::NotFound
                } else {
                    OpError::Other(e.to_string())
                }
            };
            let work = async {
                match kind {
                    OpKind::Acquire | OpKind::Renew => {
                        if let Some(spec) = lease.spec.as_mut() {
                            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
                        }
                        let l = api
                            .replace(&name, &PostParams::default(), &lease)
                            .await
                            .map_err(classify)?;
                        let mut config = None;
                        if is_acquire {
                            if let Some(c) = l.metadata.annotations.as_ref().and_then(|a| a.get(CONFIG_ANNOTATION)) {
                                let (secret, key) = c.split_once('/').unwrap_or((c.as_str(), ""));
                                let s = secrets.get(secret).await.map_err(classify)?;
                                let value = s
                                    .data
                                    .as_ref()
                                    .and_then(|d| d.get(key))
                                    .ok_or_else(|| OpError::Other(format!("Secret {secret} has no key {key:?}")))?;
                                config = Some(String::from_utf8_lossy(&value.0).into_owned());
                            }
                        }
                        Ok((Some(l), config))
                    }
                    OpKind::Release => {
                        if let Some(spec) = lease.spec.as_mut() {
                            spec.holder_identity = None;
                        }
                        let l = api
                            .replace(&name, &PostParams::default(), &lease)
                            .await
                            .map_err(classify)?;
                        Ok((Some(l), None))
                    }
                    OpKind::Refresh => Ok((api.get_opt(&name).await.map_err(classify)?, None)),
                }
            };
            let result = match tokio::time::timeout(timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(OpError::Other("request timed out".into())),
            };
            OpDone {
                name,
                kind,
                sent,
                result,
            }
        };
        self.ops.push(fut.boxed());
    }

    fn refresh(&mut self, name: &str) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        t.busy = true;
        let api = self.leases.clone();
        let timeout = self.cfg.request_timeout;
        let name = name.to_string();
        let sent = Instant::now();
        self.ops.push(
            async move {
                let result = match tokio::time::timeout(timeout, api.get_opt(&name)).await {
                    Ok(Ok(l)) => Ok((l, None)),
                    Ok(Err(e)) => Err(OpError::Other(e.to_string())),
                    Err(_) => Err(OpError::Other("request timed out".into())),
                };
                OpDone {
                    name,
                    kind: OpKind::Refresh,
                    sent,
                    result,
                }
            }
            .boxed(),
        );
    }

    fn on_op(&mut self, done: OpDone) {
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

    fn on_ack(&mut self, name: &str, epoch: u64) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        if t.epoch != epoch || t.phase != Phase::Stopping {
            return;
        }
        t.phase = Phase::Releasing;
        t.due = Instant::now();
        self.evaluate(name);
    }

    /// Safety deadlines and due writes.
    fn tick(&mut self) -> Option<Instant> {
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

async fn run(
    client: kube::Client,
    cfg: AgentConfig,
    events: mpsc::UnboundedSender<AgentEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let wcfg = watcher::Config::default().labels(&cfg.label_selector());
    let stream = watcher(leases.clone(), wcfg).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut st = State {
        cfg,
        client,
        leases,
        known: HashMap::new(),
        tracked: BTreeMap::new(),
        events,
        ops: FuturesUnordered::new(),
        acks: FuturesUnordered::new(),
        shutting_down: false,
        epoch: 0,
    };
    let mut init_seen: Option<HashSet<String>> = None;
    let mut shutdown_deadline: Option<Instant> = None;
    info!(pod = %st.cfg.pod_name, namespace = %st.cfg.namespace, "agent started");
    loop {
        let next = st.tick();
        if st.shutting_down && (st.tracked.is_empty() || shutdown_deadline.is_some_and(|d| Instant::now() >= d)) {
            if !st.tracked.is_empty() {
                warn!(
                    left = st.tracked.len(),
                    "shutdown: stops not acknowledged in time; those Leases will expire"
                );
            }
            break;
        }
        let wake = [next, shutdown_deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = stream.next() => match ev {
                Some(Ok(watcher::Event::Apply(l))) | Some(Ok(watcher::Event::InitApply(l))) => {
                    let name = l.metadata.name.clone().unwrap_or_default();
                    if let Some(seen) = init_seen.as_mut() {
                        seen.insert(name.clone());
                    }
                    st.observe(&name, Some(l));
                }
                Some(Ok(watcher::Event::Delete(l))) => {
                    let name = l.metadata.name.clone().unwrap_or_default();
                    st.observe(&name, None);
                }
                Some(Ok(watcher::Event::Init)) => init_seen = Some(HashSet::new()),
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(seen) = init_seen.take() {
                        let gone: Vec<String> = st.known.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                        for name in gone {
                            st.observe(&name, None);
                        }
                    }
                }
                Some(Err(e)) => debug!(error = %e, "lease watch"),
                None => break,
            },
            Some(done) = st.ops.next(), if !st.ops.is_empty() => st.on_op(done),
            Some((name, epoch)) = st.acks.next(), if !st.acks.is_empty() => st.on_ack(&name, epoch),
            r = shutdown.changed(), if !st.shutting_down => {
                if r.is_ok() && *shutdown.borrow() {
                    info!("agent shutting down: stopping every listener and releasing its Lease");
                    st.shutting_down = true;
                    shutdown_deadline = Some(Instant::now() + st.cfg.stop_timeout);
                    let names: Vec<String> = st.tracked.keys().cloned().collect();
                    for name in names {
                        st.evaluate(&name);
                    }
                } else if r.is_err() {
                    // The Agent was dropped: the task is being aborted anyway.
                    return;
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    info!("agent finished");
}
