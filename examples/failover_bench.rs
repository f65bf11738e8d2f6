//! Controller failover benchmark: how long a standby `baton controller` takes to start
//! reconciling after the leader goes away.
//!
//! Two `baton controller` processes (`target/release/baton`, leader election on) run against the
//! in-process simulator, each with its own identity and metrics port; one Rollout (3 instances,
//! Healthy) exists, so a new leader has something to reconcile. Each trial: a fresh standby is
//! started and waits warm (`/readyz` 200 and its watches open); the leader is then
//!
//! * **graceful**: sent SIGTERM (`kill -TERM`, spawning `kill` included in the time); it stops
//!   its controllers, releases the Lease and exits 0; the standby acquires it through its watch.
//!   Real default timings: lease duration 15 s, renew deadline 10 s, retry period 2 s.
//!   Target: p99 < 1 s.
//! * **crash**: sent SIGKILL; the standby takes over when the lease expires on its clock.
//!   Shortened timings (the defaults would take ~17 s a trial): lease duration 4 s, renew
//!   deadline 3 s, retry period 1 s. Target: ≤ lease duration + retry period + 1 s = 6 s.
//!
//! For the crash trials the kill waits until the leader has renewed once since the standby
//! started watching, plus a uniformly random part of the retry period, so it lands at a random
//! point of the renewal cycle (a standby measures expiry from when it *saw* the last renewal, so
//! takeover ≈ lease duration − time since that renewal).
//!
//! The time measured is signal → the standby's `/metrics` first showing
//! `baton_reconcile_total{controller="rollout"}` (every result) > 0, polled every 5 ms (so it includes up to
//! ~5 ms of polling granularity). The time to `baton_leader 1` is printed too. The standby of one
//! trial is the leader of the next.
//!
//! Run: `cargo build --release --bin baton && cargo run --release --example failover_bench`
//! (`FAILOVER_TRIALS=n` changes the number of trials per scenario, default 20).
// The child-process, HTTP and metrics helpers the integration tests use too.
mod common;
#[path = "../tests/support/process.rs"]
mod process;
#[path = "../tests/support/wait.rs"]
mod wait;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::api::rollout::{Rollout, RolloutPhase};
use baton_sim::{Sim, SimConfig};
use kube::api::{Api, ListParams, Patch, PatchParams};
use process::{http_get, metric, LoggedChild};
use serde_json::json;
use tokio::process::Command;

const NS: &str = "default";
const POLL: Duration = Duration::from_millis(5);
/// Give up on one trial after this long (counted as a miss).
const TRIAL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy)]
struct Timings {
    lease: Duration,
    renew: Duration,
    retry: Duration,
}

impl Timings {
    fn args(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        vec![
            "--lease-duration".into(),
            ms(self.lease),
            "--renew-deadline".into(),
            ms(self.renew),
            "--retry-period".into(),
            ms(self.retry),
        ]
    }

    fn describe(&self) -> String {
        format!(
            "lease duration {:?}, renew deadline {:?}, retry period {:?}",
            self.lease, self.renew, self.retry
        )
    }
}

const DEFAULTS: Timings = Timings {
    lease: Duration::from_secs(15),
    renew: Duration::from_secs(10),
    retry: Duration::from_secs(2),
};
const CRASH: Timings = Timings {
    lease: Duration::from_secs(4),
    renew: Duration::from_secs(3),
    retry: Duration::from_secs(1),
};

struct Controller {
    id: String,
    proc: LoggedChild,
    metrics: SocketAddr,
}

