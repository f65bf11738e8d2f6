//! Scale benchmark: many Rollouts on one controller.
//!
//! For each scenario (N Rollouts × R instances) the simulator and this driver share one process
//! and the controller runs as its own (`target/release/baton controller --leader-elect=false`),
//! so the controller's memory and CPU are its own (read from `/proc/<pid>`), and its API writes
//! are counted by the simulator per client identity. The driver creates the Rollouts on v1,
//! waits until every one is Healthy (on a watch), lets the controller rest, then updates every
//! Rollout to v2 at once and waits until all are Healthy on v2.
//!
//! Printed per scenario: controller RSS at rest (after the v1 rollout settled) and its peak
//! during the mass update (sampled every 50 ms), the mass update's wall time, controller CPU per
//! replaced instance, controller API writes per replaced instance (all kinds), Events per
//! Rollout update, status writes per Rollout update, and the update's Events that repeat
//! another's Rollout, reason and note (a transition reported twice; target 0).
//!
//! The controller runs at `--kube-api-qps Q` (the bench's `--qps Q`, default 0: no client-side
//! limit, so the figures are the controller's own cost rather than the rate limit's); every
//! scenario of one run uses the same QPS, which the header and the table print.
//!
//! `cargo run --release --example scale_bench [--qps Q] [N×R ...]` (default: 1000x10 10000x1
//! 2000x10 4000x10); `make bench-scale` builds the controller first.
mod common;
#[path = "../tests/support/wait.rs"]
mod wait;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::api::rollout::{Rollout, RolloutPhase};
use baton_sim::{KubeletConfig, Sim, SimConfig};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::json;

const CONTROLLER_ID: &str = "baton-controller-scale";
const NS: &str = "default";

fn manifest(name: &str, replicas: i32, version: &str) -> serde_json::Value {
    json!({
        "apiVersion": baton::api::API_VERSION, "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "version": version,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": format!("registry.example.com/{name}:{version}")}]}
            },
            "strategy": {"maxSurge": "25%", "maxUnavailable": 0},
            "progressDeadlineSeconds": 3600
        }
    })
}

fn proc_field(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime of `pid`, in seconds (clock ticks of 10 ms).
fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples the controller's RSS every 50 ms; `peak` holds the largest value since `reset`.
struct RssSampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let p = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Some(rss) = proc_field(pid, "VmRSS:") {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        RssSampler { peak, task }
    }

    fn reset(&self) {
        self.peak.store(0, Ordering::Relaxed);
    }

    fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Figures {
    rollouts: usize,
    instances: i32,
    rest_mib: f64,
    peak_mib: f64,
    update: Duration,
    cpu_ms_per_instance: f64,
    writes_per_instance: f64,
    events_per_update: f64,
    /// Events of the update that repeat another's regarding object, reason and note.
    repeated_events: usize,
    status_writes_per_update: Option<f64>,
    /// Rollout reconciles per Rollout updated (from the controller's `/metrics`).
    reconciles_per_update: Option<f64>,
}

/// A loopback address with a port free right now, for the controller's metrics endpoint.
fn free_local_addr() -> Result<String, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.to_string())
}

