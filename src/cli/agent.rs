//! `baton agent`: the listener sidecar (see `crate::agent::sidecar`).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::agent::sidecar::{self, SidecarConfig};
use crate::agent::{AgentConfig, SetFilter};

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// ListenerSets to serve (repeatable; default: every set of the namespace).
    #[arg(long = "listenerset", env = "BATON_LISTENERSETS", value_delimiter = ',')]
    pub listenersets: Vec<String>,
    /// Where to write the listeners this pod must run.
    #[arg(long, env = "BATON_LISTENERS_FILE", default_value = "/var/run/baton/listeners.json")]
    pub file: PathBuf,
    /// Where to serve GET /listeners and POST /ack (keep it on localhost).
    #[arg(long, env = "BATON_AGENT_LISTEN", default_value = "127.0.0.1:8686")]
    pub listen: SocketAddr,
    /// Release a stopped listener after this many seconds even if the app did not POST /ack.
    #[arg(long, env = "BATON_ACK_TIMEOUT_SECONDS", default_value_t = 5)]
    pub ack_timeout_seconds: u64,
    /// Seconds before a Lease could expire at which listeners are stopped when renewals fail
    /// (default: a fifth of the lease duration, at least 0.5 s).
    #[arg(long, env = "BATON_SAFETY_MARGIN_SECONDS")]
    pub safety_margin_seconds: Option<f64>,
    /// This pod's name (Downward API: metadata.name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: String,
    /// This pod's namespace (Downward API: metadata.namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub pod_namespace: String,
    /// This pod's uid (Downward API: metadata.uid).
    #[arg(long, env = "POD_UID")]
    pub pod_uid: String,
    /// Log format.
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = crate::telemetry::LogFormat::Auto)]
    pub log_format: crate::telemetry::LogFormat,
}

pub async fn run(client: kube::Client, args: AgentArgs) -> ExitCode {
    crate::telemetry::init(args.log_format);
    let mut agent = AgentConfig::new(args.pod_namespace, args.pod_name, args.pod_uid);
    if !args.listenersets.is_empty() {
        agent.sets = SetFilter::Names(args.listenersets);
    }
    agent.safety_margin = args.safety_margin_seconds.map(Duration::from_secs_f64);
    let cfg = SidecarConfig {
        agent,
        file: args.file,
        listen: args.listen,
        ack_timeout: Duration::from_secs(args.ack_timeout_seconds),
    };
    match sidecar::run(client, cfg, crate::cli::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
