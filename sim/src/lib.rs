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
//!
//! # Map
//!
//! A request travels down this list; nothing lower calls back up (a test, `layers`, reads the
//! sources and fails on an upward `crate::` reference).
//!
//! * [`server`] — HTTP/2 and TLS, routes, content negotiation (JSON, YAML, protobuf, Table),
//!   authentication and impersonation, API Priority and Fairness, watches; it prepares the
//!   request's admission checks and calls the handlers. Renders through [`openapi`],
//!   [`protobuf`] and [`table`]; [`faults`] injects errors and delays.
//! * [`controllers`] — kube-controller-manager's, the kubelet's and kube-apiserver's
//!   post-start work: bootstrap objects, namespaces, RBAC aggregation, garbage collector, Jobs,
//!   the kubelet. Clients of [`Core`]; started by [`Sim::start`].
//! * [`handlers`] — the request handlers ([`Core`]): create, update, patch, server-side apply, scale,
//!   delete, the review and TokenRequest endpoints, authorization against the RBAC snapshot.
//! * [`strategy`] — per-kind defaulting and validation of built-in kinds (the registry
//!   strategies).
//! * [`admission`] — the chain of checks a user's request carries: RBAC escalation
//!   prevention, ValidatingAdmissionPolicies.
//! * [`auth`] — users, tokens, what a request asks, RBAC rules and the authorizer, audit.
//! * [`store`] — objects, one resourceVersion, watch history, the garbage collector's indexes.
//! * [`resources`] — the registry of served types (built-in and from CRDs) and views.
//! * Formats and algorithms: [`cel`], [`managed`] (field ownership), [`strategic`] (strategic
//!   merge patch), [`schema`] (OpenAPI validation, defaulting, pruning), [`selector`],
//!   [`jsonpath`], [`meta`], [`go_format`], [`error`], [`tls`].
pub mod admission;
pub mod auth;
pub mod cel;
pub mod controllers;
pub mod error;
pub mod faults;
pub mod go_format;
pub mod handlers;
pub use kube_jsonpath as jsonpath;
pub mod managed;
pub mod meta;
pub mod openapi;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod strategic;
pub mod strategy;
pub mod table;
pub mod tls;

#[cfg(test)]
mod layers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use controllers::kubelet::{self, AttachError, Kubelet, KubeletConfig, PodContext, ProcessFactory};
pub use faults::{FaultRule, Faults};
pub use handlers::Core;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("writing kubeconfig {path}: {source}")]
    Kubeconfig { path: PathBuf, source: std::io::Error },
    #[error("building a client: {0}")]
    Client(String),
    #[error("issuing a token: {0}")]
    Token(String),
    #[error("making the TLS certificate: {0}")]
    Tls(String),
}

