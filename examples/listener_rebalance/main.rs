//! Evening out after a scale-out: one set of N listeners on P pods, each pod with a real `baton
//! agent` sidecar and an app that takes `STOP_MS` (default 200) to stop a listener, under a real
//! `baton controller` (the shipped leader-election timings), all on the simulator on loopback.
//! Then P more pods join at once, and the set (`Balanced`, `maxSkew` 1, `maxConcurrentMoves`
//! 10 %, `minResidenceSeconds` 10) evens out.
//!
//! `cargo run --release --example listener_rebalance [NxP ...]` (default `2000x5 10000x10`);
//! `BATON_TEST_BIN` names the `baton` binary to run; `MOVES` sets `maxConcurrentMoves` (`200` or
//! `2%`); `SCALE_LOGS=<dir>` keeps the controller's log and the agent logs of two old pods and of
//! the first new one there (`BATON_CONTROLLER_LOG` / `BATON_AGENT_LOG` set their `RUST_LOG`).
//!
//! It prints, per size: the listeners moved against the fewest that could even the pods out, the
//! time from the new pods' creation (and from the last one turning Ready) until the status says
//! balanced with nothing on the move, the most listeners on the move in any sample of the status,
//! the gap per moved listener (old app stopped → new app started), the API writes by client,
//! resource and verb during the rebalance, and duplicates / fencing-token regressions (which must
//! be 0); then every size's figures beside their targets (the fewest moves, gap p99 < 250 ms,
//! no violation): met or not met.
#[path = "../../tests/listener_procs/harness/mod.rs"]
mod harness;
#[allow(dead_code)] // (shared with listener_scale, which uses all of it)
#[path = "../listener_scale/measure.rs"]
mod measure;

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use harness::app::AppConfig;
use harness::{kubelet, listeners, wait_for, AgentFlags, Cluster, Ns, R};
use measure::{pct, show};

const SET: &str = "accounts";
const RESIDENCE_SECS: u64 = 10;

fn sizes() -> Vec<(usize, usize)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = if args.is_empty() {
        ["2000x5", "10000x10"].map(String::from).to_vec()
    } else {
        args
    };
    args.iter()
        .filter_map(|a| {
            let (n, p) = a.split_once('x')?;
            Some((n.parse().ok()?, p.parse().ok()?))
        })
        .collect()
}

/// The fewest moves that bring `loads` (listeners per pod, the new pods included) within one of
/// each other: the excess of every pod over the larger even share.
fn fewest_moves(loads: &[usize]) -> usize {
    let (n, p) = (loads.iter().sum::<usize>(), loads.len().max(1));
    let (base, extra) = (n / p, n % p);
    // The `extra` most loaded pods may keep base + 1.
    let mut sorted = loads.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted
        .iter()
        .enumerate()
        .map(|(i, l)| l.saturating_sub(base + usize::from(i < extra)))
        .sum()
}

struct Row {
    line: String,
    /// Its figures beside their targets: rows of the targets table.
    targets: Vec<String>,
    clean: bool,
}

/// A row of the targets table.
fn target(size: &str, figure: &str, measured: String, target: &str, met: bool) -> String {
    let result = if met { "met" } else { "not met" };
    format!("| {size} | {figure} | {measured} | {target} | {result} |")
}

