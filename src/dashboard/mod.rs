//! `baton dashboard`: a live web view of Rollouts and ListenerSets, with the actions an operator
//! needs, served by the binary itself (like `kubectl argo rollouts dashboard`).
//!
//! * **No server-side state**: watch caches filled with the user's own credentials (kubeconfig,
//!   `--context`, `--as` …, see [`crate::session`]), rebuilt on start. In a cluster it runs
//!   under its own ServiceAccount (the chart's `dashboard.enabled`).
//! * **Pages** ([`render`]) are rendered on the server; a page's live stream
//!   (`/live/…`, server-sent events) sends its fragment again whenever a watch saw a change that
//!   alters it.
//! * **Actions** ([`act`]) are POSTs that call the CLI's own code ([`crate::actions`]), so they
//!   judge, refuse and write exactly as `baton rollout …` does, and the API server's refusal
//!   (RBAC's 403) reaches the page in kubectl's words.
//! * **Safe by default** ([`guard`]): loopback only unless `--address` says otherwise; Host,
//!   Origin and a per-process CSRF token checked; a Content-Security-Policy without inline
//!   script; everything from the cluster escaped.
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tracing::info;

use crate::session::{KubeArgs, Session};
use crate::telemetry::LogFormat;

pub mod act;
pub mod caches;
pub mod guard;
pub mod render;
mod routes;

pub use caches::Caches;

/// The default address: loopback, the port `kubectl argo rollouts dashboard` does not use.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:3100";

#[derive(clap::Args, Debug, Clone)]
pub struct DashboardArgs {
    /// Where to serve (port 0: any free port). Loopback by default: anyone who can reach the
    /// address acts with your credentials.
    #[arg(long, default_value = DEFAULT_ADDRESS)]
    pub address: SocketAddr,
    /// Show the Rollouts and ListenerSets of every namespace (default: -n, else the context's
    /// namespace).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Also answer requests for this host name (behind an ingress or a Service; repeatable;
    /// `*` for any, which gives up the DNS-rebinding protection).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Show no actions and refuse them.
    #[arg(long)]
    pub read_only: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

/// What the handlers share.
pub(crate) struct Inner {
    pub session: Session,
    pub caches: Caches,
    pub csrf: String,
    pub hosts: guard::Hosts,
    pub read_only: bool,
    /// "namespace X" or "all namespaces".
    pub scope: String,
}

/// A running dashboard's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Dashboard(pub(crate) Arc<Inner>);

/// How long a first page waits for the watches' first lists.
const FIRST_LIST: Duration = Duration::from_secs(10);

/// A dashboard being served; dropping it stops the server and the watches.
pub struct Served {
    pub address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    _watches: caches::Watches,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Served {
    /// Stop serving and watching, and wait until every watch has ended (nothing is left
    /// talking to the API server).
    pub async fn stop(mut self) {
        self.server.abort();
        self._watches.stop().await;
    }

    /// The URL to open.
    pub fn url(&self) -> String {
        let host = match self.address.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}/", self.address.port())
    }
}

/// Bind `address` and serve the dashboard of `session`'s cluster (in `namespace`, or all) until
/// the returned [`Served`] is dropped.
pub async fn serve(
    session: Session,
    namespace: Option<String>,
    address: SocketAddr,
    allowed_hosts: &[String],
    read_only: bool,
) -> std::io::Result<Served> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let (caches, watches) = Caches::start(&session, namespace.clone());
    let scope = match &namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "all namespaces".to_string(),
    };
    let dashboard = Dashboard(Arc::new(Inner {
        session,
        caches,
        csrf: guard::new_token(),
        hosts: guard::Hosts::new(bound, allowed_hosts),
        read_only,
        scope,
    }));
    let app = router(dashboard);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the dashboard's server stopped");
        }
    });
    Ok(Served {
        address: bound,
        server,
        _watches: watches,
    })
}

fn router(d: Dashboard) -> Router {
    Router::new()
        .route("/", get(routes::list_page))
        .route("/rollouts/{ns}/{name}", get(routes::rollout_page))
        .route("/listenersets/{ns}/{name}", get(routes::set_page))
        .route("/live/", get(routes::list_live))
        .route("/live/rollouts/{ns}/{name}", get(routes::rollout_live))
        .route("/live/listenersets/{ns}/{name}", get(routes::set_live))
        .route("/api/rollouts/{ns}/{name}/{action}", post(act::rollout_action))
        .route("/static/app.js", get(routes::script))
        .route("/static/app.css", get(routes::style))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(routes::not_found)
        .layer(middleware::from_fn_with_state(d.clone(), protect))
        .with_state(d)
}

/// [`guard::check`] before every handler; the security headers on every answer.
async fn protect(State(d): State<Dashboard>, req: Request, next: Next) -> Response {
    let refused = guard::check(req.method(), req.uri().path(), req.headers(), &d.0.hosts, &d.0.csrf);
    let mut resp = match refused {
        Some((code, message)) if req.uri().path().starts_with("/api/") => act::error(code, message),
        Some((code, message)) => (code, message).into_response(),
        None => next.run(req).await,
    };
    guard::secure(resp.headers_mut());
    resp
}

/// A plain-text answer.
pub(crate) fn text(code: StatusCode, body: String) -> Response {
    let mut r = (code, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `baton dashboard`: serve until Ctrl-C/SIGTERM.
pub async fn run(kube: &KubeArgs, args: DashboardArgs) -> ExitCode {
    crate::telemetry::init(args.log_format);
    let session = match crate::session::session(kube).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(e.code);
        }
    };
    let namespace = (!args.all_namespaces).then(|| session.namespace.clone());
    let served = match serve(session, namespace, args.address, &args.allowed_hosts, args.read_only).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: serving the dashboard on {}: {e}", args.address);
            return ExitCode::FAILURE;
        }
    };
    info!(bound = %served.address, url = %served.url(), "serving the dashboard");
    crate::stdout::emit(&format!("baton dashboard: {} (Ctrl-C to stop)\n", served.url()));
    crate::operator::shutdown_signal().await;
    drop(served);
    ExitCode::SUCCESS
}
