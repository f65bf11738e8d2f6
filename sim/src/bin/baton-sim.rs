//! `baton-sim serve`: run the simulator as a process until SIGTERM/SIGINT.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use baton_sim::{FaultRule, KubeletConfig, Sim, SimConfig};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "baton-sim",
    version,
    about = "An in-process Kubernetes API server simulator with a simulated kubelet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server, write a kubeconfig, print the address and path, run until signalled.
    Serve(ServeArgs),
    /// Attach a running OS process to a pod of a running simulator: the simulated kubelet sends
    /// it SIGTERM when the pod is deleted gracefully, keeps the pod Terminating until it exits,
    /// and sends SIGKILL when the grace period ends. A force delete does not signal it.
    Attach(AttachArgs),
    /// Write a kubeconfig authenticated as a ServiceAccount of a running simulator, with a
    /// token from TokenRequest (bound to a pod with --pod, as a projected token is), so a
    /// process can run with exactly the permissions RBAC gives that ServiceAccount.
    Kubeconfig(KubeconfigArgs),
}

#[derive(clap::Args)]
struct KubeconfigArgs {
    /// The simulator's (admin) kubeconfig, as `serve` wrote it; default: $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Namespace of the ServiceAccount (also the new kubeconfig's namespace).
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// The ServiceAccount.
    #[arg(long)]
    service_account: String,
    /// Bind the token to this pod (of the same namespace, running as the ServiceAccount).
    #[arg(long)]
    pod: Option<String>,
    /// Lifetime of the token in seconds (at least 600).
    #[arg(long, default_value_t = 3600)]
    duration: i64,
    /// Where to write the kubeconfig.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct AttachArgs {
    /// The simulator's kubeconfig (as `serve` wrote it); default: $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// The pod's name.
    #[arg(long)]
    pod: String,
    /// The process id to attach.
    #[arg(long)]
    pid: u32,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Where to write the kubeconfig (default: a temporary directory).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubelet: milliseconds from creation to binding.
    #[arg(long, default_value_t = 10)]
    schedule_delay_ms: u64,
    /// Kubelet: milliseconds from binding to Running.
    #[arg(long, default_value_t = 100)]
    start_delay_ms: u64,
    /// Kubelet: milliseconds from Running to Ready.
    #[arg(long, default_value_t = 200)]
    ready_delay_ms: u64,
    /// Kubelet: milliseconds between restarts of a crash-looping container.
    #[arg(long, default_value_t = 500)]
    crash_interval_ms: u64,
    /// Fault injection: latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fault injection: fraction of requests (0–1) answered with an error code.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fault injection: the codes used for injected errors (comma-separated: 409,429,500,503).
    #[arg(long, value_delimiter = ',', default_value = "500")]
    error_codes: Vec<u16>,
    /// Fault injection: every watch event reaches its watchers this many milliseconds after its
    /// write, in order (a watch cache that lags behind the store).
    #[arg(long, default_value_t = 0)]
    watch_delay_ms: u64,
    /// Watch events kept for resuming watches (older resourceVersions get 410 Gone).
    #[arg(long, default_value_t = 20_000)]
    history: usize,
    /// API Priority and Fairness: requests per second each user may make (users in
    /// system:masters are exempt); above it, 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = 0.0)]
    apf_user_qps: f64,
    /// API Priority and Fairness: requests each user may make at once (default: the QPS, at
    /// least 1).
    #[arg(long)]
    apf_user_burst: Option<u32>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Attach(a) => return attach(a).await,
        Command::Kubeconfig(a) => return service_account_kubeconfig(a).await,
    };
    if !(0.0..=1.0).contains(&args.error_rate) {
        eprintln!("error: --error-rate must be between 0 and 1, got {}", args.error_rate);
        return ExitCode::from(2);
    }
    if let Some(bad) = args.error_codes.iter().find(|c| ![409, 429, 500, 503].contains(*c)) {
        eprintln!("error: --error-codes accepts 409, 429, 500 and 503, got {bad}");
        return ExitCode::from(2);
    }
    if !args.apf_user_qps.is_finite() || args.apf_user_qps < 0.0 {
        eprintln!("error: --apf-user-qps must be 0 or more, got {}", args.apf_user_qps);
        return ExitCode::from(2);
    }
    if args.apf_user_burst == Some(0) {
        eprintln!("error: --apf-user-burst must be at least 1");
        return ExitCode::from(2);
    }
    let flow_limit = (args.apf_user_qps > 0.0).then(|| baton_sim::server::FlowLimit {
        qps: args.apf_user_qps,
        burst: args
            .apf_user_burst
            .unwrap_or_else(|| (args.apf_user_qps.ceil() as u32).max(1)),
    });
    let config = SimConfig {
        flow_limit,
        addr: args.addr,
        kubeconfig: args.kubeconfig.clone(),
        kubelet: KubeletConfig {
            schedule_delay: Duration::from_millis(args.schedule_delay_ms),
            start_delay: Duration::from_millis(args.start_delay_ms),
            ready_delay: Duration::from_millis(args.ready_delay_ms),
            crash_interval: Duration::from_millis(args.crash_interval_ms),
            ..KubeletConfig::default()
        },
        history: args.history,
        ..SimConfig::default()
    };
    let sim = match Sim::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.latency_ms > 0 || args.error_rate > 0.0 || args.watch_delay_ms > 0 {
        sim.faults.add_rule(FaultRule {
            latency: Duration::from_millis(args.latency_ms),
            error_rate: args.error_rate,
            error_codes: args.error_codes.clone(),
            watch_delay: Duration::from_millis(args.watch_delay_ms),
            ..FaultRule::default()
        });
    }
    // The URL its kubeconfig names: the same port also answers plain HTTP, but TLS is what a
    // client following the banner should use.
    println!(
        "baton-sim listening on {} kubeconfig={}",
        sim.https_url(),
        sim.kubeconfig_path().display()
    );
    wait_for_signal().await;
    sim.stop();
    ExitCode::SUCCESS
}

