//! ListenerSets at scale: N listeners in one set (or S sets) on P pods, each pod with a real
//! `baton agent` sidecar and an app that acknowledges each change, under a real `baton
//! controller` (the shipped leader-election timings), all on the simulator on loopback.
//!
//! `cargo run --release --example listener_scale [NxP[/S] ...]` (default `1000x20 10000x20
//! 10000x100 50000x100 100000x100/200`; `/S` spreads the N listeners over S sets of N ÷ S, each selecting every
//! pod, as a platform with one set per service has them: `100000x100/200`); `LEASE` (seconds,
//! default 15), `REST` (seconds, default 30) and `STOP_MS` (how long an app takes to stop a listener, default 0) tune it; `BATON_TEST_BIN` names the `baton` binary to run (default: the one beside the example);
//! `SCALE_LOGS=<dir>` keeps the controller's log and the drained and killed pods' agent logs there
//! (`BATON_CONTROLLER_LOG` / `BATON_AGENT_LOG` set their `RUST_LOG`).
//!
//! For each size, a fresh simulator and:
//!
//! 1. **start**: the sets are created once the controller has run for the 5 s a new set waits
//!    for its pods to settle (docs/listeners.md, "Placement"); the listeners come from Secrets
//!    of 10,000 each (`listenersFrom.secretSelector`);
//!    time from the first set's creation until every set's status says all running, and until every app runs
//!    all of them; writes by client, resource and verb.
//! 2. **rest**: nothing changes for `REST` seconds: writes per second by client, resource and
//!    verb (the target: at most pods × 4 / lease, whatever N), the controller's and the agents'
//!    CPU (share of one core) and RSS.
//! 3. **drain**: the busiest pod is annotated `baton.dev/drain`; time until all its listeners run
//!    elsewhere, and the gap per listener (old app stopped → new app started).
//! 4. **SIGKILL**: the agent of the next busiest pod is killed (its app runs on until the
//!    listeners' `validUntil`); takeover per listener = the kill → the listener started
//!    elsewhere (the target: ≤ lease + 1 s).
//!
//! Last, every size's figures beside the targets they are held to (`targets`): met or not met.
//!
//! Throughout, the apps' starts and stops are logged on one monotonic clock and sampled every
//! 20 ms; every phase must end with 0 duplicates and 0 fencing-token regressions (apps and Leases).
#[path = "../../tests/listener_procs/harness/mod.rs"]
mod harness;
mod measure;
mod phases;
mod targets;

use std::time::Duration;

use harness::app::AppConfig;
use harness::{kubelet, AgentFlags, Cluster, Ns, R};
use measure::{pct, show};

struct Size {
    listeners: usize,
    pods: usize,
    /// Sets the listeners are spread over, each selecting every pod.
    sets: usize,
}

fn sizes() -> Vec<Size> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = if args.is_empty() {
        ["1000x20", "10000x20", "10000x100", "50000x100", "100000x100/200"]
            .map(String::from)
            .to_vec()
    } else {
        args
    };
    args.iter()
        .filter_map(|a| {
            let (n, rest) = a.split_once('x')?;
            let (p, sets) = rest.split_once('/').unwrap_or((rest, "1"));
            Some(Size {
                listeners: n.parse().ok()?,
                pods: p.parse().ok()?,
                sets: sets.parse().ok().filter(|s| *s >= 1)?,
            })
        })
        .collect()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One size's phases; (clean, its row of the summary table, its figures against the targets).
