//! `baton-sim`: an in-process Kubernetes API server simulator speaking the real REST and
//! watch protocol, with a simulated kubelet, garbage collector and fault injection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = baton_sim::Sim::start(baton_sim::SimConfig::default()).await?;
//! let client = sim.client().await?;
//! println!("kubeconfig at {}", sim.kubeconfig_path().display());
//! # Ok(()) }
//! ```
pub mod admission;
pub mod api;
pub mod cel;
pub mod error;
pub mod faults;
pub mod gc;
pub mod jobs;
pub mod jsonpath;
pub mod kubelet;
pub mod managed;
pub mod meta;
pub mod namespaces;
pub mod openapi;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod strategic;
pub mod table;
pub mod views;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use api::Core;
pub use faults::{FaultRule, Faults};
pub use kubelet::{AttachError, Kubelet, KubeletConfig, PodContext, ProcessFactory};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("writing kubeconfig {path}: {source}")]
    Kubeconfig { path: PathBuf, source: std::io::Error },
    #[error("building a client: {0}")]
    Client(String),
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub addr: SocketAddr,
    /// Where to write the kubeconfig; None = a fresh temporary directory.
    pub kubeconfig: Option<PathBuf>,
    pub kubelet: KubeletConfig,
    /// Watch events kept for resuming watches; older resourceVersions get 410 Gone.
    pub history: usize,
    pub bookmark_interval: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            kubelet: KubeletConfig::default(),
            history: 20_000,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    addr: SocketAddr,
    kubeconfig: PathBuf,
    _tmp: Option<TempDir>,
    pub core: Arc<Core>,
    pub kubelet: Arc<Kubelet>,
    pub faults: Arc<Faults>,
    shutdown: watch::Sender<bool>,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Sim {
    pub async fn start(config: SimConfig) -> Result<Sim, SimError> {
        let listener = TcpListener::bind(config.addr).await.map_err(|source| SimError::Bind {
            addr: config.addr.to_string(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.addr.to_string(),
            source,
        })?;
        let (tmp, kubeconfig) = match &config.kubeconfig {
            Some(p) => (None, p.clone()),
            None => {
                let dir = std::env::temp_dir().join(format!("baton-sim-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&dir).map_err(|source| SimError::Kubeconfig {
                    path: dir.clone(),
                    source,
                })?;
                (Some(TempDir(dir.clone())), dir.join("kubeconfig"))
            }
        };
        write_kubeconfig(&kubeconfig, addr, "sim-admin")?;
        let core = Core::new(config.history);
        let faults = Arc::new(Faults::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let kubelet = Kubelet::new(core.clone(), config.kubelet.clone());
        tokio::spawn(kubelet.clone().run(shutdown_rx.clone()));
        tokio::spawn(gc::run(core.clone(), shutdown_rx.clone()));
        tokio::spawn(jobs::run(core.clone(), shutdown_rx.clone()));
        let server = Arc::new(server::Server {
            core: core.clone(),
            faults: faults.clone(),
            kubelet: kubelet.clone(),
            bookmark_interval: config.bookmark_interval,
            shutdown: shutdown_rx.clone(),
        });
        tokio::spawn(serve(listener, server, shutdown_rx));
        Ok(Sim {
            addr,
            kubeconfig,
            _tmp: tmp,
            core,
            kubelet,
            faults,
            shutdown,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client as the default identity.
    pub async fn client(&self) -> Result<kube::Client, SimError> {
        self.client_as("sim-admin").await
    }

    /// A client whose bearer token is `identity`, so fault rules can single it out.
    pub async fn client_as(&self, identity: &str) -> Result<kube::Client, SimError> {
        client_for(&self.url(), identity)
    }

    /// Write a kubeconfig for another identity (for child processes).
    pub fn kubeconfig_as(&self, identity: &str, path: &Path) -> Result<(), SimError> {
        write_kubeconfig(path, self.addr, identity)
    }

    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A kube client for a simulator URL with a bearer-token identity.
pub fn client_for(url: &str, identity: &str) -> Result<kube::Client, SimError> {
    let uri: http::Uri = url.parse().map_err(|e| SimError::Client(format!("{e}")))?;
    let mut cfg = kube::Config::new(uri);
    cfg.default_namespace = "default".into();
    cfg.auth_info.token = Some(identity.to_string().into());
    cfg.read_timeout = None;
    cfg.connect_timeout = Some(Duration::from_secs(5));
    kube::Client::try_from(cfg).map_err(|e| SimError::Client(e.to_string()))
}

fn write_kubeconfig(path: &Path, addr: SocketAddr, identity: &str) -> Result<(), SimError> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: baton-sim\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: baton-sim\n  context:\n    cluster: baton-sim\n    user: {identity}\n    namespace: default\ncurrent-context: baton-sim\nusers:\n- name: {identity}\n  user:\n    token: {identity}\n"
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SimError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| SimError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })
}

async fn serve(listener: TcpListener, server: Arc<server::Server>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                let _ = stream.set_nodelay(true);
                let srv = server.clone();
                let mut sd = shutdown.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| srv.clone().handle(req));
                    let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let fut = conn.serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = fut => {}
                        _ = sd.changed() => {}
                    }
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}
