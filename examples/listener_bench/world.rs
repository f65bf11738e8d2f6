//! One simulated cluster for a phase: the simulator, the ListenerSet controller, an agent per
//! pod, and the operations the bench drives (pods, the set, waits, load and write counts).
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::agent::{Agent, AgentConfig, AgentEvent, StopReason};
use baton::api::listenerset::{Listener, ListenerSet, ListenerSetSpec};
use baton::api::pod::is_ready;
use baton::listeners::controller::{ControllerConfig, Stats};
use baton_sim::{KubeletConfig, Sim, SimConfig};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde_json::json;

use crate::common::WRITE_METHODS;
use crate::log::{End, KillGuard, Log};
use crate::{AGENT_LABEL, CONTROLLER_ID, LISTENERS, NS, PODS};

pub(crate) struct World {
    pub(crate) sim: Sim,
    pub(crate) client: kube::Client,
    pub(crate) log: Arc<Log>,
    /// Pods whose (re)started process runs no agent (it exits on SIGTERM).
    pub(crate) dead: Arc<Mutex<HashSet<String>>>,
    /// Pods whose running agent is to hang now (aborted without release; the pod stays Ready).
    pub(crate) hang: Arc<Mutex<HashSet<String>>>,
    pub(crate) hang_tx: tokio::sync::watch::Sender<u64>,
    pub(crate) stop_ctl: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) ctl: Option<tokio::task::JoinHandle<Arc<Stats>>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) next_pod: usize,
}

/// A world with [`PODS`] Ready pods and a ListenerSet of `lease`-second Leases whose
/// listeners all run; the pods' names.
pub(crate) async fn running_world(lease: i32) -> Result<(World, Vec<String>), String> {
    let mut w = world().await?;
    let mut live: Vec<String> = Vec::new();
    for _ in 0..PODS {
        live.push(w.create_pod().await?);
    }
    for p in &live {
        w.wait_ready(p).await?;
    }
    w.create_set(lease).await?;
    w.wait_all_running("200 listeners running", Duration::from_secs(30), |_| true)
        .await?;
    Ok((w, live))
}

