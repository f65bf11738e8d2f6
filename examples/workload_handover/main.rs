//! Listener handover over the workloads teams already run: a ListenerSet beside an `apps/v1`
//! Deployment or StatefulSet (run by the simulator's workload controllers), through what users
//! do with real kubectl — `rollout restart` and `set image` with `maxSurge: 1, maxUnavailable: 0`,
//! `rollout restart` with `maxSurge: 0`, `scale` down and up, a StatefulSet's rolling restart and
//! a partitioned update.
//!
//! Run with `cargo run --release --example workload_handover` (after `cargo build --release --bin
//! baton`: the sidecars and controllers are that binary).
//!
//! Each case: 3 pods whose template carries the real `baton agent` sidecar, apps that take
//! 500 ms to stop a listener, 60 listeners (lease 5 s), one `baton controller`; every start and
//! stop of every listener logged on one monotonic clock and every app sampled every 20 ms. The
//! gap of a move is the old app's stop → the new app's start of that listener.
//!
//! Target: 0 duplicates and 0 fencing-token regressions in every case; gap p99 < 250 ms for the
//! surge cases (a new pod is Ready before the old one gets SIGTERM).
#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/listener_procs/harness/mod.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use harness::app::AppConfig;
use harness::workloads::{run, Case};
use harness::{kubelet, AgentFlags, Cluster, Ns};

const LISTENERS: usize = 60;

fn pct(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
}

/// One case's figures.
struct Figures {
    case: Case,
    moves: usize,
    gaps: Vec<Duration>,
    duplicates: usize,
    duplicate_samples: u64,
    samples: u64,
    other: Vec<String>,
}

async fn measure(cluster: Arc<Cluster>, case: Case, i: usize) -> Result<Figures, String> {
    let app = AppConfig {
        stop_delay: Duration::from_millis(500),
        ..AppConfig::default()
    };
    let ns = Arc::new(Ns::new(cluster, &format!("bench-wl-{i}"), app, AgentFlags::default()).await?);
    let outcome = run(&ns, case, LISTENERS).await?;
    let a = &outcome.analysis;
    let mut gaps = a.gaps.clone();
    gaps.sort();
    let other = ns
        .violations(true)
        .into_iter()
        .filter(|v| !v.starts_with("duplicate") && !v.contains("samples saw a listener in two apps"))
        .collect();
    Ok(Figures {
        case,
        moves: outcome.moves,
        gaps,
        duplicates: a.overlaps.len(),
        duplicate_samples: a.duplicate_samples,
        samples: a.samples,
        other,
    })
}

fn rows(f: &Figures) -> Vec<common::Row> {
    let surge = matches!(f.case, Case::SurgeRestart | Case::SurgeSetImage);
    let p99 = pct(&f.gaps, 0.99);
    let gap_met = p99.is_some_and(|p| p < Duration::from_millis(250));
    vec![
        (
            format!("{}: duplicates, token regressions", f.case.describe()),
            format!(
                "{} (sampled {} of {}), {}",
                f.duplicates,
                f.duplicate_samples,
                f.samples,
                f.other.len()
            ),
            "0, 0".to_string(),
            if f.duplicates == 0 && f.duplicate_samples == 0 && f.other.is_empty() {
                "met"
            } else {
                "not met"
            },
        ),
        (
            format!(
                "{}: gap per moved listener p50 / p99 / max ({} moves)",
                f.case.describe(),
                f.gaps.len()
            ),
            format!(
                "{} / {} / {}",
                ms(pct(&f.gaps, 0.5)),
                ms(p99),
                ms(f.gaps.last().copied())
            ),
            if surge { "p99 < 250 ms" } else { "info" }.to_string(),
            match (surge, gap_met) {
                (false, _) => "",
                (true, true) => "met",
                (true, false) => "not met",
            },
        ),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cluster = match Cluster::start(kubelet()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("the simulator did not start: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "workload_handover: {LISTENERS} listeners on 3 pods of a Deployment or StatefulSet, real baton agent sidecars \
         and baton controller, apps take 500 ms to stop, 2 tokio workers"
    );
    let mut all = Vec::new();
    for (i, case) in Case::ALL.into_iter().enumerate() {
        println!("[{}/{}] {} …", i + 1, Case::ALL.len(), case.describe());
        match measure(cluster.clone(), case, i).await {
            Ok(f) => {
                println!(
                    "  {} starts after the command, {} moves, gap p50 {} p99 {} max {}; samples {}; other: {:?}",
                    f.moves,
                    f.gaps.len(),
                    ms(pct(&f.gaps, 0.5)),
                    ms(pct(&f.gaps, 0.99)),
                    ms(f.gaps.last().copied()),
                    f.samples,
                    f.other
                );
                all.extend(rows(&f));
            }
            Err(e) => {
                eprintln!("  {} failed: {e}", case.describe());
                std::process::exit(1);
            }
        }
    }
    common::print_rows(&all);
}
