//! `baton-cluster`: a real Kubernetes control plane on this machine.
//!
//! * `baton-cluster build` — build (or find cached) etcd, kube-apiserver, kube-controller-manager,
//!   kube-scheduler and kwok; print their directory.
//! * `baton-cluster up` — start them in the foreground (`make cluster`), print how to use the
//!   cluster, stop everything on Ctrl-C or SIGTERM.
//! * `baton-cluster exec -- CMD…` — start them, run CMD with `BATON_CLUSTER_DIR` and
//!   `BATON_TEST_CLUSTER=real` set (the test tier), stop them, exit with CMD's code.
//!
//! Both `up` and `exec` start again, every second, a component that exited meanwhile (and
//! rewrite `DIR/pids`, which names each component's process).
use std::path::PathBuf;
use std::process::ExitCode;

use baton_cluster::{binaries, ControlPlane, Options, DIR_ENV};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "baton-cluster", about = "A real Kubernetes control plane on this machine")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct Start {
    /// Directory for certificates, etcd's data, logs and the kubeconfig (emptied first).
    #[arg(long, default_value = "target/cluster")]
    dir: PathBuf,
    /// Fake nodes (kwok).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// etcd without fsync: faster, and what a test tier may choose; not what production does.
    #[arg(long)]
    no_fsync: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the programs (or find them cached) and print their directory.
    Build,
    /// Start the control plane in the foreground until Ctrl-C.
    Up(Start),
    /// Start the control plane, run a command against it, stop it.
    Exec {
        #[command(flatten)]
        start: Start,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

// One thread: the components die with the thread that started them (PR_SET_PDEATHSIG).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baton-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Cmd) -> Result<ExitCode, baton_cluster::Error> {
    let bins = binaries::ensure(&mut std::io::stderr())?;
    match cmd {
        Cmd::Build => {
            println!("{}", bins.dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Up(start) => {
            let cp = start_plane(&bins, &start).await?;
            let kc = std::fs::canonicalize(&cp.kubeconfig).unwrap_or(cp.kubeconfig.clone());
            println!(
                "control plane ready: Kubernetes {} at {} (etcd {}, {} kwok nodes)\n\
                 \n  export KUBECONFIG={}\n  kubectl get nodes\n  kubectl apply -f crds/\n  \
                 cargo run --bin baton -- controller\n\n\
                 logs in {}/logs; Ctrl-C stops everything",
                binaries::KUBERNETES,
                cp.server,
                binaries::ETCD,
                start.nodes,
                kc.display(),
                cp.dir.display()
            );
            let mut cp = cp;
            let outcome = watch_until_signal(&mut cp).await;
            eprintln!("stopping the control plane");
            cp.stop();
            outcome.map(|_| ExitCode::SUCCESS)
        }
        Cmd::Exec { start, command } => {
            let cp = start_plane(&bins, &start).await?;
            let dir = std::fs::canonicalize(&cp.dir).unwrap_or(cp.dir.clone());
            let child = tokio::process::Command::new(&command[0])
                .args(&command[1..])
                .env(DIR_ENV, &dir)
                .env("BATON_TEST_CLUSTER", "real")
                .env("BATON_CLUSTER_BIN", &bins.dir)
                .status();
            let status = supervise_until(&cp, child).await;
            cp.stop();
            let status = status?.map_err(|e| baton_cluster::Error::Start(format!("{}: {e}", command[0])))?;
            Ok(ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8))
        }
    }
}

async fn start_plane(bins: &binaries::Binaries, start: &Start) -> Result<ControlPlane, baton_cluster::Error> {
    let mut opts = Options::new(start.dir.clone());
    opts.nodes = start.nodes;
    opts.fsync = !start.no_fsync;
    let t = std::time::Instant::now();
    eprintln!(
        "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok in {}",
        start.dir.display()
    );
    let cp = ControlPlane::start(bins, &opts).await?;
    eprintln!("every component healthy after {:.1?}", t.elapsed());
    Ok(cp)
}

/// Until SIGINT or SIGTERM, restarting what exits meanwhile.
async fn watch_until_signal(cp: &mut ControlPlane) -> Result<(), baton_cluster::Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| baton_cluster::Error::Start(e.to_string()))?;
    let stop = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    supervise_until(cp, stop).await
}

/// Run `until`, restarting every second what exited meanwhile (and saying so), as a kubelet
/// restarts a control plane's static pods.
async fn supervise_until<T>(
    cp: &ControlPlane,
    until: impl std::future::Future<Output = T>,
) -> Result<T, baton_cluster::Error> {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tokio::pin!(until);
    loop {
        tokio::select! {
            out = &mut until => return Ok(out),
            _ = tick.tick() => {
                for r in cp.supervise()? {
                    eprintln!("baton-cluster: {r} exited; started again");
                }
            }
        }
    }
}
