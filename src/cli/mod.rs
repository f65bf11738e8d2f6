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
    #[command(args = unused_kube_args())]
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

/// kubectl's global flags as a command that runs its own API server has them: hidden from its
/// help and not passed on (given, [`kube_flags_given`] names them and the command refuses).
#[cfg(feature = "demo")]
fn unused_kube_args() -> Vec<clap::Arg> {
    use clap::Args;
    KubeArgs::augment_args(clap::Command::new("kube"))
        .get_arguments()
        .map(|a| a.clone().hide(true).global(false))
        .collect()
}

/// The kubectl flags given on the command line (`--kubeconfig`, `-n`, …).
#[cfg(feature = "demo")]
fn kube_flags_given(k: &KubeArgs) -> Vec<&'static str> {
    let given = [
        ("--kubeconfig", k.kubeconfig.is_some()),
        ("--context", k.context.is_some()),
        ("--cluster", k.cluster.is_some()),
        ("--user", k.user.is_some()),
        ("--namespace", k.namespace.is_some()),
        ("--as", k.as_user.is_some()),
        ("--as-group", !k.as_group.is_empty()),
        ("--request-timeout", k.request_timeout.is_some()),
    ];
    given.into_iter().filter(|(_, g)| *g).map(|(f, _)| f).collect()
}

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
                .map_err(|e| CliError::msg(format!("serialising CRD: {e}"))),
        ),
        Command::Completion(args) => {
            completion::run(args);
            ExitCode::SUCCESS
        }
        Command::Controller(args) => controller::run(&kube, args).await,
        #[cfg(feature = "demo")]
        Command::Demo(args) => match kube_flags_given(&kube).as_slice() {
            [] => crate::demo::run(args, rollout::render_now).await,
            flags => finish(Err(CliError::usage(format!(
                "baton demo runs its own API server and takes no kubeconfig or namespace: {} does not apply",
                flags.join(", ")
            )))),
        },
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
