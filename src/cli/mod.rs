//! Command-line interface: `baton controller|crds|demo|rollout …`.
pub mod agent;
pub mod listeners;
pub mod rollout;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::operator::{self, OperatorConfig};
use crate::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(name = "baton", version, about = "Batched, health-gated rollouts and zero-duplicate listener handover for Kubernetes")]
pub struct Cli {
    /// Path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the operator.
    Controller(ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Run the whole system on one machine: simulator, controller and a sample service.
    Demo(crate::demo::DemoArgs),
    /// Inspect and steer Rollouts.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Show a ListenerSet's assignments (`listeners NAME`) or reassign its orphans (`listeners recover NAME`).
    Listeners(listeners::ListenersArgs),
    /// Run the listener agent sidecar beside an application (writes listeners.json, serves /listeners).
    Agent(agent::AgentArgs),
}

#[derive(clap::Args)]
pub struct ControllerArgs {
    /// Watch only this namespace (default: all).
    #[arg(long, env = "BATON_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Reconciles running at once.
    #[arg(long, env = "BATON_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Log format.
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// Seconds a draining pod is given to hand its listeners over before it is deleted anyway.
    #[arg(long, env = "BATON_DRAIN_TIMEOUT_SECONDS", default_value_t = 30)]
    pub drain_timeout_seconds: u64,
    /// Identity for events and leader election (default: $POD_NAME or the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

/// A client from `--kubeconfig`, $KUBECONFIG, ~/.kube/config or the in-cluster environment.
pub async fn client(cli_kubeconfig: Option<&PathBuf>) -> Result<kube::Client, String> {
    let config = match cli_kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("loading kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| format!("no Kubernetes configuration found: {e}"))?,
    };
    kube::Client::try_from(config).map_err(|e| format!("building a client: {e}"))
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds => match crate::api::crds_yaml() {
            Ok(y) => {
                print!("{y}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Controller(args) => {
            telemetry::init(args.log_format);
            let client = match client(cli.kubeconfig.as_ref()).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let cfg = OperatorConfig {
                namespace: args.watch_namespace,
                concurrency: args.concurrency.max(1),
                drain_timeout: Duration::from_secs(args.drain_timeout_seconds),
                instance: args.identity.unwrap_or_else(default_identity),
            };
            operator::run(client, cfg, shutdown_signal()).await;
            ExitCode::SUCCESS
        }
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Listeners(args) => {
            let client = match client(cli.kubeconfig.as_ref()).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let ns = cli.namespace.unwrap_or_else(|| client.default_namespace().to_string());
            listeners::run(client, &ns, args).await
        }
        Command::Agent(args) => {
            let client = match client(cli.kubeconfig.as_ref()).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            agent::run(client, args).await
        }
        Command::Rollout(cmd) => {
            let client = match client(cli.kubeconfig.as_ref()).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let ns = cli.namespace.unwrap_or_else(|| client.default_namespace().to_string());
            rollout::run(client, &ns, cmd).await
        }
    }
}

pub fn default_identity() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| format!("baton-{}", std::process::id()))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
