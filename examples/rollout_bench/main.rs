//! Rollout benchmark: roll 100 and 1,000 instances from v1 to v2 with batches [10%, 50%, 100%],
//! maxSurge 25%, maxUnavailable 0, kubelet ready delay 1 s, minReadySeconds 0, no pauses.
//!
//! The controller runs as a separate process (`target/release/baton controller`) against the
//! in-process simulator, so its API writes are counted by the simulator per client identity and
//! its peak RSS is its own. Run with `make bench` or
//! `cargo run --release --example rollout_bench [--backend real] [SIZE ...]` (default: 100
//! 1000); `--backend real` runs each size on a real control plane of its own (`backend`).
//! `ROLLOUT_BENCH_TIMELINE=1` also prints where the time went, wave by wave (see `timeline`);
//! `ROLLOUT_BENCH_LOG=<file>` keeps the controller's log (JSON), with its filter from
//! `ROLLOUT_BENCH_RUST_LOG` (e.g. `info,kube=warn,baton_controller::rollout=debug` for each
//! reconcile's plan, writes and waits).
mod backend;
#[path = "../common/mod.rs"]
mod common;
mod timeline;

use std::process::Stdio;
use std::time::{Duration, Instant};

use baton::api::rollout::{Rollout, RolloutPhase};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The simulator in this process allocates for every object it decodes, merges and encodes
/// (malloc and free were ~35% of its CPU under glibc's allocator): mimalloc makes its writes
/// cheaper, so less of the measured time is the simulator's own (docs/benchmarks.md).
/// The controller, a separate process, keeps its own allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The target: wall time ≤ 1.05 × the health gates' lower bound.
const TARGET_RATIO: f64 = 1.05;
const READY_DELAY: Duration = Duration::from_secs(1);
const CONTROLLER_ID: &str = "baton-controller-bench";

fn manifest(replicas: i32, version: &str) -> serde_json::Value {
    json!({
        "apiVersion": baton::api::API_VERSION, "kind": "Rollout",
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "svc"}},
            "version": version,
            "template": {"metadata": {"labels": {"app": "svc"}}, "spec": {"containers": [{"name": "app", "image": format!("svc:{version}")}]}},
            "strategy": {"batches": ["10%", "50%", "100%"], "maxSurge": "25%", "maxUnavailable": 0},
            "minReadySeconds": 0,
            "progressDeadlineSeconds": 600
        }
    })
}

/// The strategy's lower bound: Σ over batches of ⌈batch size ÷ surge⌉ waves × ready delay.
fn lower_bound(replicas: i32) -> Duration {
    let surge = ((replicas as f64) * 0.25).ceil() as i32;
    let targets = [0.10, 0.50, 1.00].map(|p| ((replicas as f64) * p).ceil() as i32);
    let mut prev = 0;
    let mut waves = 0;
    for t in targets {
        let size = t - prev;
        waves += (size + surge - 1) / surge;
        prev = t;
    }
    READY_DELAY * waves as u32
}

/// Waits on a watch (as `kubectl wait` does), not by polling: polling a 1,000-instance status
/// every few ms would load the simulator the controller is measured against.
async fn wait_healthy(api: &Api<Rollout>, version: &str, replicas: i32, deadline: Duration) -> Result<(), String> {
    let version = version.to_string();
    let healthy = move |r: Option<&Rollout>| {
        r.and_then(|r| Some((r, r.status.as_ref()?))).is_some_and(|(r, st)| {
            st.observed_generation == r.metadata.generation
                && st.phase == Some(RolloutPhase::Healthy)
                && st.versions.get(&version).copied() == Some(replicas)
                && st.available_replicas == replicas
        })
    };
    let wait = kube::runtime::wait::await_condition(api.clone(), "svc", healthy);
    match tokio::time::timeout(deadline, wait).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("watching the Rollout: {e}")),
        Err(_) => Err(format!("not healthy within {deadline:?}")),
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Figures {
    replicas: i32,
    wall: Duration,
    bound: Duration,
    writes_per_instance: f64,
    status_writes: u64,
    reconciles: Option<u64>,
    rss_mib: f64,
}

async fn run(replicas: i32, real: bool) -> Result<Figures, String> {
    let backend = backend::Backend::start(real, READY_DELAY).await?;
    let out = measure(&backend, replicas).await;
    backend.stop();
    out
}

