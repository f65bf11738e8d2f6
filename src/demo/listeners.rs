//! The demo's listener side: every pod of the sample service runs the baton agent (as its
//! in-process "process": baton-sim's kubelet runs it, or on the real control plane
//! `baton_cluster::programs`), and each start/stop is logged so the demo can show each handover
//! (old pod → new pod, gap in ms) and count duplicates.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_sim::Sim;
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::agent::{Agent, AgentConfig, AgentEvent};

#[derive(Default)]
struct State {
    /// listener → (pod, since)
    running: HashMap<String, (String, Instant)>,
    /// listener → (pod, stopped at)
    stopped: HashMap<String, (String, Instant)>,
    duplicates: u64,
    handovers: Vec<u128>,
    print: bool,
}

/// The shared start/stop log.
#[derive(Clone, Default)]
pub struct HandoverLog(Arc<Mutex<State>>);

impl HandoverLog {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Print handovers as they happen from now on.
    pub fn print_handovers(&self, on: bool) {
        self.with(|s| s.print = on);
    }

    fn start(&self, pod: &str, listener: &str, token: i32) {
        self.with(|s| {
            let now = Instant::now();
            if let Some((other, _)) = s.running.get(listener) {
                if other != pod {
                    s.duplicates += 1;
                    out!("  DUPLICATE: {listener} started on {pod} while running on {other}");
                }
            }
            if let Some((from, at)) = s.stopped.remove(listener) {
                if from != pod {
                    let gap = now.duration_since(at).as_millis();
                    s.handovers.push(gap);
                    if s.print {
                        out!("  handover {listener:<12} {from} → {pod}  gap {gap} ms  (fencing token {token})");
                    }
                }
            }
            s.running.insert(listener.to_string(), (pod.to_string(), now));
        })
    }

    fn stop(&self, pod: &str, listener: &str) {
        self.with(|s| {
            if s.running.get(listener).is_some_and(|(p, _)| p == pod) {
                s.running.remove(listener);
                s.stopped
                    .insert(listener.to_string(), (pod.to_string(), Instant::now()));
            }
        })
    }

    pub fn duplicates(&self) -> u64 {
        self.with(|s| s.duplicates)
    }

    /// (handovers seen, worst gap in ms)
    pub fn handover_summary(&self) -> (usize, u128) {
        self.with(|s| (s.handovers.len(), s.handovers.iter().copied().max().unwrap_or(0)))
    }

    /// listener → pod, sorted.
    pub fn assignment(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            self.with(|s| s.running.iter().map(|(l, (p, _))| (l.clone(), p.clone())).collect());
        // listener2 before listener10
        v.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
        v
    }
}

/// The agents of the demo's pods, stopped together at the end: each releases its Leases while
/// the API server still answers, so nothing talks to it once it stops.
pub struct Agents {
    stop: watch::Sender<bool>,
    running: watch::Sender<usize>,
}

/// Counts one running agent for as long as it lives (however its task ends).
struct Counted(watch::Sender<usize>);

