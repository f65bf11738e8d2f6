//! The demo's listener side: every pod of the sample service runs the baton agent (as its
//! in-process "process" in the simulator), and each start/stop is logged so the demo can show
//! each handover (old pod → new pod, gap in ms) and count duplicates.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use baton_sim::{PodContext, Sim};

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

/// Run the agent in every pod labelled `app=<app>`, logging into `log`.
pub fn attach_agents(sim: &Sim, app: &str, log: HandoverLog) {
    let ids = sim.identities();
    let app = app.to_string();
    sim.kubelet.attach(
        move |pod| pod.pointer("/metadata/labels/app").and_then(|v| v.as_str()) == Some(app.as_str()),
        Arc::new(move |ctx: PodContext| {
            let (log, ids) = (log.clone(), ids.clone());
            Box::pin(async move {
                let Ok(client) = ids.client(&format!("agent-{}", ctx.name)) else {
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
                        _ = sigterm.changed(), if !terminating => {
                            // SIGTERM: stop everything and release every Lease at once.
                            terminating = true;
                            agent.shutdown();
                        }
                    }
                }
            })
        }),
    );
}
