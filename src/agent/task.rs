//! The agent's task: watch its namespace's listener Leases and drive [`State`] until the
//! application has acknowledged every stop of a shutdown (or the stop timeout passes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::state::State;
use super::{AgentConfig, AgentEvent};

pub(super) async fn run(
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
