//! `baton controller`: the operator process — caches, probes and metrics, leader election, and
//! the controllers while leading.
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicBool;

use kube::Client;
use tracing::{error, info};

use crate::api::rollout::parse_duration;
use crate::election::{self, ElectionClient, ElectionConfig, ElectionStatus, Leader, Leadership};
use crate::metrics::Metrics;
use crate::operator::{startup, OperatorConfig, Operators};
use crate::telemetry::{self, LogFormat};

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Watch only these namespaces (comma-separated, or the flag repeated; default: all). Each
    /// is watched on its own, as controller-runtime's multi-namespace cache does: RBAC then
    /// needs a Role in each, and nothing cluster-wide.
    #[arg(long, env = "BATON_WATCH_NAMESPACE", value_delimiter = ',')]
    pub watch_namespace: Vec<String>,
    /// Run leader election (several replicas, one active).
    #[arg(long, env = "BATON_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease (default: baton-controller, or
    /// baton-controller-SHARD with --shard).
    #[arg(long, env = "BATON_LEASE_NAME")]
    pub lease_name: Option<String>,
    /// Reconcile only the Rollouts and ListenerSets this label selector matches (e.g.
    /// `baton.dev/shard=a`), and so only their pods and Leases: one shard of several
    /// controllers. Each shard needs a leader Lease of its own (--shard or --lease-name).
    #[arg(long, env = "BATON_SELECTOR")]
    pub selector: Option<String>,
    /// This shard's name: names its leader Lease (baton-controller-SHARD).
    #[arg(long, env = "BATON_SHARD")]
    pub shard: Option<String>,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else the kubeconfig's namespace).
    #[arg(long, env = "BATON_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Lease duration (client-go default 15s).
    #[arg(long, env = "BATON_LEASE_DURATION", default_value = "15s")]
    pub lease_duration: String,
    /// How long the leader keeps trying to renew before it stops (default 10s).
    #[arg(long, env = "BATON_RENEW_DEADLINE", default_value = "10s")]
    pub renew_deadline: String,
    /// Time between acquisition and renewal attempts (default 2s).
    #[arg(long, env = "BATON_RETRY_PERIOD", default_value = "2s")]
    pub retry_period: String,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "BATON_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Reconciles running at once, per controller.
    #[arg(long, env = "BATON_CONCURRENCY", default_value_t = crate::operator::DEFAULT_CONCURRENCY)]
    pub concurrency: u16,
    /// Log format (json in a cluster, pretty on a terminal).
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// Seconds a draining pod is given to hand its listeners over before it is deleted anyway.
    #[arg(long, env = "BATON_DRAIN_TIMEOUT_SECONDS", default_value_t = crate::rollout::planner::DEFAULT_DRAIN_TIMEOUT.as_secs())]
    pub drain_timeout_seconds: u64,
    /// Identity for events and leader election (default: $POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Read Secrets (ListenerSets' listenersFrom.secretRef and configRef). Off: no Secret is
    /// watched and sets that reference one are reported; RBAC then needs no Secret access.
    #[arg(long, env = "BATON_READ_SECRETS", default_value_t = true, action = clap::ArgAction::Set)]
    pub read_secrets: bool,
    /// Read Secrets only in these namespaces (comma-separated; default: every watched one).
    #[arg(long, env = "BATON_SECRET_NAMESPACES", value_delimiter = ',')]
    pub secret_namespaces: Vec<String>,
    /// Requests per second to the API server, on average (client-side token bucket; 0 or
    /// negative: no client-side limit).
    #[arg(long, env = "BATON_KUBE_API_QPS", default_value_t = crate::throttle::DEFAULT_QPS, allow_negative_numbers = true)]
    pub kube_api_qps: f32,
    /// Seconds a notification is retried (with backoff from 1 s doubling to 60 s) before it is
    /// dropped.
    #[arg(long, env = "BATON_NOTIFICATION_RETRY_SECONDS", default_value_t = crate::webhooks::DEFAULT_RETRY_FOR.as_secs())]
    pub notification_retry_seconds: u64,
    /// Requests the token bucket lets through at once.
    #[arg(long, env = "BATON_KUBE_API_BURST", default_value_t = crate::throttle::DEFAULT_BURST)]
    pub kube_api_burst: u32,
    /// Requests per second of the ListenerSet controller (a client and token bucket of its own:
    /// a set of N listeners is N Leases to write; 0 or negative: no client-side limit).
    #[arg(long, env = "BATON_LISTENER_API_QPS", default_value_t = crate::throttle::DEFAULT_LISTENER_QPS, allow_negative_numbers = true)]
    pub listener_api_qps: f32,
    /// Requests the ListenerSet controller's token bucket lets through at once.
    #[arg(long, env = "BATON_LISTENER_API_BURST", default_value_t = crate::throttle::DEFAULT_LISTENER_BURST)]
    pub listener_api_burst: u32,
}

