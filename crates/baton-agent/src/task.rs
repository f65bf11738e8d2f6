//! The agent's task, the shell around [`State`]: watch the Leases labelled with this pod's uid
//! (its liveness Lease and the listener Leases assigned to it; with a controller of the
//! per-listener protocol, every Lease of the served sets), feed what happens (with the time) to
//! the state machine and perform the actions it decides, until the application has acknowledged
//! every stop of a shutdown (or the stop timeout passes).

use std::collections::HashSet;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::configs::Configs;
use super::ops::{perform, perform_live, Apis, LiveDone, OpDone};
use super::state::{Action, State};
use super::{AgentConfig, AgentEvent, Stop};
use baton_api::listenerset::liveness::HOLDER_UID_LABEL;

/// The I/O side: requests in flight, acknowledgements awaited, the application's channel.
struct Shell {
    apis: Apis,
    events: mpsc::UnboundedSender<AgentEvent>,
    ops: FuturesUnordered<BoxFuture<'static, OpDone>>,
    live_ops: FuturesUnordered<BoxFuture<'static, LiveDone>>,
    acks: FuturesUnordered<BoxFuture<'static, (String, u64)>>,
    /// The per-set watch, once the state machine asked for it.
    sets_watch: Option<Watch>,
    sets_selector: String,
}

/// One watch's changes.
type Watch = BoxStream<'static, Result<watcher::Event<Lease>, watcher::Error>>;

impl Shell {
    /// Perform what the state machine decided.
    fn perform(&mut self, st: &mut State) {
        for action in st.take_actions() {
            match action {
                Action::Send {
                    name,
                    kind,
                    lease,
                    tracking,
                } => self
                    .ops
                    .push(perform(self.apis.clone(), (name, tracking), kind, *lease)),
                Action::SendLive {
                    kind,
                    lease,
                    duration_seconds,
                    leaving,
                } => self
                    .live_ops
                    .push(perform_live(self.apis.clone(), kind, *lease, duration_seconds, leaving)),
                Action::Start(s) => {
                    let _ = self.events.send(AgentEvent::Start(s));
                }
                Action::Stop {
                    name,
                    set,
                    listener,
                    reason,
                    ack,
                } => {
                    let (tx, rx) = oneshot::channel();
                    let _ = self.events.send(AgentEvent::Stop(Stop {
                        set,
                        listener,
                        reason,
                        ack: Some(tx),
                    }));
                    if let Some(epoch) = ack {
                        self.acks.push(
                            async move {
                                let _ = rx.await;
                                (name, epoch)
                            }
                            .boxed(),
                        );
                    }
                }
                Action::WatchSets => {
                    let cfg = watcher::Config::default().labels(&self.sets_selector);
                    self.sets_watch = Some(
                        watcher(self.apis.leases.clone(), cfg)
                            .default_backoff()
                            .modify(|l: &mut Lease| l.metadata.managed_fields = None)
                            .boxed(),
                    );
                }
            }
        }
    }
}

/// The Leases one watch shows now (its initial list, then its changes).
#[derive(Default)]
struct Shown {
    now: HashSet<String>,
    listing: Option<HashSet<String>>,
}

/// Feed one event of watch `this` to the state machine. A Lease that leaves it (deleted, or no
/// longer matching its selector) is gone for the agent unless the `other` watch shows it.
fn feed(st: &mut State, this: &mut Shown, other: &Shown, ev: Result<watcher::Event<Lease>, watcher::Error>) {
    let now = Instant::now();
    match ev {
        Ok(watcher::Event::Apply(l)) | Ok(watcher::Event::InitApply(l)) => {
            let name = l.metadata.name.clone().unwrap_or_default();
            if let Some(listing) = this.listing.as_mut() {
                listing.insert(name.clone());
            }
            this.now.insert(name.clone());
            st.observe(&name, Some(l), now);
        }
        Ok(watcher::Event::Delete(l)) => {
            let name = l.metadata.name.clone().unwrap_or_default();
            this.now.remove(&name);
            if !other.now.contains(&name) {
                let rv = l.metadata.resource_version.as_deref().and_then(|v| v.parse().ok());
                st.observe_gone(&name, rv, now);
            }
        }
        Ok(watcher::Event::Init) => this.listing = Some(HashSet::new()),
        Ok(watcher::Event::InitDone) => {
            if let Some(listing) = this.listing.take() {
                let left: Vec<String> = this.now.difference(&listing).cloned().collect();
                this.now = listing;
                for name in left.into_iter().filter(|n| !other.now.contains(n)) {
                    st.observe_gone(&name, None, now);
                }
            }
        }
        Err(e) => debug!(error = %e, "lease watch"),
    }
}