/// The Rollout controller's reconciles so far: the sum of `baton_reconcile_total` for
/// `controller="rollout"` in a scrape of `/metrics` at `addr` (None when it cannot be read).
async fn reconciles(addr: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    let mut body = String::new();
    conn.read_to_string(&mut body).await.ok()?;
    let total = body
        .lines()
        .filter(|l| l.starts_with("baton_reconcile_total{") && l.contains("controller=\"rollout\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    Some(total)
}

/// Rollouts Healthy on `version` at their current generation, per the driver's cache.
fn healthy_count(store: &reflector::Store<Rollout>, version: &str, replicas: i32) -> usize {
    store
        .state()
        .iter()
        .filter(|r| {
            r.status.as_ref().is_some_and(|st| {
                st.observed_generation == r.metadata.generation
                    && st.phase == Some(RolloutPhase::Healthy)
                    && st.versions.get(version).copied() == Some(replicas)
                    && st.available_replicas == replicas
            })
        })
        .count()
}

async fn wait_all_healthy(
    store: &reflector::Store<Rollout>,
    n: usize,
    version: &str,
    replicas: i32,
    deadline: Duration,
) -> Result<(), String> {
    let what = format!("{n} Rollouts Healthy on {version}");
    wait::poll(&what, deadline, Duration::from_millis(100), || async {
        let done = healthy_count(store, version, replicas);
        if done >= n {
            Ok(())
        } else {
            Err(done)
        }
    })
    .await
    .map_err(|(message, done)| format!("{message}: {done}/{n} Healthy"))
}

/// Apply `version` to Rollouts r-0 … r-(n-1), 64 requests at once.
async fn apply_all(api: &Api<Rollout>, n: usize, replicas: i32, version: &str) -> Result<(), String> {
    let pp = PatchParams::apply("bench").force();
    futures::stream::iter(0..n)
        .map(|i| {
            let (api, pp) = (api.clone(), pp.clone());
            let name = format!("r-{i}");
            let body = manifest(&name, replicas, version);
            async move { api.patch(&name, &pp, &Patch::Apply(body)).await.map(|_| ()) }
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
        .map_err(|e| e.to_string())
}

fn writes(sim: &Sim) -> u64 {
    common::writes(sim, CONTROLLER_ID)
}

/// Events in the namespace, and how many of them repeat an earlier one's regarding object,
/// reason and note (a transition reported twice).
async fn count_events(client: &kube::Client) -> Result<(usize, usize), String> {
    let api: Api<Event> = Api::namespaced(client.clone(), NS);
    let list = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    let repeats = list
        .items
        .iter()
        .filter(|e| {
            let name = e.regarding.as_ref().and_then(|r| r.name.clone());
            !seen.insert((name, e.reason.clone(), e.note.clone()))
        })
        .count();
    Ok((list.items.len(), repeats))
}

async fn scenario(n: usize, replicas: i32, qps: f32) -> Result<Figures, String> {
    let sim = Sim::start(SimConfig {
        kubelet: KubeletConfig {
            schedule_delay: Duration::from_millis(1),
            start_delay: Duration::from_millis(1),
            ready_delay: Duration::from_millis(200),
            ..KubeletConfig::default()
        },
        history: 500_000,
        history_bytes: 1 << 30,
        ..SimConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let client = sim.client().await.map_err(|e| e.to_string())?;
    baton::demo::install_crds(&client).await?;
    let dir = std::env::temp_dir().join(format!("baton-scale-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let kubeconfig = dir.join(format!("kubeconfig-{n}x{replicas}"));
    sim.kubeconfig_as(CONTROLLER_ID, &kubeconfig)
        .map_err(|e| e.to_string())?;
    let baton = common::baton_binary()?;
    let metrics_addr = free_local_addr()?;
    // With `SCALE_BENCH_LOG=<dir>`, the controller's log (info and up) is kept there.
    let (log_level, stderr) = match std::env::var_os("SCALE_BENCH_LOG") {
        Some(d) => {
            let path = std::path::Path::new(&d).join(format!("controller-{n}x{replicas}.log"));
            let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            ("info", Stdio::from(file))
        }
        None => ("warn", Stdio::null()),
    };
    let mut child = common::spawn_baton(
        tokio::process::Command::new(&baton)
            .args(["controller", "--log-format", "json", "--leader-elect=false"])
            .args(["--metrics-addr", &metrics_addr])
            .args(["--kube-api-qps", &qps.to_string()])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", log_level)
            .stderr(stderr),
        &baton,
    )?;
    let pid = child.id().ok_or("controller exited")?;
    let rss = RssSampler::start(pid);

    // The driver's own view of the Rollouts, on a watch.
    let api: Api<Rollout> = Api::namespaced(client.clone(), NS);
    let (store, writer) = reflector::store();
    let watch = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(|_| async {});
    let watch = tokio::spawn(watch);

    let created = Instant::now();
    apply_all(&api, n, replicas, "v1").await?;
    wait_all_healthy(&store, n, "v1", replicas, Duration::from_secs(1800)).await?;
    eprintln!(
        "  {n}×{replicas}: v1 Healthy after {:.1}s",
        created.elapsed().as_secs_f64()
    );
    // At rest: nothing moves for a few seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rest = proc_field(pid, "VmRSS:").unwrap_or(0);

    let (writes0, (events0, repeats0), cpu0) =
        (writes(&sim), count_events(&client).await?, cpu_secs(pid).unwrap_or(0.0));
    let reconciles0 = reconciles(&metrics_addr).await;
    let log0 = Instant::now();
    rss.reset();
    let perf = profile_update(pid, n, replicas)?;
    let start = Instant::now();
    apply_all(&api, n, replicas, "v2").await?;
    wait_all_healthy(&store, n, "v2", replicas, Duration::from_secs(3600)).await?;
    let update = start.elapsed();
    stop_profile(perf).await;
    let peak = rss.peak_kib();
    let cpu = cpu_secs(pid).unwrap_or(0.0) - cpu0;
    let reconciled = reconciles(&metrics_addr).await.zip(reconciles0).map(|(b, a)| b - a);
    let written = writes(&sim) - writes0;
    let (events, repeats) = count_events(&client).await?;
    let (events, repeats) = (events - events0, repeats - repeats0);
    // Status writes from the simulator's write log, when it still holds the whole update.
    let log = sim.core.writes();
    let status_writes = (log.first().is_some_and(|w| w.at <= log0)).then(|| {
        log.iter()
            .filter(|w| w.at >= log0 && w.identity.contains(CONTROLLER_ID))
            .filter(|w| w.method == "PATCH" && w.path.ends_with("/status"))
            .count()
    });
    watch.abort();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    let _ = std::fs::remove_dir_all(&dir);
    let replaced = n as f64 * f64::from(replicas);
    Ok(Figures {
        rollouts: n,
        instances: replicas,
        rest_mib: mib(rest),
        peak_mib: mib(peak),
        update,
        cpu_ms_per_instance: cpu * 1000.0 / replaced,
        writes_per_instance: written as f64 / replaced,
        events_per_update: events as f64 / n as f64,
        repeated_events: repeats,
        status_writes_per_update: status_writes.map(|s| s as f64 / n as f64),
        reconciles_per_update: reconciled.map(|r| r / n as f64),
    })
}

/// With `SCALE_BENCH_PERF=<dir>`, `perf record` samples the controller during the mass update
/// into `<dir>/perf-<n>x<r>.data` (call graphs by DWARF unwinding: build with
/// `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only` for symbols). A diagnostic, off by default.
fn profile_update(pid: u32, n: usize, replicas: i32) -> Result<Option<tokio::process::Child>, String> {
    let Some(dir) = std::env::var_os("SCALE_BENCH_PERF") else {
        return Ok(None);
    };
    let out = std::path::Path::new(&dir).join(format!("perf-{n}x{replicas}.data"));
    eprintln!("  profiling controller pid {pid} into {}", out.display());
    let child = tokio::process::Command::new("perf")
        .args([
            "record",
            "-F",
            "250",
            "--call-graph",
            "dwarf,16384",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting perf: {e}"))?;
    Ok(Some(child))
}

/// Stop `perf record` (SIGINT makes it write its file) and wait for it.
async fn stop_profile(perf: Option<tokio::process::Child>) {
    let Some(mut child) = perf else { return };
    if let Some(id) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &id.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(120), child.wait()).await;
}

fn parse(arg: &str) -> Option<(usize, i32)> {
    let (n, r) = arg.split_once(['x', '×'])?;
    Some((n.parse().ok()?, r.parse().ok()?))
}

/// The controller's `--kube-api-qps` as said in the table: `0 (no limit)` at 0 or below.
fn qps_text(qps: f32) -> String {
    if qps <= 0.0 {
        "0 (no limit)".to_string()
    } else {
        qps.to_string()
    }
}

/// `--qps Q` (or `--qps=Q`) and the scenarios among `args`.
fn options(args: &[String]) -> Result<(f32, Vec<(usize, i32)>), String> {
    let (mut qps, mut scenarios) = (0.0f32, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = match a.strip_prefix("--qps") {
            Some("") => Some(it.next().ok_or("--qps needs a value")?.as_str()),
            Some(v) => v.strip_prefix('='),
            None => None,
        };
        match value {
            Some(v) => qps = v.parse().map_err(|_| format!("--qps {v}: not a number"))?,
            None => scenarios.push(parse(a).ok_or(format!("{a}: not a scenario N×R or --qps Q"))?),
        }
    }
    if scenarios.is_empty() {
        scenarios = vec![(1000, 10), (10000, 1), (2000, 10), (4000, 10)];
    }
    Ok((qps, scenarios))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (qps, scenarios) = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scale_bench: {e}");
            std::process::exit(2);
        }
    };
    println!("scale benchmark: N Rollouts × R instances, maxSurge 25%, maxUnavailable 0, one batch; kubelet ready delay 200 ms");
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let bin = common::baton_binary().map_or_else(|e| e, |b| b.display().to_string());
    println!(
        "controller: {bin} controller --leader-elect=false --kube-api-qps {qps} (otherwise defaults: concurrency 8, --kube-api-burst {}), its own process",
        baton::throttle::DEFAULT_BURST
    );
    println!("client-side QPS of every scenario: {}", qps_text(qps));
    let release = if profile == "release" { " --release" } else { "" };
    println!("command: cargo run{release} --example scale_bench {}\n", args.join(" "));
    println!(
        "{:>13} {:>12} {:>9} {:>9} {:>9} {:>10} {:>11} {:>12} {:>13} {:>9} {:>11}",
        "rollouts×inst",
        "qps",
        "rest MiB",
        "peak MiB",
        "update",
        "CPU ms/inst",
        "writes/inst",
        "events/upd",
        "status w/upd",
        "repeated",
        "reconc/upd"
    );
    let mut times: BTreeMap<usize, f64> = BTreeMap::new();
    for (n, r) in scenarios {
        match scenario(n, r, qps).await {
            Ok(f) => {
                if f.instances == 10 {
                    times.insert(f.rollouts, f.update.as_secs_f64());
                }
                println!(
                    "{:>13} {:>12} {:>9.1} {:>9.1} {:>8.1}s {:>10.2} {:>11.2} {:>12.2} {:>13} {:>9} {:>11}",
                    format!("{}×{}", f.rollouts, f.instances),
                    qps_text(qps),
                    f.rest_mib,
                    f.peak_mib,
                    f.update.as_secs_f64(),
                    f.cpu_ms_per_instance,
                    f.writes_per_instance,
                    f.events_per_update,
                    f.status_writes_per_update
                        .map(|s| format!("{s:.2}"))
                        .unwrap_or_else(|| "n/a".into()),
                    f.repeated_events,
                    f.reconciles_per_update
                        .map(|r| format!("{r:.1}"))
                        .unwrap_or_else(|| "n/a".into()),
                );
            }
            Err(e) => println!("{:>13} FAILED: {e}", format!("{n}×{r}")),
        }
    }
    if let Some((&base_n, &base_t)) = times.iter().next() {
        for (n, t) in times.iter().skip(1) {
            let expected = base_t * *n as f64 / base_n as f64;
            println!(
                "mass update {n}×10 vs {base_n}×10 (both at QPS {}): {t:.1}s = {:.2} × linear",
                qps_text(qps),
                t / expected
            );
        }
    }
}
