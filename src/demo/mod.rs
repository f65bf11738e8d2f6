//! `baton demo`: the whole system on one machine. Starts the embedded API server simulator, the
//! controller and a sample 4-instance service, then shows v1 → v2 in batches, a broken v3 that
//! fails its first batch and rolls back on its own (phase RolledBack, the Ready gate False),
//! the spec set back to v2, a v4 with a migration hook whose health check fails (rolled back,
//! a webhook receiver printing the notifications), and one instance pinned back to v1.
//!
//! The CLI runs the demo (never the reverse): it hands in how it renders a Rollout
//! ([`Render`]), so the demo shows what `baton rollout status` shows.
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

use crate::api::rollout::{reasons, ConditionStatus, ConditionType, Reason, Rollout};
use crate::operator::{self, OperatorConfig};

/// `println!` that ends quietly on a closed pipe (`baton demo | head`).
macro_rules! out {
    ($($arg:tt)*) => { crate::stdout::emit(&format!("{}\n", format_args!($($arg)*))) };
}

mod around;
pub mod listeners;
pub mod states;
mod world;
use listeners::HandoverLog;
pub use world::Cluster;
use world::World;

/// How the CLI renders a Rollout (`baton rollout status`).
pub type Render = fn(&Rollout) -> String;

/// A demo step that did not go as the script expects (printed after `baton demo FAILED:`).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("installing CRDs: {0}")]
    InstallCrds(#[source] kube::Error),
    #[error("CustomResourceDefinition {0} was not Established within 60 s")]
    CrdNotEstablished(String),
    #[error(transparent)]
    Request(#[from] http::Error),
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("watch ended")]
    WatchEnded,
    #[error("only {running} of 12 listeners running after {deadline:?}")]
    ListenersNotRunning { running: usize, deadline: Duration },
    /// The CI gate (`gate`, as [`gate_line`] says it) is not closed after v3 rolled back.
    #[error("the gate should be closed after the rollback: {0}")]
    GateOpen(String),
    #[error("the webhook got {0:?}, not Started, CheckFailed and RolledBack")]
    Notifications(Vec<String>),
    #[error("{0} listener duplicates")]
    Duplicates(u64),
    #[error("serving the demo's endpoints: {0}")]
    Endpoints(#[source] std::io::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("serving the dashboard: {0}")]
    Dashboard(#[source] std::io::Error),
}

/// The test harnesses and benchmarks that install the CRDs with [`install_crds`] say their
/// own errors in words: `?` turns the demo's into them.
impl From<DemoError> for String {
    fn from(e: DemoError) -> Self {
        e.to_string()
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Keep the simulator and controller running at the end and print the kubeconfig; serve the
    /// dashboard from the start (watch the steps live) and print its URL.
    #[arg(long)]
    pub keep: bool,
    /// Where the dashboard of `--keep` serves (another free port when this one is taken).
    #[arg(long, default_value = crate::dashboard::DEFAULT_ADDRESS)]
    pub dashboard_address: std::net::SocketAddr,
    /// Kubelet delay from Running to Ready, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub ready_delay_ms: u64,
    /// Where to serve the controller's /metrics (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_addr: std::net::SocketAddr,
    /// The API server: the embedded simulator, or the real control plane on this machine
    /// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok; built from the Go
    /// module proxy on first use, 15-30 minutes on 2 cores, then cached). (`--cluster` is
    /// kubectl's flag, which every other command takes.)
    #[arg(long, value_enum, default_value_t = Cluster::Sim)]
    pub backend: Cluster,
}

const NAME: &str = "user-service";
/// Field manager of the demo's own writes (the user's, in a real cluster).
const MANAGER: &str = "baton-demo";

fn step(title: &str) {
    out!("\n━━ {title}");
}

fn rollout_manifest(version: &str, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": "Rollout",
        "metadata": {"name": NAME, "namespace": "default"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": NAME}},
            "version": version,
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": {"batches": [1, "50%", "100%"], "pause": {"duration": "1s"}, "maxSurge": 1, "maxUnavailable": 0},
            "minReadySeconds": 1,
            "progressDeadlineSeconds": 6,
            "autoRollback": true,
            "revisionHistoryLimit": 10
        }
    })
}

/// Follow the Rollout, printing each new view, until `done` says it is finished (or the deadline).
async fn follow(api: &Api<Rollout>, deadline: Duration, done: impl Fn(&Rollout) -> bool) -> Result<Rollout, DemoError> {
    let cfg = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let mut stream = std::pin::pin!(watcher(api.clone(), cfg).default_backoff().applied_objects());
    let mut last = String::new();
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let next = tokio::time::timeout_at(end, stream.next())
            .await
            .map_err(|_| DemoError::TimedOut(deadline))?;
        match next {
            Some(Ok(r)) => {
                let view = progress_line(&r);
                if view != last {
                    out!("{view}");
                    last = view;
                }
                if done(&r) {
                    return Ok(r);
                }
            }
            Some(Err(e)) => eprintln!("watch: {e}"),
            None => return Err(DemoError::WatchEnded),
        }
    }
}

