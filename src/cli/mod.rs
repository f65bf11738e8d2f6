//! Command-line interface: `baton controller|crds|demo|rollout …`.
pub mod agent;
pub mod controller;
pub mod listeners;
pub mod rollout;
pub mod rollout_view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Batched, health-gated rollouts and zero-duplicate listener handover for Kubernetes"
)]
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
    Controller(controller::ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Run the whole system on one machine: simulator, controller and a sample service.
    #[cfg(feature = "demo")]
    Demo(crate::demo::DemoArgs),
    /// Inspect and steer Rollouts.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Show a ListenerSet's assignments (`listeners NAME`) or reassign its orphans (`listeners recover NAME`).
    Listeners(listeners::ListenersArgs),
    /// Run the listener agent sidecar beside an application (writes listeners.json, serves /listeners).
    Agent(agent::AgentArgs),
}

/// A client from `--kubeconfig`, $KUBECONFIG, ~/.kube/config or the in-cluster environment.
pub async fn client(cli_kubeconfig: Option<&PathBuf>) -> Result<kube::Client, String> {
    let config = config(cli_kubeconfig).await?;
    kube::Client::try_from(config).map_err(|e| format!("building a client: {e}"))
}

/// The client configuration from `--kubeconfig`, $KUBECONFIG, ~/.kube/config or in-cluster.
pub async fn config(cli_kubeconfig: Option<&PathBuf>) -> Result<kube::Config, String> {
    let config = match cli_kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("loading kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration found: {e}"))?,
    };
    Ok(config)
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
        Command::Controller(args) => controller::run(cli.kubeconfig.as_ref(), args).await,
        #[cfg(feature = "demo")]
        Command::Demo(args) => crate::demo::run(args, rollout::render).await,
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
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("baton-{}", std::process::id()))
}

pub use crate::operator::shutdown_signal;
