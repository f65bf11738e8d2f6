//! The second backend of the end-to-end tests: the real control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok nodes) that `baton-cluster exec` started and
//! named in `BATON_CLUSTER_DIR`; `BATON_TEST_CLUSTER=real` selects it (`make test` runs the
//! end-to-end binaries once per backend).
//!
//! What baton-sim does in-process is done here the way a cluster does it:
//! * identities are client certificates signed by the cluster's CA (group `system:masters`),
//!   minted per name as baton-sim registers admin tokens;
//! * [`node::NodeAgent`] (in `baton-cluster`) plays the kubelet's part for the OS processes a test attaches to a pod:
//!   SIGTERM on a graceful deletion, SIGKILL at the end of the grace period, then the pod deleted
//!   with grace 0 (kwok plays every other pod);
//! * [`proxy::FaultProxy`] (in `baton-cluster`) stands between one identity and kube-apiserver, so a test can cut it
//!   off (its requests hang) or drop its connections;
//! * [`feed`] turns watches into the ordered change feed baton-sim's store gives.
//!
//! Shared through `#[path]` by the test binaries that run on both backends.
#![allow(dead_code)]

pub mod feed;
pub use baton_cluster::{node, proxy};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};

/// Whether this run's backend is the real control plane (`BATON_TEST_CLUSTER=real`).
pub fn selected() -> bool {
    std::env::var("BATON_TEST_CLUSTER").is_ok_and(|v| v == "real")
}

/// The real control plane of this run.
pub struct Real {
    pub attached: baton_cluster::Attached,
    pub admin: kube::Client,
    pub node: Arc<node::NodeAgent>,
    proxies: Mutex<HashMap<String, Arc<proxy::FaultProxy>>>,
}

impl Real {
    /// Attach to the control plane `BATON_CLUSTER_DIR` names; start the node agent on the
    /// current runtime.
    pub async fn connect() -> Result<Real, String> {
        let attached = baton_cluster::Attached::from_env()
            .ok_or("BATON_TEST_CLUSTER=real needs BATON_CLUSTER_DIR (run the tests under `baton-cluster exec`)")?
            .map_err(|e| e.to_string())?;
        let admin = attached
            .client_as("baton-test-admin")
            .await
            .map_err(|e| e.to_string())?;
        let node = node::NodeAgent::start(admin.clone());
        Ok(Real {
            attached,
            admin,
            node,
            proxies: Mutex::default(),
        })
    }

    /// The admin kubeconfig `baton-cluster` wrote.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.attached.kubeconfig
    }

    /// A kubeconfig for admin `identity` at `path`, straight to kube-apiserver.
    pub fn kubeconfig_as(&self, identity: &str, path: &Path) -> Result<(), String> {
        self.attached
            .kubeconfig_as(identity, "default", path)
            .map_err(|e| e.to_string())
    }

    /// A kubeconfig for admin `identity` at `path` whose connections go through its own
    /// [`proxy::FaultProxy`] (so [`Real::block`] can cut it off).
    pub async fn kubeconfig_via_proxy(&self, identity: &str, path: &Path) -> Result<(), String> {
        let proxy = self.proxy(identity).await?;
        self.kubeconfig_as(identity, path)?;
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let text = text.replace(&self.attached.server, &format!("https://{}", proxy.addr));
        std::fs::write(path, text).map_err(|e| e.to_string())
    }

    async fn proxy(&self, identity: &str) -> Result<Arc<proxy::FaultProxy>, String> {
        if let Some(p) = self.lock().get(identity) {
            return Ok(p.clone());
        }
        let upstream = self.attached.server.trim_start_matches("https://").to_string();
        let p = Arc::new(proxy::FaultProxy::start(upstream).await?);
        Ok(self.lock().entry(identity.to_string()).or_insert(p).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<proxy::FaultProxy>>> {
        self.proxies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cut `identity` off from kube-apiserver: its requests hang until [`Real::unblock`].
    pub fn block(&self, identity: &str) -> bool {
        self.lock().get(identity).map(|p| p.block()).is_some()
    }

    pub fn unblock(&self, identity: &str) -> bool {
        self.lock().get(identity).map(|p| p.unblock()).is_some()
    }

    /// etcd's current revision, as kube-apiserver reports it on a list (every change made before
    /// this call has a resourceVersion at or below it).
    pub async fn current_rv(&self) -> Result<u64, String> {
        let list = Api::<Lease>::all(self.admin.clone())
            .list(&ListParams::default().limit(1))
            .await
            .map_err(|e| e.to_string())?;
        list.metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "a list without a resourceVersion".to_string())
    }

    /// The directory of the control plane (its logs under `logs/`).
    pub fn dir(&self) -> PathBuf {
        self.attached.dir.clone()
    }

    /// Every write kube-apiserver answered, from its audit log (the lines after byte `from`;
    /// see [`Real::audit_len`]).
    pub fn audited_writes(&self, from: u64) -> Vec<Audited> {
        let path = self.attached.dir.join("logs").join("audit.log");
        let text = std::fs::read(&path).unwrap_or_default();
        let start = usize::try_from(from).unwrap_or(0).min(text.len());
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        String::from_utf8_lossy(&text[start..])
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .map(|v| Audited {
                user: s(&v["user"]["username"]),
                verb: s(&v["verb"]),
                uri: s(&v["requestURI"]),
                resource: s(&v["objectRef"]["resource"]),
                subresource: s(&v["objectRef"]["subresource"]),
                namespace: s(&v["objectRef"]["namespace"]),
                name: s(&v["objectRef"]["name"]),
                code: v["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                at: v["stageTimestamp"].as_str().and_then(|t| t.parse().ok()),
            })
            .collect()
    }

    /// The audit log's length now (a mark for [`Real::audit_writes`]).
    pub fn audit_len(&self) -> u64 {
        std::fs::metadata(self.attached.dir.join("logs").join("audit.log"))
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

/// One write, as kube-apiserver's audit log records it.
#[derive(Clone, Debug)]
pub struct Audited {
    pub user: String,
    pub verb: String,
    /// The request's path and query.
    pub uri: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: u16,
    /// When kube-apiserver answered.
    pub at: Option<jiff::Timestamp>,
}