impl Counted {
    fn new(running: &watch::Sender<usize>) -> Counted {
        running.send_modify(|n| *n += 1);
        Counted(running.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Agents {
    /// Tell every agent to stop (as on SIGTERM) and wait until all have finished, at most
    /// `deadline`; agents of pods that start later do not run.
    pub async fn stop(&self, deadline: Duration) {
        let _ = self.stop.send(true);
        let mut running = self.running.subscribe();
        let _ = tokio::time::timeout(deadline, running.wait_for(|n| *n == 0)).await;
    }
}

/// What an agent learns about its pod (from either backend's kubelet).
struct PodContext {
    namespace: String,
    name: String,
    uid: String,
    sigterm: watch::Receiver<bool>,
}

impl From<baton_sim::PodContext> for PodContext {
    fn from(c: baton_sim::PodContext) -> PodContext {
        PodContext {
            namespace: c.namespace,
            name: c.name,
            uid: c.uid,
            sigterm: c.sigterm,
        }
    }
}

impl From<baton_cluster::programs::PodContext> for PodContext {
    fn from(c: baton_cluster::programs::PodContext) -> PodContext {
        PodContext {
            namespace: c.namespace,
            name: c.name,
            uid: c.uid,
            sigterm: c.sigterm,
        }
    }
}

/// How an agent gets its client: its own identity, `agent-<pod>`.
type Identities = Arc<dyn Fn(String) -> BoxFuture<'static, Option<kube::Client>> + Send + Sync>;

/// The agents' handle, and the program each pod runs (whichever backend's kubelet runs it): its
/// agent, logging into `log`, counted while it runs.
fn agents_and_program(
    ids: Identities,
    log: HandoverLog,
) -> (
    Agents,
    impl Fn(PodContext) -> BoxFuture<'static, ()> + Send + Sync + 'static,
) {
    let (stop, _) = watch::channel(false);
    let (running, _) = watch::channel(0usize);
    let agents = Agents {
        stop: stop.clone(),
        running: running.clone(),
    };
    let program = move |ctx: PodContext| -> BoxFuture<'static, ()> {
        let counted = Counted::new(&running);
        Box::pin(run_agent(ctx, ids.clone(), log.clone(), stop.subscribe(), counted))
    };
    (agents, program)
}

/// Run the agent in every pod labelled `app=<app>` of the simulator, logging into `log`.
pub fn attach_agents(sim: &Sim, app: &str, log: HandoverLog) -> Agents {
    let ids = sim.identities();
    let ids: Identities = Arc::new(move |who: String| {
        let c = ids.client(&who).ok();
        Box::pin(async move { c })
    });
    let app = app.to_string();
    let (agents, program) = agents_and_program(ids, log);
    sim.kubelet.attach(
        move |pod| pod.pointer("/metadata/labels/app").and_then(|v| v.as_str()) == Some(app.as_str()),
        Arc::new(move |ctx: baton_sim::PodContext| program(ctx.into())),
    );
    agents
}

/// Run the agent in every pod labelled `app=<app>` of namespace `default` on the real control
/// plane (kwok's nodes run nothing; `baton_cluster::programs` plays the kubelet for them).
pub fn attach_agents_real(
    cp: Arc<baton_cluster::ControlPlane>,
    client: kube::Client,
    app: &str,
    log: HandoverLog,
) -> (Agents, tokio::task::JoinHandle<()>) {
    let ids: Identities = Arc::new(move |who: String| {
        let cp = cp.clone();
        Box::pin(async move { cp.client_as(&who).await.ok() })
    });
    let (agents, program) = agents_and_program(ids, log);
    let program: baton_cluster::programs::Program =
        Arc::new(move |ctx: baton_cluster::programs::PodContext| program(ctx.into()));
    let task = baton_cluster::programs::run_in_pods(client, "default", &format!("app={app}"), program);
    (agents, task)
}

/// One pod's agent, until its pod's SIGTERM or the demo's end made it release everything.
async fn run_agent(
    ctx: PodContext,
    ids: Identities,
    log: HandoverLog,
    mut stop: watch::Receiver<bool>,
    _counted: Counted,
) {
    if *stop.borrow_and_update() {
        return;
    }
    let Some(client) = ids(format!("agent-{}", ctx.name)).await else {
        return;
    };
    let mut agent = Agent::start(client, AgentConfig::new(&ctx.namespace, &ctx.name, &ctx.uid));
    let mut sigterm = ctx.sigterm.clone();
    let mut terminating = false;
    loop {
        tokio::select! {
            ev = agent.next() => match ev {
                Some(AgentEvent::Start(s)) => log.start(&ctx.name, &s.listener, s.fencing_token),
                Some(AgentEvent::Stop(s)) => {
                    log.stop(&ctx.name, &s.listener);
                    s.ack();
                }
                None => break,
            },
            // SIGTERM, or the demo ends: stop everything and release every Lease at once.
            _ = sigterm.changed(), if !terminating => {
                terminating = true;
                agent.shutdown();
            }
            _ = stop.changed(), if !terminating => {
                terminating = true;
                agent.shutdown();
            }
        }
    }
}
