//! The agent's task, the shell around [`State`]: watch the namespace's listener Leases, feed
//! what happens (with the time) to the state machine and perform the actions it decides, until
//! the application has acknowledged every stop of a shutdown (or the stop timeout passes).

use std::collections::HashSet;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::ops::{perform, Apis, OpDone};
use super::state::{Action, State};
use super::{AgentConfig, AgentEvent, Stop};

/// The I/O side: requests in flight, acknowledgements awaited, the application's channel.
struct Shell {
    apis: Apis,
    events: mpsc::UnboundedSender<AgentEvent>,
    ops: FuturesUnordered<BoxFuture<'static, OpDone>>,
    acks: FuturesUnordered<BoxFuture<'static, (String, u64)>>,
}

impl Shell {
    /// Perform what the state machine decided.
    fn perform(&mut self, st: &mut State) {
        for action in st.take_actions() {
            match action {
                Action::Send { name, kind, lease } => self.ops.push(perform(self.apis.clone(), name, kind, *lease)),
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
            }
        }
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
    let wcfg = watcher::Config::default().labels(&cfg.label_selector());
    let stream = watcher(leases.clone(), wcfg).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let apis = Apis {
        leases,
        secrets: Api::namespaced(client, &cfg.namespace),
        timeout: cfg.request_timeout,
    };
    let mut sh = Shell {
        apis,
        events,
        ops: FuturesUnordered::new(),
        acks: FuturesUnordered::new(),
    };
    let mut st = State::new(cfg);
    let mut init_seen: Option<HashSet<String>> = None;
    let mut shutdown_deadline: Option<Instant> = None;
    info!(pod = %st.cfg.pod_name, namespace = %st.cfg.namespace, "agent started");
    loop {
        let next = st.tick(Instant::now());
        // Deadlines first: the application reads a Start's deadline when it gets the Start.
        let now_valid = st.valid_until();
        valid_until.send_if_modified(|v| {
            let changed = *v != now_valid;
            *v = now_valid;
            changed
        });
        sh.perform(&mut st);
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
                    st.observe(&name, Some(l), Instant::now());
                }
                Some(Ok(watcher::Event::Delete(l))) => {
                    let name = l.metadata.name.clone().unwrap_or_default();
                    st.observe(&name, None, Instant::now());
                }
                Some(Ok(watcher::Event::Init)) => init_seen = Some(HashSet::new()),
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(seen) = init_seen.take() {
                        let gone: Vec<String> = st.known.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                        for name in gone {
                            st.observe(&name, None, Instant::now());
                        }
                    }
                }
                Some(Err(e)) => debug!(error = %e, "lease watch"),
                None => break,
            },
            Some(done) = sh.ops.next(), if !sh.ops.is_empty() => {
                st.on_op(&done.name, done.kind, done.result, Instant::now());
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
    }
    info!("agent finished");
}