async fn measure(backend: &backend::Backend, replicas: i32) -> Result<Figures, String> {
    let client = backend.client().await?;
    baton::demo::install_crds(&client).await?;
    let dir = std::env::temp_dir().join(format!("baton-bench-{}", std::process::id()));
    let kubeconfig = dir.join(format!("kubeconfig-{replicas}"));
    backend.kubeconfig_as(CONTROLLER_ID, &kubeconfig)?;
    let baton = common::baton_binary()?;
    let mut child = common::spawn_baton(
        tokio::process::Command::new(&baton)
            .args([
                "controller",
                "--log-format",
                "json",
                "--concurrency",
                "8",
                "--leader-elect=false",
                "--metrics-addr",
                "127.0.0.1:0",
                // The bench measures a rollout against its health-gate bound, not the client-side
                // rate limit (50 QPS by default would bound a 1,000-instance rollout instead).
                "--kube-api-qps=-1",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("ROLLOUT_BENCH_RUST_LOG")
                    .unwrap_or_else(|_| "info,kube=warn,baton_controller::rollout=warn".into()),
            )
            .stderr(Stdio::piped()),
        &baton,
    )?;
    let pid = child.id().ok_or("controller exited")?;
    // Read its log while it runs: a log beyond the pipe's buffer would block the controller.
    let mut stderr = child.stderr.take().ok_or("the controller has no stderr")?;
    let log = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut buf).await;
        buf
    });
    let api: Api<Rollout> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("bench").force();
    api.patch("svc", &pp, &Patch::Apply(manifest(replicas, "v1")))
        .await
        .map_err(|e| e.to_string())?;
    wait_healthy(&api, "v1", replicas, Duration::from_secs(300)).await?;
    let writes_before = backend.writes(CONTROLLER_ID);
    let recorder = std::env::var_os("ROLLOUT_BENCH_TIMELINE")
        .and(backend.sim())
        .map(timeline::Recorder::start);
    let start = Instant::now();
    let applied_at = jiff::Timestamp::now();
    api.patch("svc", &pp, &Patch::Apply(manifest(replicas, "v2")))
        .await
        .map_err(|e| e.to_string())?;
    wait_healthy(&api, "v2", replicas, Duration::from_secs(600)).await?;
    let wall = start.elapsed();
    if let (Some(r), Some(sim)) = (recorder, backend.sim()) {
        let log: Vec<_> = sim
            .core
            .writes()
            .into_iter()
            .filter(|w| w.identity.contains(CONTROLLER_ID))
            .collect();
        r.report(start, start + wall, &log);
    }
    let writes = backend.writes(CONTROLLER_ID) - writes_before;
    // Status writes = PATCHes of rollouts/status; events are POSTs, pods are POST+DELETE.
    let rss = peak_rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
    let _ = nix_term(pid);
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .map_err(|_| "controller did not stop")?
        .map_err(|e| e.to_string())?;
    let log = log.await.map_err(|e| e.to_string())?;
    let log = String::from_utf8_lossy(&log);
    if let Some(path) = std::env::var_os("ROLLOUT_BENCH_LOG") {
        let path = std::path::PathBuf::from(path);
        std::fs::write(&path, log.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("controller log: {} (v2 applied at {applied_at})", path.display());
    }
    let stopped = log.lines().rev().find(|l| l.contains("the controllers stopped"));
    let field = |name: &str| -> Option<u64> {
        let v: serde_json::Value = serde_json::from_str(stopped?).ok()?;
        v.get(name)?.as_u64()
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Figures {
        replicas,
        wall,
        bound: lower_bound(replicas),
        writes_per_instance: writes as f64 / replicas as f64,
        status_writes: field("status_writes").unwrap_or(0),
        reconciles: field("reconciles"),
        rss_mib: rss,
    })
}

/// SIGTERM without a libc dependency: `kill -TERM`.
fn nix_term(pid: u32) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
}

#[tokio::main]
async fn main() {
    println!("rollout benchmark: batches [10%, 50%, 100%], maxSurge 25%, maxUnavailable 0, ready delay 1s, minReadySeconds 0");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes = Vec::new();
    let mut real = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--backend" {
            real = it.next().map(String::as_str) == Some("real");
            continue;
        }
        match a.parse::<i32>() {
            Ok(n) if n > 0 => sizes.push(n),
            _ => {
                eprintln!("rollout_bench: {a}: not a number of instances");
                std::process::exit(2);
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![100, 1000];
    }
    println!(
        "command: cargo run --release --example rollout_bench {}\n",
        args.join(" ")
    );
    println!(
        "{:>9} {:>10} {:>10} {:>7} {:>14} {:>13} {:>11} {:>13}",
        "instances", "wall", "bound", "ratio", "writes/inst", "status-writes", "reconciles", "peak RSS MiB"
    );
    let mut ok = true;
    for n in sizes {
        match run(n, real).await {
            Ok(f) => {
                let ratio = f.wall.as_secs_f64() / f.bound.as_secs_f64();
                ok &= ratio <= TARGET_RATIO;
                println!(
                    "{:>9} {:>9.2}s {:>9.2}s {:>7.3} {:>14.2} {:>13} {:>11} {:>13.1}",
                    f.replicas,
                    f.wall.as_secs_f64(),
                    f.bound.as_secs_f64(),
                    ratio,
                    f.writes_per_instance,
                    f.status_writes,
                    f.reconciles.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
                    f.rss_mib
                );
            }
            Err(e) => {
                ok = false;
                println!("{n:>9} FAILED: {e}");
            }
        }
    }
    println!("\ntarget: wall ≤ {TARGET_RATIO} × bound; ≤ 3 writes per instance plus a bounded number of status writes per batch");
    println!("{}", if ok { "within target" } else { "TARGET MISSED" });
}
