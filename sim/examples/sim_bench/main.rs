//! The simulator benchmark (`make bench`):
//!
//! ```text
//! cargo run --release -p baton-sim --example sim_bench
//! ```
//!
//! Four figures, all measured in one process over loopback:
//!
//! 1. write throughput (creates/s and updates/s of ConfigMaps) from one client and from 8
//!    concurrent clients, with kube-rs (`Api<ConfigMap>`) and with a lean hand-written HTTP/1.1
//!    keep-alive client, so server capacity and client overhead can be told apart;
//! 2. watch fan-out latency: 100 HTTP watchers, a writer whose objects carry their send time,
//!    and the send → delivery latency over every (watcher, event) pair;
//! 3. resident memory per 10,000 realistic pods beyond their stored JSON, kubelet included
//!    (pods are bound, started and made Ready before the second reading);
//! 4. one object's write cost by its size: status writes of a custom resource holding a list map
//!    of 1,000 and of 10,000 items (as a ListenerSet of that many listeners does).
//!
//! The memory phase runs first, in a simulator of its own, so memory freed by the other phases
//! cannot be reused by the pods and hide their cost.
//!
//! One module per phase (`throughput`, `watch`, `memory`, `object_size`), sharing a lean HTTP client
//! (`raw_client`); this file holds the parameters and targets and prints the report.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use baton_sim::{Sim, SimConfig};

mod memory;
mod object_size;
mod raw_client;
mod throughput;
mod watch;

use memory::memory;
use object_size::{object_size, LARGE, SMALL};
use raw_client::create_namespace;
use throughput::{kube_throughput, raw_throughput};
use watch::watch_fanout;

const COMMAND: &str = "cargo run --release -p baton-sim --example sim_bench";

/// Writes of each kind (creates, then updates) by the single client.
const SINGLE_WRITES: usize = 5_000;
const CONCURRENT_CLIENTS: usize = 8;
/// Writes of each kind by each of the concurrent clients.
const PER_CLIENT_WRITES: usize = 1_000;

const WATCHERS: usize = 100;
/// Writes in each watch phase (paced, then burst).
const WATCH_WRITES: usize = 500;
/// Time between writes in the paced watch phase (200 writes/s → 20,000 deliveries/s).
const WATCH_PACE: Duration = Duration::from_millis(5);

const PODS: usize = 10_000;
const WARMUP_PODS: usize = 200;
const POD_CLIENTS: usize = 4;

const TARGET_WRITES_PER_S: f64 = 5_000.0;
const TARGET_P99_MS: f64 = 20.0;
const TARGET_MIB_PER_10K: f64 = 30.0;
/// Most a write of an object with 10 × the list items may cost, against the smaller one's:
/// linear growth with room for noise (a comparison of every pair of items made it ~50 ×).
const TARGET_SIZE_RATIO: f64 = 20.0;