async fn attach(a: AttachArgs) -> ExitCode {
    let result = async {
        let (client, _) = admin_client(&a.kubeconfig).await?;
        let uri = format!(
            "/baton-sim/attach?namespace={}&pod={}&pid={}",
            a.namespace, a.pod, a.pid
        );
        let req = http::Request::post(uri).body(Vec::new()).map_err(|e| e.to_string())?;
        client.request_text(req).await.map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(_) => {
            println!("attached process {} to pod {}/{}", a.pid, a.namespace, a.pod);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The API server's message for an API error, else the error.
fn api_err(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message,
        other => other.to_string(),
    }
}

async fn admin_client(path: &PathBuf) -> Result<(kube::Client, kube::config::Kubeconfig), String> {
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc.clone(), &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok((kube::Client::try_from(cfg).map_err(|e| e.to_string())?, kc))
}

async fn service_account_kubeconfig(a: KubeconfigArgs) -> ExitCode {
    use base64::Engine;
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
    let result = async {
        let (client, kc) = admin_client(&a.kubeconfig).await?;
        let mut spec = serde_json::json!({"expirationSeconds": a.duration});
        if let Some(pod) = &a.pod {
            let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &a.namespace);
            let p = pods.get(pod).await.map_err(api_err)?;
            spec["boundObjectRef"] =
                serde_json::json!({"kind": "Pod", "apiVersion": "v1", "name": pod, "uid": p.metadata.uid});
        }
        let req: TokenRequest = serde_json::from_value(serde_json::json!({"spec": spec})).map_err(|e| e.to_string())?;
        let sas: kube::Api<ServiceAccount> = kube::Api::namespaced(client, &a.namespace);
        let tr = sas
            .create_token_request(&a.service_account, &Default::default(), &req)
            .await
            .map_err(api_err)?;
        let token = tr.status.map(|s| s.token).ok_or("the TokenRequest has no status")?;
        let cluster = kc
            .clusters
            .first()
            .and_then(|c| c.cluster.clone())
            .ok_or("the kubeconfig names no cluster")?;
        let server = cluster.server.ok_or("the kubeconfig's cluster has no server")?;
        let ca = match cluster.certificate_authority_data {
            Some(d) => base64::engine::general_purpose::STANDARD
                .decode(d)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| e.to_string())?,
            None => String::new(),
        };
        let user = format!("system:serviceaccount:{}:{}", a.namespace, a.service_account);
        baton_sim::write_kubeconfig_full(&a.out, &server, &ca, &user, &token, &a.namespace).map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(()) => {
            println!(
                "wrote {} for system:serviceaccount:{}:{}",
                a.out.display(),
                a.namespace,
                a.service_account
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