async fn run(size: &Size, lease: i32, rest_secs: u64) -> R<(bool, String, Vec<targets::Check>)> {
    let (n, p, sets) = (size.listeners, size.pods, size.sets);
    if n % sets != 0 {
        return Err(format!("{n} listeners do not split evenly into {sets} sets"));
    }
    println!("\n## {n} listeners in {sets} set(s) on {p} pods, lease {lease} s");
    let cluster = Cluster::start(kubelet()).await?;
    let app = AppConfig {
        stop_delay: std::time::Duration::from_millis(env("STOP_MS", 0)),
        ..AppConfig::default()
    };
    let ns = Ns::new(cluster, "scale", app, AgentFlags::default()).await?;
    ns.use_shipped_election();
    let ctl = ns.start_controller().await?;
    let started = std::time::Instant::now();
    let pid = ns.controller_pid(&ctl).ok_or("the controller has no pid")?;
    for i in 0..p {
        ns.create_pod(&format!("p{i:03}")).await?;
    }
    // A new set waits until the pods have been what they are for a settle time, counted from the
    // controller's start when it knows no earlier change (docs/listeners.md, "Placement"): the
    // sets are created once that much has passed, as a set added beside a running controller is.
    let settle = baton::listeners::decide::PODS_SETTLE;
    tokio::time::sleep(settle.saturating_sub(started.elapsed())).await;
    let start = phases::start(&ns, n, sets, lease).await?;
    println!(
        "start: status says all running in {}, apps run all in {}; writes: {}",
        show(start.status_all_running),
        show(start.apps_all_running),
        measure::lines(&start.writes, None).join(", ")
    );
    // Let the start's last writes and the first renewal round pass before measuring rest.
    tokio::time::sleep(Duration::from_secs(u64::try_from(lease).unwrap_or(15) / 2)).await;
    let rest = phases::rest(&ns, pid, rest_secs).await?;
    let per_sec: f64 = rest.writes.values().sum::<u64>() as f64 / rest.secs;
    println!(
        "rest ({:.0} s): {per_sec:.2} writes/s (agents {:.2}, controller {:.2}; bound {:.2}): {}",
        rest.secs,
        measure::total(&rest.writes, "agents") as f64 / rest.secs,
        measure::total(&rest.writes, "controller") as f64 / rest.secs,
        p as f64 * 4.0 / f64::from(lease),
        measure::lines(&rest.writes, Some(rest.secs)).join(", ")
    );
    println!(
        "rest: controller CPU {:.2} % RSS {:.1} MiB; agents CPU mean {:.2} % max {:.2} %, RSS max {:.1} MiB",
        rest.controller.max_cpu(),
        rest.controller.max_rss_mib(),
        rest.agents.mean_cpu(),
        rest.agents.max_cpu(),
        rest.agents.max_rss_mib()
    );
    let drain = phases::drain(&ns, n, pid).await?;
    print_moved("drain", &drain, "gap");
    let kill = phases::kill(&ns, n, &drain.pod, pid).await?;
    print_moved("SIGKILL", &kill, "takeover");
    if let Some(dir) = std::env::var_os("SCALE_LOGS") {
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::write(
            dir.join(format!("controller-{n}x{p}.log")),
            ns.controller_log(&ctl).unwrap_or_default(),
        );
        for pod in [&drain.pod, &kill.pod] {
            let log = ns.pod(pod).map(|p| p.logs()).unwrap_or_default();
            let _ = std::fs::write(dir.join(format!("agent-{pod}-{n}x{p}.log")), log);
        }
    }
    let (_, rss) = measure::proc_stat(pid);
    let checking = std::time::Instant::now();
    let v = ns.violations(true);
    let checked_in = checking.elapsed();
    let a = ns.log.analyse();
    println!(
        "end: controller RSS {:.1} MiB; {} samples, {} duplicate samples, {} violations (the whole run checked in {})",
        rss as f64 / 1024.0,
        a.samples,
        a.duplicate_samples,
        v.len(),
        show(checked_in)
    );
    for x in v.iter().take(10) {
        println!("  violation: {x}");
    }
    let row = format!(
        "| {n} | {p} | {:.2} | {:.2} % / {:.1} MiB | {:.2} % / {:.1} MiB | {} ({}) | {} of {}: {}, gap p50 {} p99 {} max {} | {} of {}: max {} | {} |",
        per_sec,
        rest.controller.max_cpu(),
        rest.controller.max_rss_mib(),
        rest.agents.max_cpu(),
        rest.agents.max_rss_mib(),
        show(start.status_all_running),
        show(start.apps_all_running),
        drain.listeners,
        drain.pod,
        show(drain.all_moved),
        show(pct(&drain.times, 0.5)),
        show(pct(&drain.times, 0.99)),
        show(pct(&drain.times, 1.0)),
        kill.listeners,
        kill.pod,
        show(pct(&kill.times, 1.0)),
        v.len()
    );
    let checks = targets::judge(&targets::Figures {
        listeners: n,
        pods: p,
        sets,
        lease,
        start: &start,
        rest: &rest,
        drain: &drain,
        kill: &kill,
        duplicate_samples: a.duplicate_samples,
        violations: v.len(),
    });
    Ok((v.is_empty(), row, checks))
}

fn print_moved(what: &str, m: &phases::Moved, per: &str) {
    println!(
        "{what}: {} listeners of {} all running elsewhere in {}; {per} p50 {} p99 {} max {}; writes: {}",
        m.listeners,
        m.pod,
        show(m.all_moved),
        show(pct(&m.times, 0.5)),
        show(pct(&m.times, 0.99)),
        show(pct(&m.times, 1.0)),
        measure::lines(&m.writes, None).join(", ")
    );
    if !m.reads.is_empty() {
        println!("{what} reads: {}", measure::lines(&m.reads, None).join(", "));
    }
    println!("{what} timeline (first / median / last): {}", m.timeline);
    println!("{what} CPU: {}", m.cpu);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (lease, rest) = (i32::try_from(env("LEASE", 15)).unwrap_or(15), env("REST", 30));
    let (mut clean, mut rows, mut checks) = (true, Vec::new(), Vec::new());
    for size in sizes() {
        match run(&size, lease, rest).await {
            Ok((ok, row, judged)) => {
                clean &= ok;
                rows.push(row);
                checks.extend(judged);
            }
            Err(e) => {
                eprintln!("{}x{}: failed: {e}", size.listeners, size.pods);
                std::process::exit(1);
            }
        }
    }
    println!(
        "\n| listeners | pods | writes/s at rest | controller CPU / RSS at rest | busiest agent CPU / RSS | all running: status (apps) | drain | SIGKILLed agent | violations |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
    targets::print(&checks);
    if !clean {
        std::process::exit(1);
    }
}
