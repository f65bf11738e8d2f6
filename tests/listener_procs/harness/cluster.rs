//! The API server a test runs against — an in-process simulator or the real control plane —
//! with the CRDs installed and a recorder of every change.
use super::*;

/// Where the harness runs: an in-process simulator, or the real control plane (one per test:
/// its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Sim(Sim),
    /// The real control plane, and the watches that record its changes.
    Real(real::Real, real::feed::Watches),
}

/// One cluster with the CRDs and a recorder of every change.
pub struct Cluster {
    pub backend: Backend,
    pub history: Arc<History>,
    pub(super) dir: tempfile::TempDir,
}

/// Pods Ready ~150 ms after creation.
pub fn kubelet() -> KubeletConfig {
    KubeletConfig {
        schedule_delay: Duration::from_millis(5),
        start_delay: Duration::from_millis(30),
        ready_delay: Duration::from_millis(100),
        ..KubeletConfig::default()
    }
}

impl Cluster {
    /// Start a simulator on the current runtime and install the CRDs — or, when the run's
    /// backend is the real control plane, attach to it (`kubelet` is then kwok's stages').
    pub async fn start(kubelet: KubeletConfig) -> R<Arc<Cluster>> {
        if real::selected() {
            return Self::start_real().await;
        }
        let sim = Sim::start(SimConfig {
            kubelet,
            history: 200_000,
            history_bytes: 1 << 30,
            ..SimConfig::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        let history = History::start(sim.core.store.subscribe());
        let client = sim.client().await.map_err(|e| e.to_string())?;
        baton::demo::install_crds(&client).await?;
        let dir = scratch_dir()?;
        Ok(Arc::new(Cluster {
            backend: Backend::Sim(sim),
            history,
            dir,
        }))
    }

    async fn start_real() -> R<Arc<Cluster>> {
        let real = real::Real::connect().await?;
        baton::demo::install_crds(&real.admin).await?;
        let lagged = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (feed, watches) = real::feed::start(real.admin.clone(), history::RESOURCES, lagged.clone()).await?;
        let history = History::start_real(feed, lagged);
        let dir = scratch_dir()?;
        Ok(Arc::new(Cluster {
            backend: Backend::Real(real, watches),
            history,
            dir,
        }))
    }

    /// The shared cluster of every test of this binary, on a runtime of its own (each test
    /// has its own runtime, which ends with the test).
    pub fn shared() -> Arc<Cluster> {
        static SHARED: OnceLock<Arc<Cluster>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a runtime for the cluster");
                    rt.block_on(async move {
                        let c = Cluster::start(kubelet()).await.expect("the cluster starts");
                        let _ = tx.send(c);
                        std::future::pending::<()>().await;
                    });
                });
                rx.recv().expect("the cluster thread answers")
            })
            .clone()
    }

    /// The simulator, for what only it offers (fault rules, its request log); panics on the
    /// real control plane, where such tests do not run (their names say `sim_only`).
    pub fn sim(&self) -> &Sim {
        match &self.backend {
            Backend::Sim(s) => s,
            Backend::Real(..) => panic!("this test needs baton-sim (name it sim_only)"),
        }
    }

    /// A directory of this test process for what tests make (removed by a later run once this
    /// process is gone).
    pub fn scratch(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn is_real(&self) -> bool {
        matches!(self.backend, Backend::Real(..))
    }

    /// An admin client.
    pub async fn client(&self) -> R<kube::Client> {
        match &self.backend {
            Backend::Sim(s) => s.client().await.map_err(|e| e.to_string()),
            // A client of its own: one made on another test's runtime dies with it.
            Backend::Real(r, _) => r
                .attached
                .client_as("baton-test-admin")
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// A kubeconfig for `identity` (an admin), written once. On the real control plane an
    /// agent's (`agent-…`) goes through the identity's own proxy, so [`Cluster::set_blocked`]
    /// can cut it off; others go straight to kube-apiserver.
    pub async fn kubeconfig(&self, identity: &str) -> R<PathBuf> {
        let path = self.dir.path().join(format!("{identity}.kubeconfig"));
        if !path.exists() {
            match &self.backend {
                Backend::Sim(s) => s.kubeconfig_as(identity, &path).map_err(|e| e.to_string())?,
                Backend::Real(r, _) if identity.starts_with("agent-") => {
                    r.kubeconfig_via_proxy(identity, &path).await?
                }
                Backend::Real(r, _) => r.kubeconfig_as(identity, &path)?,
            }
        }
        Ok(path)
    }

    /// Real kubectl as the admin.
    pub fn kubectl(&self) -> kubectl::Kubectl {
        match &self.backend {
            Backend::Sim(s) => kubectl::Kubectl::new(s),
            Backend::Real(r, _) => kubectl::Kubectl::with_kubeconfig(r.admin_kubeconfig().to_path_buf()),
        }
    }

    /// Attach OS process `pid` to pod `ns/name`: the kubelet (baton-sim's, or the harness's node
    /// agent) signals it when the pod is deleted.
    pub async fn attach_pid(&self, ns: &str, name: &str, pid: u32) -> R<()> {
        match &self.backend {
            Backend::Sim(s) => s.kubelet.attach_pid(ns, name, pid).map_err(|e| e.to_string()),
            Backend::Real(r, _) => r.node.attach(ns, name, pid).await,
        }
    }

    /// A container of pod `ns/name` restarts (the kubelet counts it; not Ready for a moment).
    pub async fn restart_container(&self, ns: &str, name: &str) -> R<()> {
        match &self.backend {
            Backend::Sim(s) => {
                if s.kubelet.crash(ns, name) {
                    Ok(())
                } else {
                    Err(format!("the kubelet does not run pod {name}"))
                }
            }
            Backend::Real(r, _) => r.node.restart_container(ns, name).await,
        }
    }

    /// Cut `identity` off from the API server (its requests hang) or heal it.
    pub fn set_blocked(&self, identity: &str, blocked: bool) -> R<()> {
        let done = match (&self.backend, blocked) {
            (Backend::Sim(s), true) => {
                s.faults.block(identity);
                true
            }
            (Backend::Sim(s), false) => {
                s.faults.unblock(identity);
                true
            }
            (Backend::Real(r, _), true) => r.block(identity),
            (Backend::Real(r, _), false) => r.unblock(identity),
        };
        done.then_some(())
            .ok_or_else(|| format!("{identity} has no proxy to block"))
    }

    /// The real control plane, if that is the backend.
    pub fn real(&self) -> Option<&real::Real> {
        match &self.backend {
            Backend::Real(r, _) => Some(r),
            Backend::Sim(_) => None,
        }
    }

    /// Every write the API server answered so far: (identity, request path).
    pub fn writes(&self) -> Vec<(String, String)> {
        match &self.backend {
            Backend::Sim(s) => s.core.writes().into_iter().map(|w| (w.identity, w.path)).collect(),
            Backend::Real(r, _) => r.audited_writes(0).into_iter().map(|w| (w.user, w.uri)).collect(),
        }
    }

    /// The API server's current resourceVersion: every change made before the call is at or below.
    pub async fn current_rv(&self) -> R<u64> {
        match &self.backend {
            Backend::Sim(s) => Ok(s.core.store.current_rv()),
            Backend::Real(r, _) => r.current_rv().await,
        }
    }
}

/// A directory for kubeconfigs and listener files: under the build's scratch directory for tests
/// (a shared simulator is never dropped, so earlier runs' directories are removed here when their
/// process is gone), else a temporary directory removed on drop.
fn scratch_dir() -> R<tempfile::TempDir> {
    let Some(root) = option_env!("CARGO_TARGET_TMPDIR") else {
        return tempfile::Builder::new()
            .prefix("baton-procs-")
            .tempdir()
            .map_err(|e| e.to_string());
    };
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("listener-procs-").and_then(|r| r.split('-').next());
        if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("listener-procs-{}-", std::process::id()))
        .tempdir_in(root)
        .map_err(|e| e.to_string())
}