/// The leader Lease of an unsharded controller.
pub const DEFAULT_LEASE_NAME: &str = "baton-controller";

impl ControllerArgs {
    /// The leader-election Lease: --lease-name, else one per shard; a selector without either
    /// would share the unsharded controller's Lease, so it is refused.
    fn lease_name(&self) -> Result<String, String> {
        match (&self.lease_name, &self.shard, &self.selector) {
            (Some(name), _, _) => Ok(name.clone()),
            (None, Some(shard), _) => Ok(format!("{DEFAULT_LEASE_NAME}-{shard}")),
            (None, None, Some(_)) if self.leader_elect => Err(
                "--selector needs --shard NAME (or --lease-name): each shard elects its leader on a Lease of its own"
                    .into(),
            ),
            (None, None, _) => Ok(DEFAULT_LEASE_NAME.into()),
        }
    }

    /// The label selector, if one was given (an empty one selects everything).
    fn selector(&self) -> Option<String> {
        self.selector
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The namespaces to watch, each named once (none: all), or what is wrong with one.
    fn watched(&self) -> Result<Vec<String>, String> {
        let mut namespaces: Vec<String> = Vec::new();
        for n in self.watch_namespace.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            namespace_name(n).map_err(|why| format!("--watch-namespace: {n:?} is not a namespace name: {why}"))?;
            if !namespaces.iter().any(|m| m == n) {
                namespaces.push(n.to_string());
            }
        }
        Ok(namespaces)
    }

    /// The Secret access the flags ask for.
    fn secret_access(&self) -> crate::listeners::controller::SecretAccess {
        use crate::listeners::controller::SecretAccess;
        let listed: Vec<String> = self
            .secret_namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        match (self.read_secrets, listed.is_empty()) {
            (false, _) => SecretAccess::Off,
            (true, true) => SecretAccess::All,
            (true, false) => SecretAccess::Namespaces(listed),
        }
    }
}

/// A namespace name is a DNS-1123 label, as kube-apiserver checks it.
fn namespace_name(n: &str) -> Result<(), &'static str> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if n.len() > 63 {
        Err("at most 63 characters")
    } else if !n.chars().all(|c| alnum(c) || c == '-') {
        Err("only lowercase letters, digits and '-'")
    } else if !n.starts_with(alnum) || !n.ends_with(alnum) {
        Err("must start and end with a lowercase letter or digit")
    } else {
        Ok(())
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    error!("{msg}");
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// The leader election settings the flags ask for, checked when election is on.
fn election_config(args: &ControllerArgs, default_ns: String, identity: String) -> Result<ElectionConfig, String> {
    let durations = (
        parse_duration(&args.lease_duration),
        parse_duration(&args.renew_deadline),
        parse_duration(&args.retry_period),
    );
    let (lease_duration, renew_deadline, retry_period) = match durations {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) => return Err(format!("--lease-duration: {e}")),
        (_, Err(e), _) => return Err(format!("--renew-deadline: {e}")),
        (_, _, Err(e)) => return Err(format!("--retry-period: {e}")),
    };
    let election_cfg = ElectionConfig {
        lease_duration,
        renew_deadline,
        retry_period,
        ..ElectionConfig::new(
            args.lease_name()?,
            args.lease_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or(default_ns),
            identity,
        )
    };
    if args.leader_elect {
        election_cfg.validate().map_err(|e| format!("leader election: {e}"))?;
    }
    Ok(election_cfg)
}

/// The clients: the Rollout controller's (behind `--kube-api-qps`), the ListenerSet controller's
/// (behind `--listener-api-qps`) and leader election's own (built on the election's thread).
struct Clients {
    rollouts: Client,
    listeners: Client,
    election: ElectionClient,
}

