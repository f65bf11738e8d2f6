//! Command-line interface: `baton controller|crds|demo|rollout|listeners|agent|completion …`,
//! also run as the kubectl plugin `kubectl baton …` (installed as `kubectl-baton`).
pub mod agent;
pub mod completion;
pub mod controller;
pub mod get;
pub mod listeners;
pub mod output;
pub mod rollout;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use crate::session::{self, config, session, CliError, KubeArgs, Session};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Batched, health-gated rollouts and zero-duplicate listener handover for Kubernetes",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes ([`session::exit`]), as `baton --help` lists them.
pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 failed or rolled back (or an action refused), 2 timeout, \
3 still in progress, 4 not found, 5 API server error or unreachable (or kubeconfig), 64 usage error";

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
    /// Show a ListenerSet's assignments (`listeners NAME`), list sets, or reassign orphans.
    Listeners(listeners::ListenersArgs),
    /// Run the listener agent sidecar beside an application (writes listeners.json, serves /listeners).
    Agent(agent::AgentArgs),
    /// Serve a live web view of Rollouts and ListenerSets, with their actions, on 127.0.0.1:3100.
    Dashboard(crate::dashboard::DashboardArgs),
    /// Print a shell completion script: `source <(baton completion bash)`.
    Completion(completion::CompletionArgs),
}

pub use crate::stdout::emit;

/// The client for the agent (the same flags as every command, kube-rs's timeouts unless
/// `--request-timeout` says otherwise: its watches are long and quiet).
pub async fn client(args: &KubeArgs) -> Result<kube::Client, String> {
    let config = session::config(args).await.map_err(|e| e.message)?;
    kube::Client::try_from(config).map_err(|e| format!("error: building a client: {e}"))
}

fn finish(result: Result<ExitCode, CliError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.code)
        }
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let kube = cli.kube;
    match cli.command {
        Command::Crds => finish(
            crate::api::crds_yaml()
                .map(|y| {
                    emit(&y);
                    ExitCode::SUCCESS
                })
                .map_err(CliError::msg),
        ),
        Command::Completion(args) => {
            completion::run(args);
            ExitCode::SUCCESS
        }
        Command::Controller(args) => controller::run(&kube, args).await,
        #[cfg(feature = "demo")]
        Command::Demo(args) => crate::demo::run(args, rollout::render_now).await,
        Command::Listeners(args) => finish(async { listeners::execute(&session(&kube).await?, args).await }.await),
        Command::Agent(args) => match client(&kube).await {
            Ok(c) => agent::run(c, args).await,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(session::exit::API)
            }
        },
        Command::Dashboard(args) => crate::dashboard::run(&kube, args).await,
        // Offline: no client, so no kubeconfig needed.
        Command::Rollout(rollout::RolloutCommand::Lint(args)) => {
            finish(rollout::lint::run(kube.namespace.as_deref(), args).await)
        }
        Command::Rollout(cmd) => finish(async { rollout::execute(&session(&kube).await?, cmd).await }.await),
    }
}

pub fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("baton-{}", std::process::id()))
}

pub use crate::operator::shutdown_signal;