async fn run(n: usize, p: usize) -> R<Row> {
    println!("\n## {n} listeners, {p} → {} pods", 2 * p);
    let cluster = Cluster::start(kubelet()).await?;
    let app = AppConfig {
        stop_delay: Duration::from_millis(
            std::env::var("STOP_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(200),
        ),
        ..Default::default()
    };
    let ns = Ns::new(cluster, "rebalance", app, AgentFlags::default()).await?;
    ns.use_shipped_election();
    let ctl = ns.start_controller().await?;
    let pod = |i: usize| format!("p{i:03}");
    for i in 0..p {
        ns.create_pod(&pod(i)).await?;
    }
    let (spec, keys) = listeners(SET, n);
    let mut set = harness::listenersets::set(&ns.name, SET, harness::APP, spec, 15);
    let mut rebalance = json!({"policy": "Balanced", "minResidenceSeconds": RESIDENCE_SECS});
    if let Ok(moves) = std::env::var("MOVES") {
        rebalance["maxConcurrentMoves"] = moves.parse::<i64>().map_or_else(|_| json!(moves), |n| json!(n));
    }
    let rebalance: baton::api::listenerset::RebalanceSpec =
        serde_json::from_value(rebalance).map_err(|e| e.to_string())?;
    let allowed = rebalance.max_moves(n).map_err(|e| e.to_string())?;
    set.spec.rebalance = Some(rebalance);
    ns.sets()
        .create(&Default::default(), &set)
        .await
        .map_err(|e| e.to_string())?;
    ns.settled(SET, n, "all running on the first pods", Duration::from_secs(900))
        .await?;
    // Every listener resident long enough to move.
    tokio::time::sleep(Duration::from_secs(RESIDENCE_SECS)).await;
    let old: Vec<String> = (0..p).map(pod).collect();
    let mut loads: Vec<usize> = old.iter().map(|o| measure::on_pod(&ns, o).len()).collect();
    loads.extend(std::iter::repeat_n(0, p));
    let fewest = fewest_moves(&loads);
    let before = measure::writes(&ns);
    let t0 = Instant::now();
    for i in p..2 * p {
        ns.create_pod(&pod(i)).await?;
    }
    // (when no pod was waited for any more, the most on the move in a sample)
    let seen = std::sync::Mutex::new((None::<Duration>, 0i64));
    let seen = &seen;
    let ns_ref = &ns;
    let status = wait_for(
        "balanced, nothing on the move",
        Duration::from_secs(900),
        || async move {
            let s = ns_ref.sets().get_status(SET).await.ok()?.status?;
            let r = s.rebalance.clone()?;
            let mut g = seen.lock().unwrap_or_else(|p| p.into_inner());
            g.1 = g.1.max(i64::from(r.moves_in_progress));
            if g.0.is_none() && r.waiting.as_deref().is_none_or(|w| !w.starts_with("pod ")) {
                g.0 = Some(t0.elapsed());
            }
            (r.skew <= 1 && r.moves_in_progress == 0 && s.running as usize == n).then_some(s)
        },
    )
    .await?;
    let (ready_at, most_moving) = *seen.lock().unwrap_or_else(|p| p.into_inner());
    let balanced = t0.elapsed();
    if let Some(dir) = std::env::var_os("SCALE_LOGS") {
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::write(
            dir.join(format!("controller-{n}x{p}.log")),
            ns.controller_log(&ctl).unwrap_or_default(),
        );
        for pod in ["p000", "p001", &format!("p{p:03}")] {
            let log = ns.pod(pod).map(|p| p.logs()).unwrap_or_default();
            let _ = std::fs::write(dir.join(format!("agent-{pod}-{n}x{p}.log")), log);
        }
    }
    ns.wait_running("every listener running once", &keys, Duration::from_secs(300), |_| true)
        .await?;
    let writes = measure::delta(&measure::writes(&ns), &before);
    let log = ns.log.snapshot();
    let mut gaps: Vec<Duration> = old
        .iter()
        .flat_map(|o| measure::moves(&log, o, t0).into_values())
        .map(|(stop, start)| start.duration_since(stop))
        .collect();
    gaps.sort();
    let moved = gaps.len();
    let v = ns.violations(true);
    println!(
        "moved {moved} (fewest possible {fewest}); balanced {} after the pods were created ({} after the last turned Ready); \
         most on the move in a sample {most_moving} (max {}); gap p50 {} p99 {} max {}; skew {}; writes: {}; violations {}",
        show(balanced),
        show(balanced.saturating_sub(ready_at.unwrap_or_default())),
        allowed,
        show(pct(&gaps, 0.5)),
        show(pct(&gaps, 0.99)),
        show(pct(&gaps, 1.0)),
        status.rebalance.map_or(-1, |r| r.skew),
        measure::lines(&writes, None).join(", "),
        v.len()
    );
    for x in v.iter().take(10) {
        println!("  violation: {x}");
    }
    let line = format!(
        "| {n} | {p} → {} | {moved} ({fewest}) | {} ({}) | {most_moving} ({}) | {} / {} / {} | {} | {} |",
        2 * p,
        show(balanced),
        show(balanced.saturating_sub(ready_at.unwrap_or_default())),
        allowed,
        show(pct(&gaps, 0.5)),
        show(pct(&gaps, 0.99)),
        show(pct(&gaps, 1.0)),
        writes.values().sum::<u64>(),
        v.len()
    );
    let size = format!("{n}, {p} → {} pods", 2 * p);
    let p99 = pct(&gaps, 0.99);
    let targets = vec![
        target(
            &size,
            "listeners moved",
            format!("{moved} (fewest {fewest})"),
            "the fewest",
            moved == fewest,
        ),
        target(
            &size,
            "gap p99",
            show(p99),
            "< 250 ms",
            p99 < Duration::from_millis(250),
        ),
        target(
            &size,
            "most on the move in a status sample",
            most_moving.to_string(),
            &format!("≤ maxConcurrentMoves = {allowed}"),
            most_moving <= i64::from(allowed),
        ),
        target(&size, "violations", v.len().to_string(), "0", v.is_empty()),
    ];
    Ok(Row {
        line,
        targets,
        clean: v.is_empty() && moved == fewest,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    let mut clean = true;
    for (n, p) in sizes() {
        match run(n, p).await {
            Ok(row) => {
                clean &= row.clean;
                rows.push(row.line);
                targets.extend(row.targets);
            }
            Err(e) => {
                eprintln!("{n}x{p}: failed: {e}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "\n| listeners | pods | moved (fewest) | balanced after creation (after last Ready) | most on the move (max) | gap p50 / p99 / max | API writes | violations |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
    println!("\n| size | figure | measured | target | result |");
    println!("| --- | --- | --- | --- | --- |");
    for row in targets {
        println!("{row}");
    }
    if !clean {
        std::process::exit(1);
    }
}
