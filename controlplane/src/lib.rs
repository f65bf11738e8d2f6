//! A real Kubernetes control plane on one machine — etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok's fake nodes, on loopback — for baton's
//! end-to-end tests and for trying baton against the real thing (`make cluster`).
//!
//! * [`binaries`]: the programs, built once from the Go module proxy at pinned releases and cached.
//! * [`pki`]: the CA, serving and client certificates, the ServiceAccount signing key.
//! * [`procs`]: child processes that die with the thread that started them.
//! * [`kubeconfig`]: kubeconfigs with client certificates, and clients made from them.
//! * [`nodes`]: kwok's stages (pods Running and Ready as baton-sim's kubelet takes them) and the
//!   fake Node objects.
//! * [`node`]: the kubelet's part for OS processes attached to pods (kwok runs nothing).
//! * [`programs`]: in-process programs run in pods (the demo's agents), signalled like processes.
//! * [`proxy`]: a TCP proxy between one client and kube-apiserver that can cut it off.
//! * [`ControlPlane`]: start everything, wait until every component is healthy, stop.
//! * [`Attached`]: a control plane another process started (the test tier), found by its directory
//!   (its kubeconfig, CA and the `pids` file naming each component's process).

pub mod binaries;
pub mod kubeconfig;
pub mod node;
pub mod nodes;
pub mod pki;
pub mod procs;
pub mod programs;
pub mod proxy;
mod start;

use std::path::{Path, PathBuf};

pub use binaries::{Binaries, ETCD, KUBERNETES, KWOK};
pub use nodes::PodTiming;
pub use start::{ControlPlane, Options};

/// What can go wrong starting or using the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("building the control plane: {0}")]
    Go(String),
    #[error("certificates: {0}")]
    Pki(String),
    #[error("starting {0}")]
    Start(String),
    #[error("{component} did not become healthy within {seconds} s: {why}")]
    Unhealthy {
        component: String,
        seconds: u64,
        why: String,
    },
    #[error("{0} exited:\n{1}")]
    Exited(String, String),
    #[error("{0}: no process of a component named {1}")]
    NoPid(PathBuf, String),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("API: {0}")]
    Api(#[from] kube::Error),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The environment variable that holds the directory of a running control plane (set by
/// `baton-cluster exec`, read by the test harness).
pub const DIR_ENV: &str = "BATON_CLUSTER_DIR";

/// A control plane started by another process, found by its directory: its admin kubeconfig
/// and its CA, to mint client certificates for named identities.
pub struct Attached {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub server: String,
    pki: pki::Pki,
}

impl Attached {
    /// The control plane in `dir` (its `kubeconfig` and `pki/`).
    pub fn open(dir: &Path) -> Result<Attached, Error> {
        let kubeconfig = dir.join("kubeconfig");
        let server = kubeconfig::server_of(&kubeconfig)?;
        Ok(Attached {
            dir: dir.to_path_buf(),
            kubeconfig,
            server,
            pki: pki::Pki::load(dir)?,
        })
    }

    /// The control plane named by `$BATON_CLUSTER_DIR`, if any.
    pub fn from_env() -> Option<Result<Attached, Error>> {
        let dir = std::env::var_os(DIR_ENV)?;
        Some(Attached::open(Path::new(&dir)))
    }

    /// Write a kubeconfig for `user` (an admin: group `system:masters`) to `path`, namespace `ns`.
    pub fn kubeconfig_as(&self, user: &str, ns: &str, path: &Path) -> Result<(), Error> {
        kubeconfig::write(path, &self.server, &self.pki, user, Some("system:masters"), ns)
    }

    /// Write a kubeconfig for `user` with no group beyond `system:authenticated` (RBAC decides).
    pub fn kubeconfig_unprivileged(&self, user: &str, ns: &str, path: &Path) -> Result<(), Error> {
        kubeconfig::write(path, &self.server, &self.pki, user, None, ns)
    }

    /// An admin client for `user`.
    pub async fn client_as(&self, user: &str) -> Result<kube::Client, Error> {
        kubeconfig::client(&self.server, &self.pki, user, Some("system:masters")).await
    }

    /// The process id of component `name` (`etcd`, `kube-apiserver`, `kube-controller-manager`,
    /// `kube-scheduler`, `kwok`) now, from the directory's `pids` file, which the process that
    /// runs the control plane rewrites whenever it starts a component again: for tests that
    /// pause (SIGSTOP) or kill one.
    pub fn pid_of(&self, name: &str) -> Result<u32, Error> {
        let path = self.dir.join(start::PIDS);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        text.lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(n, _)| *n == name)
            .and_then(|(_, pid)| pid.trim().parse().ok())
            .ok_or_else(|| Error::NoPid(path, name.to_string()))
    }
}