/// The shared clock: watch events carry nanoseconds since this instant.
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn nanos() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run() -> Result<()> {
    let started = Instant::now();
    nanos();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("baton-sim benchmark: `{COMMAND}`");
    println!("machine: {cores} cores; tokio multi-thread runtime shared by simulator and clients; loopback only");
    println!();

    println!("[3/4 first] memory: {PODS} pods (+{WARMUP_PODS} warm-up pods), kubelet included …");
    let mem = tokio::time::timeout(Duration::from_secs(90), memory())
        .await
        .context("memory phase exceeded 90 s")??;
    let per10k = (mem.rss_delta as f64 - mem.json as f64) / MIB / (PODS as f64 / 10_000.0);
    println!(
        "  RSS delta {:.1} MiB, stored JSON {:.1} MiB ({} B/pod), created at {:.0} pods/s, settled after {:.1} s",
        mem.rss_delta as f64 / MIB,
        mem.json as f64 / MIB,
        mem.json / PODS as u64,
        mem.create_rate,
        mem.settle_secs
    );
    println!(
        "  live heap delta {:.1} MiB ({:.1} MiB beyond JSON); the rest of the RSS delta is allocator slack",
        mem.heap_delta as f64 / MIB,
        (mem.heap_delta as f64 - mem.json as f64) / MIB
    );

    let sim = Sim::start(SimConfig::default())
        .await
        .context("starting the simulator")?;
    let addr = sim.addr();
    for ns in ["bench-kube", "bench-raw", "bench-watch", "bench-size"] {
        create_namespace(addr, ns).await?;
    }

    println!("[1/4] write throughput (ConfigMaps) …");
    let limit = Duration::from_secs(60);
    let kube1 = tokio::time::timeout(limit, kube_throughput(&sim, "bench-kube", 1, SINGLE_WRITES))
        .await
        .context("kube-rs single-client phase timed out")??;
    let kube8 = tokio::time::timeout(
        limit,
        kube_throughput(&sim, "bench-kube", CONCURRENT_CLIENTS, PER_CLIENT_WRITES),
    )
    .await
    .context("kube-rs concurrent phase timed out")??;
    let raw1 = tokio::time::timeout(limit, raw_throughput(addr, "bench-raw", 1, SINGLE_WRITES))
        .await
        .context("raw single-client phase timed out")??;
    let raw8 = tokio::time::timeout(
        limit,
        raw_throughput(addr, "bench-raw", CONCURRENT_CLIENTS, PER_CLIENT_WRITES),
    )
    .await
    .context("raw concurrent phase timed out")??;
    let rows = [
        ("kube-rs Api<ConfigMap>, 1 client", SINGLE_WRITES, kube1),
        (
            "kube-rs Api<ConfigMap>, 8 clients",
            CONCURRENT_CLIENTS * PER_CLIENT_WRITES,
            kube8,
        ),
        ("raw HTTP/1.1 keep-alive, 1 client", SINGLE_WRITES, raw1),
        (
            "raw HTTP/1.1 keep-alive, 8 clients",
            CONCURRENT_CLIENTS * PER_CLIENT_WRITES,
            raw8,
        ),
    ];
    for (label, n, r) in &rows {
        println!(
            "  {label:<36} {n:>5} creates {:>7.0}/s   {n:>5} updates {:>7.0}/s",
            r.creates, r.updates
        );
    }

    println!("[2/4] watch fan-out: {WATCHERS} watchers, {WATCH_WRITES} paced writes (1 per {WATCH_PACE:?}) then {WATCH_WRITES} burst writes …");
    let wf = tokio::time::timeout(Duration::from_secs(60), watch_fanout(&sim, "bench-watch"))
        .await
        .context("watch phase timed out")??;
    for (label, p) in [("paced (200 writes/s)", &wf.paced), ("burst", &wf.burst)] {
        println!(
            "  {label:<22} {} deliveries: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            p.n, p.p50, p.p99, p.max
        );
    }
    println!("  burst writer ran at {:.0} writes/s", wf.burst_rate);

    println!("[4/4] one object's status write by its size: a list map of {SMALL} and of {LARGE} items …");
    let size = tokio::time::timeout(Duration::from_secs(120), object_size(&sim, "bench-size"))
        .await
        .context("object size phase timed out")??;
    let ratio = size.large.as_secs_f64() / size.small.as_secs_f64().max(1e-6);
    println!(
        "  median status write: {SMALL} items {:.1} ms, {LARGE} items {:.1} ms ({ratio:.1} ×)",
        ms(size.small),
        ms(size.large)
    );
    sim.stop();

    let t_single = TARGET_WRITES_PER_S;
    let table: Vec<(String, String, String, &str)> = vec![
        (
            "creates/s, 1 client, kube-rs".into(),
            format!("{:.0}", kube1.creates),
            format!("≥ {t_single:.0}"),
            verdict(kube1.creates >= t_single),
        ),
        (
            "updates/s, 1 client, kube-rs".into(),
            format!("{:.0}", kube1.updates),
            format!("≥ {t_single:.0}"),
            verdict(kube1.updates >= t_single),
        ),
        (
            "creates/s, 8 clients, kube-rs".into(),
            format!("{:.0}", kube8.creates),
            "info".into(),
            "-",
        ),
        (
            "updates/s, 8 clients, kube-rs".into(),
            format!("{:.0}", kube8.updates),
            "info".into(),
            "-",
        ),
        (
            "creates/s, 1 client, raw HTTP".into(),
            format!("{:.0}", raw1.creates),
            format!("≥ {t_single:.0}"),
            verdict(raw1.creates >= t_single),
        ),
        (
            "updates/s, 1 client, raw HTTP".into(),
            format!("{:.0}", raw1.updates),
            format!("≥ {t_single:.0}"),
            verdict(raw1.updates >= t_single),
        ),
        (
            "creates/s, 8 clients, raw HTTP".into(),
            format!("{:.0}", raw8.creates),
            "info".into(),
            "-",
        ),
        (
            "updates/s, 8 clients, raw HTTP".into(),
            format!("{:.0}", raw8.updates),
            "info".into(),
            "-",
        ),
        (
            format!("watch p50 / p99 / max, {WATCHERS} watchers, 200 writes/s"),
            format!("{:.2} / {:.2} / {:.2} ms", wf.paced.p50, wf.paced.p99, wf.paced.max),
            format!("p99 < {TARGET_P99_MS:.0} ms"),
            verdict(wf.paced.p99 < TARGET_P99_MS),
        ),
        (
            format!(
                "watch p50 / p99 / max, {WATCHERS} watchers, burst {:.0} writes/s",
                wf.burst_rate
            ),
            format!("{:.2} / {:.2} / {:.2} ms", wf.burst.p50, wf.burst.p99, wf.burst.max),
            "info".into(),
            "-",
        ),
        (
            format!(
                "RSS beyond JSON per 10k pods (kubelet on; RSS Δ {:.1} MiB, JSON {:.1} MiB)",
                mem.rss_delta as f64 / MIB,
                mem.json as f64 / MIB
            ),
            format!("{per10k:.1} MiB"),
            format!("< {TARGET_MIB_PER_10K:.0} MiB"),
            verdict(per10k < TARGET_MIB_PER_10K),
        ),
        (
            format!("status write, list map of {LARGE} items against {SMALL}"),
            format!("{ratio:.1} × ({:.1} / {:.1} ms)", ms(size.large), ms(size.small)),
            format!("≤ {TARGET_SIZE_RATIO:.0} ×"),
            verdict(ratio <= TARGET_SIZE_RATIO),
        ),
    ];
    println!();
    println!("| figure | measured | target | result |");
    println!("|---|---|---|---|");
    for (f, m, t, r) in &table {
        println!("| {f} | {m} | {t} | {r} |");
    }
    println!();
    println!("command: {COMMAND}   (total {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("sim_bench failed: {e:#}");
        std::process::exit(1);
    }
}