pub(crate) async fn world() -> Result<World, String> {
    let sim = Sim::start(SimConfig {
        kubelet: KubeletConfig {
            schedule_delay: Duration::from_millis(1),
            start_delay: Duration::from_millis(10),
            ready_delay: Duration::from_millis(100),
            ..KubeletConfig::default()
        },
        history: 200_000,
        history_bytes: 1 << 30,
        ..SimConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let client = sim.client_as("bench-driver").await.map_err(|e| e.to_string())?;
    baton::demo::install_crds(&client).await?;
    let log = Arc::new(Log::default());
    let dead: Arc<Mutex<HashSet<String>>> = Arc::default();
    let hang: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (hang_tx, hang_rx) = tokio::sync::watch::channel(0u64);
    let ids = sim.identities();
    let (l2, d2, h2) = (log.clone(), dead.clone(), hang.clone());
    sim.kubelet.attach(
        |pod| {
            pod.pointer(&format!("/metadata/labels/{AGENT_LABEL}"))
                .and_then(|v| v.as_str())
                == Some("true")
        },
        Arc::new(move |ctx: baton_sim::PodContext| {
            let (log, dead, hang, ids) = (l2.clone(), d2.clone(), h2.clone(), ids.clone());
            let mut hang_rx = hang_rx.clone();
            async move {
                if dead.lock().unwrap().contains(&ctx.name) {
                    // No agent runs; the container exits when the kubelet stops it.
                    let mut sigterm = ctx.sigterm.clone();
                    let _ = sigterm.wait_for(|t| *t).await;
                    return;
                }
                let client = ids.client(&format!("agent-{}", ctx.name)).expect("agent client");
                let mut agent = Agent::start(client, AgentConfig::new(&ctx.namespace, &ctx.name, &ctx.uid));
                let _guard = KillGuard {
                    log: log.clone(),
                    pod: ctx.name.clone(),
                };
                let mut sigterm = ctx.sigterm.clone();
                let mut terminating = false;
                let mut wedged = false;
                loop {
                    tokio::select! {
                        ev = agent.next() => match ev {
                            Some(AgentEvent::Start(s)) => log.start(&ctx.name, &s.listener, s.fencing_token),
                            Some(AgentEvent::Stop(s)) => {
                                let why = match &s.reason {
                                    StopReason::ReleaseRequested(r) => format!("release-requested:{r}"),
                                    StopReason::Shutdown => "shutdown".into(),
                                    StopReason::RenewFailed => "renew-failed".into(),
                                    StopReason::Lost => "lost".into(),
                                };
                                log.stop(&ctx.name, &s.listener, End::Stopped(why));
                                s.ack();
                            }
                            None => break,
                        },
                        _ = sigterm.changed(), if !terminating => {
                            terminating = true;
                            agent.shutdown();
                        }
                        r = hang_rx.changed() => {
                            if r.is_ok() && hang.lock().unwrap().contains(&ctx.name) {
                                wedged = true;
                                break;
                            }
                        }
                    }
                }
                if wedged {
                    // Hung: the agent dies without releasing, the pod stays Ready.
                    drop(agent);
                    drop(_guard);
                    futures::future::pending::<()>().await;
                }
            }
            .boxed()
        }),
    );
    let stats = Arc::new(Stats::default());
    let ctl_client = sim.client_as(CONTROLLER_ID).await.map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = ControllerConfig {
        namespace: Some(NS.into()),
        concurrency: 4,
        instance: CONTROLLER_ID.into(),
        ..ControllerConfig::default()
    };
    let ctl = tokio::spawn(baton::operator::run_listeners(
        ctl_client,
        cfg,
        stats.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    Ok(World {
        sim,
        client,
        log,
        dead,
        hang,
        hang_tx,
        stop_ctl: Some(tx),
        ctl: Some(ctl),
        stats,
        next_pod: 0,
    })
}

/// Poll `check` every 10 ms until it returns Some, or fail after `deadline`.
pub(crate) async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    crate::wait::poll_until(what, deadline, Duration::from_millis(10), check).await
}

impl World {
    pub(crate) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub(crate) async fn create_pod(&mut self) -> Result<String, String> {
        let name = format!("svc-{:03}", self.next_pod);
        self.next_pod += 1;
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": "svc", AGENT_LABEL: "true"}},
            "spec": {"containers": [{"name": "app", "image": "app:v1"}], "terminationGracePeriodSeconds": 30}
        }))
        .map_err(|e| e.to_string())?;
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .map_err(|e| e.to_string())?;
        Ok(name)
    }

    pub(crate) async fn wait_ready(&self, name: &str) -> Result<(), String> {
        let pods = self.pods();
        wait_for(&format!("pod {name} Ready"), Duration::from_secs(20), || {
            let pods = pods.clone();
            async move {
                let p = pods.get_opt(name).await.ok()??;
                (is_ready(&p) && p.metadata.deletion_timestamp.is_none()).then_some(())
            }
        })
        .await
    }

    pub(crate) async fn delete_pod(&self, name: &str, grace: u32) -> Result<(), String> {
        let dp = DeleteParams {
            grace_period_seconds: Some(grace),
            ..Default::default()
        };
        self.pods()
            .delete(name, &dp)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub(crate) async fn create_set(&self, lease_seconds: i32) -> Result<(), String> {
        let set = ListenerSet {
            metadata: ObjectMeta {
                name: Some("bench".into()),
                namespace: Some(NS.into()),
                ..Default::default()
            },
            spec: ListenerSetSpec {
                selector: LabelSelector {
                    match_labels: Some([("app".to_string(), "svc".to_string())].into()),
                    ..Default::default()
                },
                listeners: (0..LISTENERS)
                    .map(|i| Listener {
                        id: format!("l{i:03}"),
                        ..Default::default()
                    })
                    .collect(),
                listeners_from: None,
                max_per_pod: 0,
                lease_duration_seconds: lease_seconds,
                rebalance: None,
                notifications: Vec::new(),
            },
            status: None,
        };
        Api::<ListenerSet>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &set)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Every listener running on exactly one pod that passes `ok`.
    pub(crate) async fn wait_all_running(
        &self,
        what: &str,
        deadline: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        wait_for(what, deadline, || {
            let running = self.log.running();
            let all = running.len() == LISTENERS && running.values().all(|p| p.len() == 1 && ok(&p[0]));
            async move { all.then_some(()) }
        })
        .await
    }

    /// Pods holding listeners now, by count.
    pub(crate) fn load(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for pods in self.log.running().values() {
            for p in pods {
                *m.entry(p.clone()).or_default() += 1;
            }
        }
        m
    }

    pub(crate) fn writes(&self, who: &str) -> BTreeMap<&'static str, u64> {
        WRITE_METHODS
            .iter()
            .map(|m| (*m, self.sim.core.request_count(who, m)))
            .collect()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop_ctl.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.ctl.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        self.sim.stop();
    }
}