impl Controller {
    async fn start(baton: &Path, sim: &Sim, dir: &Path, id: &str, t: Timings) -> Result<Controller, String> {
        let kubeconfig = dir.join(format!("{id}.kubeconfig"));
        sim.kubeconfig_as(id, &kubeconfig).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(baton);
        cmd.arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "controller",
                "--leader-elect",
                "true",
                "--lease-namespace",
                NS,
                "--watch-namespace",
                NS,
            ])
            .args([
                "--identity",
                id,
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(t.args())
            .env("RUST_LOG", "info,kube=warn,baton_controller::rollout=warn")
            .env_remove("KUBECONFIG");
        let mut proc = LoggedChild::spawn(&mut cmd, "bound").map_err(|e| {
            format!(
                "starting {}: {e} (build it with cargo build --release --bin baton)",
                baton.display()
            )
        })?;
        let Some(metrics) = proc.wait_addr(Duration::from_secs(30)).await else {
            return Err(format!("{id} did not serve /metrics:\n{}", proc.log_text()));
        };
        Ok(Controller {
            id: id.to_string(),
            proc,
            metrics,
        })
    }

    async fn scrape(&self) -> Option<String> {
        match http_get(self.metrics, "/metrics").await {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    /// Wait until `check` holds on the scraped metrics (polled every `POLL`).
    async fn wait_metrics(&self, what: &str, deadline: Duration, check: impl Fn(&str) -> bool) -> Result<(), String> {
        let what = format!("{}: {what}", self.id);
        wait::poll_until(&what, deadline, POLL, || async {
            self.scrape().await.is_some_and(|m| check(&m)).then_some(())
        })
        .await
    }

    /// Caches synced and every watch open (4 caches + the Lease watch): a warm standby.
    async fn wait_warm(&self) -> Result<(), String> {
        let what = format!("{}: /readyz 200", self.id);
        wait::poll_until(&what, Duration::from_secs(30), POLL, || async {
            matches!(http_get(self.metrics, "/readyz").await, Some((200, _))).then_some(())
        })
        .await?;
        self.wait_metrics("5 open watches", Duration::from_secs(10), |m| {
            metric(m, "baton_kubernetes_api_requests_total{verb=\"watch\",code=\"200\"}").is_some_and(|n| n >= 5.0)
        })
        .await
    }

    fn dump(&self) -> String {
        format!("----- log of {} -----\n{}", self.id, self.proc.log_text())
    }
}

fn rollout_reconciles(m: &str) -> f64 {
    ["success", "requeue", "error"]
        .iter()
        .filter_map(|r| {
            metric(
                m,
                &format!("baton_reconcile_total{{controller=\"rollout\",result=\"{r}\"}}"),
            )
        })
        .sum()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Graceful,
    Crash,
}

/// One trial's result: signal → `baton_leader 1`, signal → first reconcile (None = missed);
/// from the simulator's write log: the old leader's last Lease write (before the signal) and the
/// standby's first Lease write after it, relative to the signal.
struct Trial {
    leader: Option<Duration>,
    reconcile: Option<Duration>,
    last_renew_before: Option<Duration>,
    acquire_after: Option<Duration>,
}

fn lease_writes(sim: &Sim, id: &str) -> Vec<Instant> {
    let (token, path) = (
        format!("token={id}"),
        format!("/namespaces/{NS}/leases/baton-controller"),
    );
    sim.core
        .writes()
        .into_iter()
        .filter(|w| w.identity.contains(&token) && w.path.ends_with(&path))
        .map(|w| w.at)
        .collect()
}

/// Take `leader` down and time the standby.
async fn trial(sim: &Sim, kind: Kind, leader: &mut Controller, standby: &Controller) -> Result<Trial, String> {
    let t0 = Instant::now();
    match kind {
        Kind::Graceful => {
            if !leader.proc.terminate() {
                return Err("kill -TERM failed".into());
            }
        }
        Kind::Crash => leader.proc.child.start_kill().map_err(|e| format!("SIGKILL: {e}"))?,
    }
    let mut out = Trial {
        leader: None,
        reconcile: None,
        last_renew_before: None,
        acquire_after: None,
    };
    let end = t0 + TRIAL_TIMEOUT;
    loop {
        if let Some(m) = standby.scrape().await {
            if out.leader.is_none() && metric(&m, "baton_leader") == Some(1.0) {
                out.leader = Some(t0.elapsed());
            }
            if rollout_reconciles(&m) > 0.0 {
                out.reconcile = Some(t0.elapsed());
                break;
            }
        }
        if Instant::now() > end {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(30), leader.proc.child.wait())
        .await
        .map_err(|_| format!("{} did not exit", leader.id))?
        .map_err(|e| e.to_string())?;
    if kind == Kind::Graceful && !status.success() {
        return Err(format!(
            "{} exited with {status} after SIGTERM\n{}",
            leader.id,
            leader.dump()
        ));
    }
    if out.leader.is_none() {
        standby
            .wait_metrics("baton_leader 1", Duration::from_secs(30), |m| {
                metric(m, "baton_leader") == Some(1.0)
            })
            .await?;
    }
    out.last_renew_before = lease_writes(sim, &leader.id)
        .into_iter()
        .rfind(|&a| a < t0)
        .map(|a| t0 - a);
    out.acquire_after = lease_writes(sim, &standby.id)
        .into_iter()
        .find(|&a| a >= t0)
        .map(|a| a - t0);
    Ok(out)
}

/// `trials` handovers in a chain: start a leader, then per trial a fresh warm standby, take the
/// leader down, and the standby becomes the next trial's leader.
async fn scenario(
    baton: &Path,
    sim: &Sim,
    dir: &Path,
    kind: Kind,
    t: Timings,
    trials: usize,
) -> Result<Vec<Trial>, String> {
    let tag = if kind == Kind::Graceful { "graceful" } else { "crash" };
    let mut leader = Controller::start(baton, sim, dir, &format!("{tag}-0"), t).await?;
    leader
        .wait_metrics("baton_leader 1", Duration::from_secs(60), |m| {
            metric(m, "baton_leader") == Some(1.0)
        })
        .await?;
    let mut results = Vec::new();
    for i in 1..=trials {
        let standby = Controller::start(baton, sim, dir, &format!("{tag}-{i}"), t).await?;
        standby.wait_warm().await?;
        if kind == Kind::Crash {
            // A steady state: the leader has renewed since the standby started watching, and the
            // kill lands at a uniformly random point of its renewal cycle.
            let since = Instant::now();
            let end = since + Duration::from_secs(30);
            while !lease_writes(sim, &leader.id).into_iter().any(|a| a > since) {
                if Instant::now() > end {
                    return Err(format!("{} stopped renewing", leader.id));
                }
                tokio::time::sleep(POLL).await;
            }
            tokio::time::sleep(t.retry.mul_f64(random_fraction())).await;
        }
        let r = trial(sim, kind, &mut leader, &standby).await?;
        let show = |d: Option<Duration>| d.map_or("—".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
        println!(
            "  {tag} {i:2}: leader after {:>10}, first reconcile after {:>10}   (old leader's last Lease write {:>10} before, standby's Lease write {:>10} after the signal)",
            show(r.leader),
            show(r.reconcile),
            show(r.last_renew_before),
            show(r.acquire_after),
        );
        if r.reconcile.is_none() {
            eprintln!("{}", standby.dump());
        }
        results.push(r);
        leader = standby;
    }
    // Hand the Lease back cleanly for the next scenario.
    let _ = leader.proc.terminate();
    let _ = tokio::time::timeout(Duration::from_secs(30), leader.proc.child.wait()).await;
    Ok(results)
}

/// Uniform in [0, 1), without a rand dependency.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (r >> 11) as f64 / (1u64 << 53) as f64
}

/// Nearest-rank percentile.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn summarize(name: &str, results: &[Trial], target: &str, ok: impl Fn(&[Duration]) -> bool) -> bool {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let mut rec: Vec<Duration> = results.iter().filter_map(|r| r.reconcile).collect();
    let mut lead: Vec<Duration> = results.iter().filter_map(|r| r.leader).collect();
    rec.sort();
    lead.sort();
    let missed = results.len() - rec.len();
    println!(
        "{name}: {} trials, {missed} without a reconcile within {TRIAL_TIMEOUT:?}",
        results.len()
    );
    if !lead.is_empty() {
        println!(
            "  → baton_leader 1      p50 {:>10}  p99 {:>10}  max {:>10}",
            ms(pct(&lead, 50.0)),
            ms(pct(&lead, 99.0)),
            ms(pct(&lead, 100.0))
        );
    }
    let pass = missed == 0 && !rec.is_empty() && ok(&rec);
    if !rec.is_empty() {
        println!(
            "  → first reconcile     p50 {:>10}  p99 {:>10}  max {:>10}   target {target}: {}",
            ms(pct(&rec, 50.0)),
            ms(pct(&rec, 99.0)),
            ms(pct(&rec, 100.0)),
            if pass { "met" } else { "MISSED" }
        );
    }
    pass
}

async fn install(client: &kube::Client) -> Result<(), String> {
    baton::demo::install_crds(client).await?;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NS);
    let end = Instant::now() + Duration::from_secs(30);
    while rollouts.list(&ListParams::default()).await.is_err() {
        if Instant::now() > end {
            return Err("rollouts never served".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let manifest = json!({
        "apiVersion": baton::api::API_VERSION, "kind": "Rollout",
        "metadata": {"name": "svc", "namespace": NS},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "svc"}},
            "version": "v1",
            "template": {"metadata": {"labels": {"app": "svc"}}, "spec": {"containers": [{"name": "app", "image": "svc:v1"}]}},
            "strategy": {"batches": [1, "100%"], "maxSurge": 1, "maxUnavailable": 0},
            "minReadySeconds": 0,
            "progressDeadlineSeconds": 60
        }
    });
    rollouts
        .patch("svc", &PatchParams::apply("bench").force(), &Patch::Apply(&manifest))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn wait_healthy(client: &kube::Client) -> Result<(), String> {
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NS);
    wait::poll_until("the Rollout Healthy", Duration::from_secs(60), wait::POLL, || async {
        let r = rollouts.get("svc").await.ok()?;
        (r.status.as_ref().and_then(|s| s.phase) == Some(RolloutPhase::Healthy)).then_some(())
    })
    .await
}

async fn run() -> Result<bool, String> {
    let trials: usize = std::env::var("FAILOVER_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let baton: PathBuf = common::baton_binary()?;
    if !baton.exists() {
        return Err(format!(
            "{} not found: run cargo build --release --bin baton",
            baton.display()
        ));
    }
    let sim = Sim::start(SimConfig {
        kubelet: common::fast_kubelet(),
        ..SimConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let client = sim.client().await.map_err(|e| e.to_string())?;
    install(&client).await?;
    let dir = std::env::temp_dir().join(format!("baton-failover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    println!("command: cargo run --release --example failover_bench   ({trials} trials per scenario)");
    println!("binary: {}", baton.display());
    println!(
        "\n[1/2] graceful handover (SIGTERM to the leader), {}",
        DEFAULTS.describe()
    );
    let graceful = scenario(&baton, &sim, &dir, Kind::Graceful, DEFAULTS, trials).await;
    if let Err(e) = wait_healthy(&client).await {
        println!("warning: {e}");
    }
    println!("\n[2/2] crash takeover (SIGKILL to the leader), {}", CRASH.describe());
    let crash = scenario(&baton, &sim, &dir, Kind::Crash, CRASH, trials).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (graceful, crash) = (graceful?, crash?);

    let crash_target = CRASH.lease + CRASH.retry + Duration::from_secs(1);
    println!("\nsummary (signal → standby's first Rollout reconcile, polled every {POLL:?})");
    let g = summarize("graceful (15s/10s/2s)", &graceful, "p99 < 1 s", |s| {
        pct(s, 99.0) < Duration::from_secs(1)
    });
    let c = summarize(
        "crash (4s/3s/1s)",
        &crash,
        &format!("max ≤ lease + retry + 1 s = {crash_target:?}"),
        |s| pct(s, 100.0) <= crash_target,
    );
    Ok(g && c)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
