//! Where the demo runs: baton-sim in this process (the default: it starts in milliseconds and
//! needs nothing installed), or the real control plane (`--backend real`: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok's nodes, built from the Go module proxy on
//! first use and cached; see docs/cluster.md). The script is the same on both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_sim::{KubeletConfig, Sim, SimConfig};

use super::listeners::{self, Agents, HandoverLog};

/// The API server the demo talks to.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cluster {
    /// The embedded API server simulator.
    #[default]
    Sim,
    /// The real control plane on this machine (`make cluster`'s programs).
    Real,
}

pub enum World {
    Sim(Sim),
    Real {
        cp: Arc<baton_cluster::ControlPlane>,
        programs: Option<tokio::task::JoinHandle<()>>,
        /// Starts again a component that exits, as a kubelet restarts a static pod.
        supervisor: tokio::task::JoinHandle<()>,
    },
}

impl World {
    /// Start the chosen backend, pods Ready `ready_delay` after they run.
    pub async fn start(cluster: Cluster, ready_delay: Duration) -> Result<World, String> {
        match cluster {
            Cluster::Sim => {
                let config = SimConfig {
                    kubelet: KubeletConfig {
                        ready_delay,
                        ..KubeletConfig::default()
                    },
                    ..SimConfig::default()
                };
                Sim::start(config)
                    .await
                    .map(World::Sim)
                    .map_err(|e| format!("starting the simulator: {e}"))
            }
            Cluster::Real => {
                let bins = baton_cluster::binaries::ensure(&mut std::io::stderr()).map_err(|e| e.to_string())?;
                let dir = std::env::temp_dir().join(format!("baton-demo-cluster-{}", std::process::id()));
                let mut opts = baton_cluster::Options::new(dir);
                opts.timing.ready = ready_delay;
                let cp = baton_cluster::ControlPlane::start(&bins, &opts)
                    .await
                    .map_err(|e| format!("starting the control plane: {e}"))?;
                let cp = Arc::new(cp);
                let watched = cp.clone();
                let supervisor = tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    loop {
                        tick.tick().await;
                        if watched.supervise().is_err() {
                            return;
                        }
                    }
                });
                Ok(World::Real {
                    cp,
                    programs: None,
                    supervisor,
                })
            }
        }
    }

    /// What the banner says the API server is.
    pub fn describe(&self) -> String {
        match self {
            World::Sim(s) => format!("API server simulator at {}", s.https_url()),
            World::Real { cp, .. } => format!(
                "Kubernetes {} control plane at {} (etcd {}, kwok nodes)",
                baton_cluster::KUBERNETES,
                cp.server,
                baton_cluster::ETCD
            ),
        }
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        match self {
            World::Sim(s) => s.kubeconfig_path().to_path_buf(),
            World::Real { cp, .. } => cp.kubeconfig.clone(),
        }
    }

    /// The server's address, as a session names it.
    pub fn server(&self) -> String {
        match self {
            World::Sim(s) => s.addr().to_string(),
            World::Real { cp, .. } => cp.server.trim_start_matches("https://").to_string(),
        }
    }

    /// An admin client.
    pub async fn client(&self) -> Result<kube::Client, String> {
        match self {
            World::Sim(s) => s.client().await.map_err(|e| e.to_string()),
            World::Real { cp, .. } => cp.client_as("baton-demo").await.map_err(|e| e.to_string()),
        }
    }

    /// Run an agent in every pod of the sample service.
    pub fn attach_agents(&mut self, client: kube::Client, app: &str, log: HandoverLog) -> Agents {
        match self {
            World::Sim(s) => listeners::attach_agents(s, app, log),
            World::Real { cp, programs, .. } => {
                let (agents, task) = listeners::attach_agents_real(cp.clone(), client, app, log);
                *programs = Some(task);
                agents
            }
        }
    }

    /// Stop the API server (every client has stopped before).
    pub async fn stop(self) {
        match self {
            World::Sim(s) => s.stop(),
            World::Real {
                cp,
                programs,
                supervisor,
            } => {
                supervisor.abort();
                let _ = supervisor.await;
                if let Some(p) = programs {
                    p.abort();
                    let _ = p.await;
                }
                let dir = cp.dir.clone();
                if let Ok(cp) = Arc::try_unwrap(cp) {
                    cp.stop();
                }
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}