fn clients(args: &ControllerArgs, config: kube::Config, metrics: &Arc<Metrics>) -> Result<Clients, String> {
    let limits = crate::throttle::Limits {
        qps: args.kube_api_qps,
        burst: args.kube_api_burst,
    };
    limits.bucket().map_err(|e| e.to_string())?;
    let listener_limits = crate::throttle::Limits {
        qps: args.listener_api_qps,
        burst: args.listener_api_burst,
    };
    listener_limits
        .bucket()
        .map_err(|e| e.to_string().replace("--kube-api", "--listener-api"))?;
    let listeners = crate::throttle::client(config.clone(), metrics.clone(), listener_limits)
        .map_err(|e| format!("building a client: {e}"))?;
    let rollouts = crate::throttle::client(config.clone(), metrics.clone(), limits)
        .map_err(|e| format!("building a client: {e}"))?;
    // Leader election has a client of its own (as kube-controller-manager's does), outside the
    // token bucket: renewals never queue behind a mass update's writes and miss the renew
    // deadline, and its traffic is bounded anyway (about one request per --retry-period). It is
    // built on the election's thread, so that its requests need nothing from this runtime,
    // which the controllers can keep busy.
    let unlimited = crate::throttle::Limits { qps: -1.0, burst: 0 };
    let metrics = metrics.clone();
    let election = ElectionClient::build(move || crate::throttle::client(config, metrics, unlimited));
    Ok(Clients {
        rollouts,
        listeners,
        election,
    })
}