/// One line per change: phase, batch, versions per instance, message.
fn progress_line(r: &Rollout) -> String {
    let Some(st) = &r.status else {
        return "  (no status yet)".into();
    };
    let phase = st.phase.map(|p| p.to_string()).unwrap_or_default();
    let batch = st
        .batch
        .as_ref()
        .map(|b| format!("batch {}/{}", b.current, b.total))
        .unwrap_or_else(|| "batch -".into());
    let slots: Vec<String> = st
        .instances
        .iter()
        .map(|i| {
            format!(
                "{}{}",
                i.version.as_deref().unwrap_or("·"),
                if i.ready { "✓" } else { "…" }
            )
        })
        .collect();
    // Right after a spec change the status still describes the previous generation: say so, as
    // `kubectl wait --for=condition=Ready` does by not trusting it.
    let stale = match (st.observed_generation, r.metadata.generation) {
        (Some(seen), Some(g)) if seen < g => {
            format!("  (status of generation {seen}; generation {g} not observed yet)")
        }
        _ => String::new(),
    };
    format!(
        "  {phase:<11} {batch:<10} [{}]  {}{stale}",
        slots.join(" "),
        st.message.as_deref().unwrap_or("")
    )
}

fn healthy_at(r: &Rollout, version: &str) -> bool {
    states::healthy_on(r, version, 4)
}

fn condition(r: &Rollout, t: ConditionType) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    reasons::find(&r.status.as_ref()?.conditions, t)
}

/// The CI gate as `kubectl wait --for=condition=Ready rollout/user-service` reads it: Ready
/// True for the current generation.
fn gate_line(r: &Rollout) -> String {
    let generation = r.metadata.generation.unwrap_or(0);
    match condition(r, ConditionType::Ready) {
        Some(c) if c.observed_generation == Some(generation) => format!(
            "Ready={} ({}) for generation {generation}: `kubectl wait --for=condition=Ready rollout/{NAME}` {}",
            c.status,
            c.reason,
            if c.status == ConditionStatus::True.as_str() {
                "returns"
            } else {
                "keeps waiting, then times out"
            }
        ),
        _ => format!("generation {generation} not observed yet: `kubectl wait --for=condition=Ready` keeps waiting"),
    }
}

/// The server-rendered `kubectl get rollouts` table.
async fn get_rollouts_table(client: &kube::Client) -> Result<String, DemoError> {
    let path = format!(
        "/apis/{}/namespaces/default/{}",
        crate::api::API_VERSION,
        crate::api::ROLLOUT_PLURAL
    );
    let req = http::Request::get(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())?;
    let table: serde_json::Value = client.request(req).await?;
    let cols: Vec<String> = table["columnDefinitions"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["priority"].as_i64().unwrap_or(0) == 0)
                .map(|c| c["name"].as_str().unwrap_or("").to_uppercase())
                .collect()
        })
        .unwrap_or_default();
    let mut rows = vec![cols.clone()];
    for row in table["rows"].as_array().cloned().unwrap_or_default() {
        let cells: Vec<String> = row["cells"]
            .as_array()
            .map(|c| {
                c.iter()
                    .take(cols.len())
                    .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        rows.push(cells);
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| rows.iter().map(|r| r.get(i).map_or(0, |c| c.len())).max().unwrap_or(0))
        .collect();
    Ok(rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i] + 3))
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Create baton's CRDs (the demo's simulator, and the tests' and benchmarks').
pub async fn install_crds(client: &kube::Client) -> Result<(), DemoError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("baton").force();
    for crd in [crate::api::rollout::crd(), crate::api::listenerset::crd()] {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(DemoError::InstallCrds)?;
        // kube-apiserver serves a CRD's resources only once it is Established.
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(60), established)
            .await
            .map_err(|_| DemoError::CrdNotEstablished(name.clone()))?
            .map_err(|_| DemoError::CrdNotEstablished(name))?;
    }
    Ok(())
}