/// The bearer token (and user name, in `system:masters`) of the kubeconfig the simulator writes.
pub const ADMIN: &str = "sim-admin";

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub addr: SocketAddr,
    /// Where to write the kubeconfig; None = a fresh temporary directory.
    pub kubeconfig: Option<PathBuf>,
    pub kubelet: KubeletConfig,
    /// Watch events kept for resuming watches; older resourceVersions get 410 Gone.
    pub history: usize,
    /// And at most this many bytes of object bodies per resource (the simulator's own bound;
    /// kube-apiserver bounds its watch cache by count): raise it with `history` for benchmarks
    /// whose watches must not expire.
    pub history_bytes: usize,
    pub bookmark_interval: Duration,
    /// RBAC (the default, as a cluster) or AlwaysAllow.
    pub authorization: auth::AuthorizationMode,
    /// API Priority and Fairness: the per-user rate above which requests are answered 429
    /// (None, the default: no limit). Changeable later through [`Sim::fairness`].
    pub flow_limit: Option<server::FlowLimit>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            kubelet: KubeletConfig::default(),
            history: 20_000,
            history_bytes: store::HISTORY_BYTES,
            bookmark_interval: Duration::from_secs(5),
            authorization: auth::AuthorizationMode::Rbac,
            flow_limit: None,
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    addr: SocketAddr,
    tls: tls::Tls,
    kubeconfig: PathBuf,
    _tmp: Option<TempDir>,
    pub core: Arc<Core>,
    pub kubelet: Arc<Kubelet>,
    pub faults: Arc<Faults>,
    /// API Priority and Fairness (see [`SimConfig::flow_limit`]).
    pub fairness: Arc<server::Fairness>,
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
        let tls = tls::Tls::generate(addr).map_err(SimError::Tls)?;
        let core = Core::new(config.history, config.history_bytes);
        core.auth.set_mode(config.authorization);
        core.auth.register_admin(ADMIN);
        write_kubeconfig_full(
            &kubeconfig,
            &format!("https://{addr}"),
            &tls.ca_pem,
            ADMIN,
            ADMIN,
            "default",
        )?;
        let faults = Arc::new(Faults::default());
        let fairness = Arc::new(server::Fairness::new(config.flow_limit));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let kubelet = controllers::start(&core, config.kubelet.clone(), &shutdown_rx);
        let server = Arc::new(server::Server {
            core: core.clone(),
            faults: faults.clone(),
            kubelet: kubelet.clone(),
            bookmark_interval: config.bookmark_interval,
            fairness: fairness.clone(),
            shutdown: shutdown_rx.clone(),
            policies: Default::default(),
        });
        tokio::spawn(serve(listener, server, tls.acceptor.clone(), shutdown_rx));
        Ok(Sim {
            addr,
            tls,
            kubeconfig,
            _tmp: tmp,
            core,
            kubelet,
            faults,
            fairness,
            shutdown,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plain-HTTP URL (kube-rs clients of [`client_for`], raw tests).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTPS URL the kubeconfigs name (Go clients send credentials only over TLS).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA that signed the simulator's serving certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.tls.ca_pem
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client as the default identity ([`ADMIN`], in `system:masters`).
    pub async fn client(&self) -> Result<kube::Client, SimError> {
        self.client_as(ADMIN).await
    }

    /// A client whose bearer token is `identity`, so fault rules can single it out. The token is
    /// registered as an admin user named `identity` (in `system:masters`): named test
    /// identities are admins, as the default kubeconfig is; use
    /// [`Sim::client_for_service_account`] for a client that RBAC restricts.
    pub async fn client_as(&self, identity: &str) -> Result<kube::Client, SimError> {
        self.identities().client(identity)
    }

    /// Write a kubeconfig for another admin identity (see [`Sim::client_as`]), for child processes.
    pub fn kubeconfig_as(&self, identity: &str, path: &Path) -> Result<(), SimError> {
        self.core.auth.register_admin(identity);
        self.write_kubeconfig(path, identity, identity, "default")
    }

    fn write_kubeconfig(&self, path: &Path, user: &str, token: &str, namespace: &str) -> Result<(), SimError> {
        write_kubeconfig_full(path, &self.https_url(), &self.tls.ca_pem, user, token, namespace)
    }

    /// A handle that makes admin clients for named identities, for code that outlives a borrow
    /// of the simulator (e.g. processes attached to pods).
    pub fn identities(&self) -> Identities {
        Identities {
            core: self.core.clone(),
            url: self.url(),
        }
    }

    /// A token for ServiceAccount `ns/name` (which must exist), as TokenRequest issues it:
    /// bound to pod `pod` of the same namespace when given (the user's extra then carries the
    /// pod's name and uid, and the token stops working when the pod is gone), valid one hour.
    pub fn service_account_token(&self, ns: &str, name: &str, pod: Option<&str>) -> Result<String, SimError> {
        let bound = match pod {
            None => None,
            Some(p) => {
                let key = resources::ResKey {
                    group: String::new(),
                    plural: "pods".into(),
                };
                let obj = self
                    .core
                    .store
                    .get(&key, ns, p)
                    .ok_or_else(|| SimError::Token(format!("pods {p:?} not found in {ns}")))?;
                Some(("Pod".to_string(), p.to_string(), obj.uid.clone()))
            }
        };
        let spec = auth::token_request::TokenSpec {
            bound,
            ..Default::default()
        };
        self.core
            .issue_token(ns, name, &spec)
            .map(|(_, token)| token)
            .map_err(|e| SimError::Token(e.message))
    }

    /// A client authenticated as ServiceAccount `ns/name` (see [`Sim::service_account_token`]).
    pub async fn client_for_service_account(
        &self,
        ns: &str,
        name: &str,
        pod: Option<&str>,
    ) -> Result<kube::Client, SimError> {
        let token = self.service_account_token(ns, name, pod)?;
        client_for(&self.url(), &token)
    }

    /// Write a kubeconfig authenticated as ServiceAccount `ns/name` (see
    /// [`Sim::service_account_token`]), with `ns` as its namespace.
    pub fn kubeconfig_for_service_account(
        &self,
        ns: &str,
        name: &str,
        pod: Option<&str>,
        path: &Path,
    ) -> Result<(), SimError> {
        let token = self.service_account_token(ns, name, pod)?;
        self.write_kubeconfig(path, &format!("system:serviceaccount:{ns}:{name}"), &token, ns)
    }

    /// Accept `token` as `user` (a static token, as kube-apiserver's `--token-auth-file`):
    /// users and groups RBAC bindings can name.
    pub fn register_user(&self, token: &str, user: auth::UserInfo) {
        self.core.auth.register_token(token, user);
    }

    /// Write a kubeconfig whose bearer token is `token` (registered or issued before).
    pub fn kubeconfig_with_token(&self, user_name: &str, token: &str, path: &Path) -> Result<(), SimError> {
        self.write_kubeconfig(path, user_name, token, "default")
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

/// Makes admin clients for named identities (see [`Sim::client_as`]).
#[derive(Clone)]
pub struct Identities {
    core: Arc<Core>,
    url: String,
}

impl Identities {
    /// An admin client whose bearer token (and user name) is `identity`.
    pub fn client(&self, identity: &str) -> Result<kube::Client, SimError> {
        self.core.auth.register_admin(identity);
        client_for(&self.url, identity)
    }
}

/// A kube client for a simulator URL with bearer token `token`, which the simulator must accept
/// (an identity registered through [`Sim::client_as`]/[`Sim::identities`], a registered user, or
/// an issued ServiceAccount token): any other token is answered 401.
pub fn client_for(url: &str, identity: &str) -> Result<kube::Client, SimError> {
    let uri: http::Uri = url.parse().map_err(|e| SimError::Client(format!("{e}")))?;
    let mut cfg = kube::Config::new(uri);
    cfg.default_namespace = "default".into();
    cfg.auth_info.token = Some(identity.to_string().into());
    cfg.read_timeout = None;
    cfg.connect_timeout = Some(Duration::from_secs(5));
    kube::Client::try_from(cfg).map_err(|e| SimError::Client(e.to_string()))
}

/// A kubeconfig for `server` (trusting `ca_pem` when it is `https://`) as `user` with bearer
/// `token`, default namespace `namespace`.
pub fn write_kubeconfig_full(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user: &str,
    token: &str,
    namespace: &str,
) -> Result<(), SimError> {
    use base64::Engine;
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let ca = if server.starts_with("https://") {
        format!(
            "\n    certificate-authority-data: {}",
            base64::engine::general_purpose::STANDARD.encode(ca_pem)
        )
    } else {
        String::new()
    };
    let (server, user, token, namespace) = (q(server), q(user), q(token), q(namespace));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: baton-sim\n  cluster:\n    server: {server}{ca}\ncontexts:\n- name: baton-sim\n  context:\n    cluster: baton-sim\n    user: {user}\n    namespace: {namespace}\ncurrent-context: baton-sim\nusers:\n- name: {user}\n  user:\n    token: {token}\n"
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

async fn serve(
    listener: TcpListener,
    server: Arc<server::Server>,
    tls: tokio_rustls::TlsAcceptor,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                let _ = stream.set_nodelay(true);
                let (srv, tls, sd) = (server.clone(), tls.clone(), shutdown.clone());
                tokio::spawn(async move {
                    // TLS or plain HTTP on the same port, by the connection's first byte.
                    let mut first = [0u8; 1];
                    let is_tls = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == tls::HANDSHAKE);
                    if is_tls {
                        if let Ok(s) = tls.accept(stream).await {
                            serve_connection(TokioIo::new(s), srv, sd).await;
                        }
                    } else {
                        serve_connection(TokioIo::new(stream), srv, sd).await;
                    }
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve_connection<I>(io: I, srv: Arc<server::Server>, mut sd: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| srv.clone().handle(req));
    let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let fut = conn.serve_connection(io, svc);
    tokio::select! {
        _ = fut => {}
        _ = sd.changed() => {}
    }
}