pub(super) async fn run(
    client: kube::Client,
    cfg: AgentConfig,
    events: mpsc::UnboundedSender<AgentEvent>,
    mut shutdown: watch::Receiver<bool>,
    valid_until: watch::Sender<super::ValidUntil>,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let own = watcher::Config::default().labels(&format!("{HOLDER_UID_LABEL}={}", cfg.pod_uid));
    let mut pod_watch = watcher(leases.clone(), own)
        .default_backoff()
        .modify(|l: &mut Lease| l.metadata.managed_fields = None)
        .boxed();
    let apis = Apis {
        leases,
        configs: Configs::new(client, &cfg.namespace),
        timeout: cfg.request_timeout,
        pod: cfg.pod_name.clone(),
    };
    let mut sh = Shell {
        apis,
        events,
        ops: FuturesUnordered::new(),
        live_ops: FuturesUnordered::new(),
        acks: FuturesUnordered::new(),
        sets_watch: None,
        sets_selector: cfg.sets_selector(),
    };
    let mut st = State::new(cfg, Instant::now());
    let (mut pod_shown, mut sets_shown) = (Shown::default(), Shown::default());
    let mut shutdown_deadline: Option<Instant> = None;
    info!(pod = %st.cfg.pod_name, namespace = %st.cfg.namespace, "agent started");
    loop {
        let next = st.tick(Instant::now());
        // Deadlines first: the application reads a Start's deadline when it gets the Start.
        valid_until.send_if_modified(|v| st.refresh_valid_until(v));
        sh.perform(&mut st);
        if sh.sets_watch.is_some() && st.sets_watch_needless(&pod_shown.now) {
            info!("registered on the liveness Lease: no longer watching every Lease of the served sets");
            sh.sets_watch = None;
            sets_shown = Shown::default();
        }
        if st.shut_down() || (st.shutting_down && shutdown_deadline.is_some_and(|d| Instant::now() >= d)) {
            if !st.tracked.is_empty() {
                warn!(
                    left = st.tracked.len(),
                    "shutdown: stops not acknowledged in time; those listeners stop at their deadline and their \
                     Leases are taken over then"
                );
            }
            break;
        }
        let wake = [next, shutdown_deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let sets_watch = async {
            match sh.sets_watch.as_mut() {
                Some(w) => w.next().await,
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            ev = pod_watch.next() => match ev {
                Some(ev) => feed(&mut st, &mut pod_shown, &sets_shown, ev),
                None => break,
            },
            Some(ev) = sets_watch => feed(&mut st, &mut sets_shown, &pod_shown, ev),
            Some(done) = sh.ops.next(), if !sh.ops.is_empty() => {
                st.answered(&done.name, done.tracking, done.kind, done.result, Instant::now());
            }
            Some(done) = sh.live_ops.next(), if !sh.live_ops.is_empty() => {
                st.on_live_op(done.kind, done.result, Instant::now());
            }
            Some((name, epoch)) = sh.acks.next(), if !sh.acks.is_empty() => st.on_ack(&name, epoch, Instant::now()),
            r = shutdown.changed(), if !st.shutting_down => {
                if r.is_ok() && *shutdown.borrow() {
                    info!("agent shutting down: stopping every listener and releasing its Lease");
                    shutdown_deadline = Some(Instant::now() + st.cfg.stop_timeout);
                    st.shutdown(Instant::now());
                } else if r.is_err() {
                    // The Agent was dropped: the task is being aborted anyway.
                    return;
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        if !take_ready(&mut st, &mut sh, &mut pod_watch, &mut pod_shown, &mut sets_shown) {
            break;
        }
    }
    info!("agent finished");
}

/// Most events taken in one go before the state machine looks at the clock again.
const READY_AT_ONCE: usize = 256;

/// Feed the state machine whatever else is ready already (changes of the watches, answers,
/// acknowledgements), up to [`READY_AT_ONCE`]: a burst of 500 assignments is then a few passes
/// over the tracked Leases, not 500. False when this pod's watch ended.
fn take_ready(
    st: &mut State,
    sh: &mut Shell,
    pod_watch: &mut Watch,
    pod_shown: &mut Shown,
    sets_shown: &mut Shown,
) -> bool {
    for _ in 0..READY_AT_ONCE {
        match pod_watch.next().now_or_never() {
            Some(Some(ev)) => {
                feed(st, pod_shown, sets_shown, ev);
                continue;
            }
            Some(None) => return false,
            None => {}
        }
        if let Some(Some(ev)) = sh.sets_watch.as_mut().and_then(|w| w.next().now_or_never()) {
            feed(st, sets_shown, pod_shown, ev);
            continue;
        }
        if let Some(Some(done)) = (!sh.ops.is_empty()).then(|| sh.ops.next().now_or_never()).flatten() {
            st.answered(&done.name, done.tracking, done.kind, done.result, Instant::now());
            continue;
        }
        if let Some(Some(done)) = (!sh.live_ops.is_empty())
            .then(|| sh.live_ops.next().now_or_never())
            .flatten()
        {
            st.on_live_op(done.kind, done.result, Instant::now());
            continue;
        }
        if let Some(Some((name, epoch))) = (!sh.acks.is_empty()).then(|| sh.acks.next().now_or_never()).flatten() {
            st.on_ack(&name, epoch, Instant::now());
            continue;
        }
        break;
    }
    true
}