/// A ListenerSet of 12 listeners on the sample service's pods.
fn listenerset_manifest() -> serde_json::Value {
    let listeners: Vec<serde_json::Value> = (1..=12).map(|i| json!({"id": format!("listener{i}")})).collect();
    json!({
        "apiVersion": crate::api::API_VERSION, "kind": "ListenerSet",
        "metadata": {"name": "sxt", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": NAME}}, "listeners": listeners, "leaseDurationSeconds": 15}
    })
}

/// Wait until every listener runs on some pod, per the agents' own log.
async fn all_listeners_running(log: &HandoverLog, deadline: Duration) -> Result<(), DemoError> {
    let end = tokio::time::Instant::now() + deadline;
    while log.assignment().len() < 12 {
        if tokio::time::Instant::now() > end {
            return Err(DemoError::ListenersNotRunning {
                running: log.assignment().len(),
                deadline,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A broken v3 fails its first batch and is rolled back: what serves is v2, and nothing says
/// Healthy or Ready about v3.
async fn broken_v3_rolls_back(client: &kube::Client, api: &Api<Rollout>) -> Result<(), DemoError> {
    step("3. roll out a broken v3 (never becomes ready): its first batch fails and rolls back on its own");
    let pp = PatchParams::apply(MANAGER).force();
    api.patch(
        NAME,
        &pp,
        &Patch::Apply(rollout_manifest("v3", "user-service:v3-never-ready")),
    )
    .await?;
    let r = follow(api, Duration::from_secs(90), |r| states::rolled_back_to(r, "v2")).await?;
    if let Some(c) = condition(&r, ConditionType::Progressing) {
        out!("Progressing={} reason={}: {}", c.status, c.reason, c.message);
    }
    if let Some(c) = condition(&r, ConditionType::Available) {
        out!("Available={} ({}): the service is healthy on v2", c.status, c.reason);
    }
    if let Some(p) = r.status.as_ref().and_then(|s| s.progress.as_ref()) {
        out!(
            "progress: {} total, {} completed, {} failed, {} pending, {} rolled back",
            p.total,
            p.completed,
            p.failed,
            p.pending,
            p.rolled_back
        );
    }
    let gate = gate_line(&r);
    out!("{gate}");
    if condition(&r, ConditionType::Ready)
        .is_none_or(|c| c.status != ConditionStatus::False.as_str() || c.reason != Reason::RolledBack.as_str())
    {
        return Err(DemoError::GateOpen(gate));
    }
    step("kubectl get rollouts (VERSION is what serves)");
    out!("{}", get_rollouts_table(client).await?);
    Ok(())
}

/// The spec goes back to v2 (what `baton rollout undo` does): Healthy and Ready at once, no pod
/// replaced.
async fn undo(api: &Api<Rollout>) -> Result<(), DemoError> {
    step("4. set the spec back to v2, the version that serves (baton rollout undo): Healthy again, nothing replaced");
    let pp = PatchParams::apply(MANAGER).force();
    api.patch(NAME, &pp, &Patch::Apply(rollout_manifest("v2", "user-service:v2")))
        .await?;
    let r = follow(api, Duration::from_secs(60), |r| healthy_at(r, "v2")).await?;
    out!("{}", gate_line(&r));
    Ok(())
}

/// One instance is pinned back to v1.
async fn pin(api: &Api<Rollout>) -> Result<(), DemoError> {
    step("6. pin instance user-service-2 back to v1 (single-instance rollback)");
    let pin = json!({"spec": {"pins": [{"instances": ["user-service-2"], "version": "v1"}]}});
    api.patch(NAME, &PatchParams::default(), &Patch::Merge(&pin)).await?;
    follow(api, Duration::from_secs(60), |r| {
        states::pinned(r, "user-service-2", "v1", "v2", 3)
    })
    .await?;
    Ok(())
}

async fn script(client: kube::Client, log: HandoverLog, render: Render) -> Result<(), DemoError> {
    let api: Api<Rollout> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply(MANAGER).force();

    step("1. deploy user-service v1 to 4 instances");
    api.patch(NAME, &pp, &Patch::Apply(rollout_manifest("v1", "user-service:v1")))
        .await?;
    follow(&api, Duration::from_secs(60), |r| healthy_at(r, "v1")).await?;
    let sets: Api<crate::api::listenerset::ListenerSet> = Api::namespaced(client.clone(), "default");
    sets.patch("sxt", &pp, &Patch::Apply(listenerset_manifest())).await?;
    all_listeners_running(&log, Duration::from_secs(30)).await?;
    out!("ListenerSet sxt: 12 listeners running, each on exactly one pod (a Lease per listener, owned by its pod)");

    step("2. roll out v2 in batches [1, 50%, 100%], 1s pause between batches; listeners move off each old pod before it goes");
    log.print_handovers(true);
    api.patch(NAME, &pp, &Patch::Apply(rollout_manifest("v2", "user-service:v2")))
        .await?;
    follow(&api, Duration::from_secs(90), |r| healthy_at(r, "v2")).await?;
    all_listeners_running(&log, Duration::from_secs(30)).await?;
    out!("{}", gate_line(&api.get(NAME).await?));
    log.print_handovers(false);
    let (n, worst) = log.handover_summary();
    out!("{n} handovers, worst gap {worst} ms, duplicates {}", log.duplicates());
    step("listener assignment after v2");
    for (listener, pod) in log.assignment() {
        out!("  {listener:<12} {pod}");
    }

    broken_v3_rolls_back(&client, &api).await?;
    undo(&api).await?;
    around::hooks_checks_and_webhooks(&client, &api).await?;
    pin(&api).await?;

    step("baton rollout status user-service");
    crate::stdout::emit(&render(&api.get(NAME).await?));

    step("kubectl get rollouts");
    out!("{}", get_rollouts_table(&client).await?);
    let r = api.get(NAME).await?;
    step("instances and versions");
    if let Some(st) = &r.status {
        for i in &st.instances {
            out!(
                "{:<18} {:<30} {}{}",
                i.name,
                i.pod.as_deref().unwrap_or("-"),
                i.version.as_deref().unwrap_or("-"),
                if i.pinned { "  (pinned)" } else { "" }
            );
        }
        let v: Vec<String> = st.versions.iter().map(|(k, n)| format!("{k}={n}")).collect();
        out!("versions: {}", v.join(" "));
    }
    Ok(())
}

/// Run the demo; `render` shows a Rollout as the CLI does.
pub async fn run(args: DemoArgs, render: Render) -> ExitCode {
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn,kube_client=error");
    }
    // The API server first: the control plane's readiness probes fail until it is up, and
    // nothing should log them.
    let mut world = match World::start(args.backend, Duration::from_millis(args.ready_delay_ms)).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::telemetry::init(crate::telemetry::LogFormat::Pretty);
    out!(
        "baton demo: {} (kubeconfig {})",
        world.describe(),
        world.kubeconfig_path().display()
    );
    let client = match world.client().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            world.stop().await;
            return ExitCode::FAILURE;
        }
    };
    let log = HandoverLog::default();
    let agents = world.attach_agents(client.clone(), NAME, log.clone());
    if let Err(e) = install_crds(&client).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let dashboard = match args.keep {
        true => match dashboard(world.server(), client.clone(), args.dashboard_address).await {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        false => None,
    };
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    match crate::probes::serve(args.metrics_addr, metrics.clone(), ready).await {
        Ok(addr) => out!("baton demo: controller metrics at http://{addr}/metrics"),
        Err(e) => {
            eprintln!("error: serving metrics on {}: {e}", args.metrics_addr);
            return ExitCode::FAILURE;
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(operator::run_with_metrics(
        client.clone(),
        OperatorConfig {
            instance: "demo".into(),
            ..OperatorConfig::default()
        },
        metrics,
        until(stop_rx),
    ));
    let outcome = script(client, log.clone(), render)
        .await
        .and_then(|()| match log.duplicates() {
            0 => Ok(()),
            n => Err(DemoError::Duplicates(n)),
        });
    let code = match &outcome {
        Ok(()) => {
            out!("\nbaton demo: every step finished as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nbaton demo FAILED: {e}");
            ExitCode::FAILURE
        }
    };
    if let Some(d) = &dashboard {
        out!("\nStill running. Try:\n  export KUBECONFIG={}\n  kubectl get rollouts -o wide\n  kubectl wait --for=condition=Ready rollout/{NAME} --timeout=60s\n  kubectl get pods\n  baton rollout status {NAME}\nDashboard: {}rollouts/default/{NAME} (also `baton dashboard` with that KUBECONFIG)\nPress Ctrl-C to stop.", world.kubeconfig_path().display(), d.url());
        operator::shutdown_signal().await;
    }
    // Every client stops before the API server does, the controller first (it would act on
    // the agents' releases): nothing is left talking to a server that went away.
    let _ = stop_tx.send(());
    let _ = controller.await;
    agents.stop(Duration::from_secs(10)).await;
    if let Some(d) = dashboard {
        d.stop().await;
    }
    world.stop().await;
    code
}

/// `baton dashboard` on the demo's API server, as its admin: at `address`, else on any free port.
async fn dashboard(
    server: String,
    client: kube::Client,
    address: std::net::SocketAddr,
) -> Result<crate::dashboard::Served, DemoError> {
    let session = crate::session::Session {
        client,
        namespace: "default".into(),
        server,
        read_timeout: None,
    };
    let ns = Some("default".to_string());
    let served = match crate::dashboard::serve(session.clone(), ns.clone(), address, &[], false).await {
        Ok(d) => d,
        Err(e) => {
            let any = std::net::SocketAddr::new(address.ip(), 0);
            let d = crate::dashboard::serve(session, ns, any, &[], false)
                .await
                .map_err(DemoError::Dashboard)?;
            out!("baton demo: {address} is taken ({e}); the dashboard uses another port");
            d
        }
    };
    out!(
        "baton demo: dashboard at {} (live: open it to watch the steps below)",
        served.url()
    );
    Ok(served)
}

async fn until(rx: tokio::sync::oneshot::Receiver<()>) {
    let _ = rx.await;
}