pub async fn run(kube: &super::KubeArgs, args: ControllerArgs) -> ExitCode {
    telemetry::init(args.log_format);
    tokio::spawn(crate::malloc::trim_when_quiet());
    let metrics = Arc::new(Metrics::default());
    let config = match super::config(kube).await {
        Ok(c) => c,
        Err(e) => {
            error!("{e}");
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let namespaces = match args.watched() {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let default_ns = config.default_namespace.clone();
    let identity = args.identity.clone().unwrap_or_else(super::default_identity);
    let election_cfg = match election_config(&args, default_ns, identity.clone()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let Clients {
        rollouts: client,
        listeners: listener_client,
        election: election_client,
    } = match clients(&args, config, &metrics) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    // Probes first: /healthz answers (and /readyz says not ready) while the CRD check retries.
    let ready = Arc::new(AtomicBool::new(false));
    if let Err(e) = crate::probes::serve(args.metrics_addr, metrics.clone(), ready.clone()).await {
        return fail(format!("binding {}: {e}", args.metrics_addr));
    }
    if let Err(e) = startup::check_crds(&client, &namespaces, startup::STARTUP_PATIENCE).await {
        return fail(e);
    }
    let selector = args.selector();
    if let Some(s) = &selector {
        if let Err(e) = startup::check_selector(&client, &namespaces, s).await {
            return fail(e);
        }
        info!(selector = %s, shard = args.shard.as_deref().unwrap_or(""), "reconciling one shard");
    }
    let cfg = OperatorConfig {
        namespace: None,
        concurrency: args.concurrency.max(1),
        drain_timeout: Duration::from_secs(args.drain_timeout_seconds),
        instance: identity,
        secrets: args.secret_access(),
        selector,
        notify: crate::webhooks::Config {
            retry_for: Duration::from_secs(args.notification_retry_seconds),
            ..Default::default()
        },
    };
    // From here on SIGTERM is a graceful shutdown, whenever it comes: the handler is installed
    // before /readyz can say ready (until here it ends the process, which holds nothing yet).
    let shutdown = super::shutdown_signal();
    let operator = Operators::start(client, listener_client, cfg, &namespaces, metrics.clone());
    operator.publish_synced(ready);
    if !args.leader_elect {
        metrics.leader.set(1);
        operator.lead(shutdown).await;
        return ExitCode::SUCCESS;
    }
    run_elected(operator, election_client, election_cfg, metrics, shutdown).await
}

/// Lead while elected: the leader metrics follow the election's status.
async fn run_elected(
    operator: Operators,
    client: ElectionClient,
    cfg: ElectionConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> ExitCode {
    let (status_tx, mut status_rx) = tokio::sync::watch::channel(ElectionStatus::default());
    let lease = cfg.lease_name.clone();
    metrics.set_leader(&lease, false);
    tokio::spawn(async move {
        let mut seen = 0;
        while status_rx.changed().await.is_ok() {
            let st = status_rx.borrow_and_update().clone();
            metrics.set_leader(&lease, st.leadership == Leadership::Leading);
            while seen < st.acquisitions {
                metrics.leader_transitions.inc();
                seen += 1;
            }
        }
    });
    // The controllers are bound to leadership, not to the process: `leader.stop` fires when the
    // Lease is lost or shutdown begins, and the Lease is released only after they stopped.
    let lead = move |leader: Leader| {
        info!(identity = %leader.identity, fencing_token = leader.lease_transitions, "leading");
        operator.lead(leader.stop.cancelled_owned())
    };
    match election::run(client, cfg, shutdown, lead, status_tx).await {
        Ok(outcome) => {
            info!(?outcome, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("leader election: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    fn parse(flags: &[&str]) -> ControllerArgs {
        let argv = ["baton", "controller"].into_iter().chain(flags.iter().copied());
        match crate::cli::Cli::try_parse_from(argv).expect("parses").command {
            crate::cli::Command::Controller(args) => args,
            _ => panic!("not the controller command"),
        }
    }

    #[test]
    fn each_shard_has_its_own_lease() {
        let lease = |f: &[&str]| parse(f).lease_name();
        assert_eq!(lease(&["--shard", "a"]), Ok("baton-controller-a".into()));
        assert_eq!(lease(&["--shard", "a", "--lease-name", "x"]), Ok("x".into()));
        assert_eq!(lease(&["--selector", "s=a", "--lease-name", "x"]), Ok("x".into()));
        assert!(lease(&["--selector", "s=a"]).is_err());
        assert!(lease(&["--selector", "s=a", "--leader-elect", "false"]).is_ok());
        assert_eq!(parse(&["--selector", " "]).selector(), None);
        assert_eq!(parse(&["--kube-api-qps", "-1"]).kube_api_qps, -1.0);
    }

    #[test]
    fn watched_namespaces_are_a_list_each_named_once() {
        let watched = |f: &[&str]| parse(f).watched();
        assert_eq!(watched(&[]), Ok(vec![]));
        assert_eq!(watched(&["--watch-namespace", "a"]), Ok(vec!["a".to_string()]));
        let two = Ok(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(watched(&["--watch-namespace", "a,b,a"]), two);
        assert_eq!(watched(&["--watch-namespace", "a", "--watch-namespace", " b "]), two);
        let bad = watched(&["--watch-namespace", "a,Team_B"]).expect_err("an invalid name");
        assert!(bad.contains("\"Team_B\" is not a namespace name"), "{bad}");
        assert!(watched(&["--watch-namespace=a-"]).is_err());
        assert!(watched(&["--watch-namespace", &"a".repeat(64)]).is_err());
    }

    use super::*;
    use crate::election::{DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD};

    #[test]
    fn flag_defaults_are_the_libraries_defaults() {
        let cli = crate::cli::Cli::try_parse_from(["baton", "controller"]).expect("parses");
        let crate::cli::Command::Controller(args) = cli.command else {
            panic!("not the controller command");
        };
        assert_eq!(parse_duration(&args.lease_duration), Ok(DEFAULT_LEASE_DURATION));
        assert_eq!(parse_duration(&args.renew_deadline), Ok(DEFAULT_RENEW_DEADLINE));
        assert_eq!(parse_duration(&args.retry_period), Ok(DEFAULT_RETRY_PERIOD));
        assert_eq!(args.concurrency, crate::operator::OperatorConfig::default().concurrency);
        assert_eq!(args.kube_api_qps, crate::throttle::DEFAULT_QPS);
        assert_eq!(args.kube_api_burst, crate::throttle::DEFAULT_BURST);
        assert_eq!(args.lease_name(), Ok(DEFAULT_LEASE_NAME.to_string()));
        assert_eq!(args.selector(), None);
        assert_eq!(
            Duration::from_secs(args.drain_timeout_seconds),
            crate::operator::OperatorConfig::default().drain_timeout
        );
    }
}
