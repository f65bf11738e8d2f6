//! Where the benchmark's Rollout runs: the in-process simulator (its simulated kubelet), or,
//! with `--backend real`, a real control plane of its own (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok, pods Ready after the same delay; see
//! docs/cluster.md), whose writes are counted from kube-apiserver's audit log.
use std::path::Path;
use std::time::Duration;

use baton_sim::{KubeletConfig, Sim, SimConfig};

use crate::common;

pub enum Backend {
    Sim(Sim),
    Real(Box<baton_cluster::ControlPlane>),
}

impl Backend {
    pub async fn start(real: bool, ready: Duration) -> Result<Backend, String> {
        if real {
            let bins = baton_cluster::binaries::ensure(&mut std::io::stderr()).map_err(|e| e.to_string())?;
            let dir = std::env::temp_dir().join(format!("baton-bench-cluster-{}", std::process::id()));
            let mut opts = baton_cluster::Options::new(dir);
            opts.timing.start = Duration::from_millis(1);
            opts.timing.ready = ready;
            let cp = baton_cluster::ControlPlane::start(&bins, &opts)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Backend::Real(Box::new(cp)));
        }
        Sim::start(SimConfig {
            kubelet: KubeletConfig {
                schedule_delay: Duration::from_millis(1),
                start_delay: Duration::from_millis(1),
                ready_delay: ready,
                ..KubeletConfig::default()
            },
            history: 200_000,
            history_bytes: 1 << 30,
            ..SimConfig::default()
        })
        .await
        .map(Backend::Sim)
        .map_err(|e| e.to_string())
    }

    pub async fn client(&self) -> Result<kube::Client, String> {
        match self {
            Backend::Sim(s) => s.client().await.map_err(|e| e.to_string()),
            Backend::Real(cp) => cp.client_as("bench").await.map_err(|e| e.to_string()),
        }
    }

    /// A kubeconfig for admin `who` at `path`.
    pub fn kubeconfig_as(&self, who: &str, path: &Path) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        match self {
            Backend::Sim(s) => s.kubeconfig_as(who, path).map_err(|e| e.to_string()),
            Backend::Real(cp) => cp.kubeconfig_as(who, "default", path).map_err(|e| e.to_string()),
        }
    }

    /// Writes (create, update, patch, delete) `who` made so far.
    pub fn writes(&self, who: &str) -> u64 {
        match self {
            Backend::Sim(s) => common::writes(s, who),
            Backend::Real(cp) => {
                let log = std::fs::read_to_string(cp.dir.join("logs").join("audit.log")).unwrap_or_default();
                log.lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter(|v| v["user"]["username"] == who)
                    .filter(|v| matches!(v["verb"].as_str(), Some("create" | "update" | "patch" | "delete")))
                    .count() as u64
            }
        }
    }

    /// The simulator, for its request log (the timeline).
    pub fn sim(&self) -> Option<&Sim> {
        match self {
            Backend::Sim(s) => Some(s),
            Backend::Real(_) => None,
        }
    }

    pub fn stop(self) {
        match self {
            Backend::Sim(s) => s.stop(),
            Backend::Real(cp) => {
                let dir = cp.dir.clone();
                cp.stop();
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}
