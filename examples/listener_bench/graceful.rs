//! Phase 1: graceful handovers (drain and SIGTERM) during rolling pod replacement.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use baton::api::pod::DRAIN_ANNOTATION;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::log::{End, Interval, Log};
use crate::metrics::{breakdown, diff, stats_diff, stats_of, total};
use crate::world::running_world;
use crate::{CONTROLLER_ID, GRACEFUL_LEASE, GRACEFUL_TARGET};

pub(crate) struct Graceful {
    pub(crate) rounds: usize,
    pub(crate) handovers: usize,
    pub(crate) gaps_drain: Vec<Duration>,
    pub(crate) gaps_sigterm: Vec<Duration>,
    pub(crate) overlaps: usize,
    pub(crate) token_regressions: usize,
    pub(crate) phase: Duration,
    pub(crate) ctl_writes: BTreeMap<&'static str, u64>,
    pub(crate) agent_writes: BTreeMap<&'static str, u64>,
    pub(crate) renew_rate: f64,
    pub(crate) ctl_quiet_writes: u64,
    pub(crate) breakdown: BTreeMap<String, u64>,
    pub(crate) handovers_counted_by_controller: u64,
}

pub(crate) async fn graceful() -> Result<Graceful, String> {
    let (mut w, mut live) = running_world(GRACEFUL_LEASE).await?;
    println!("  initial spread: {:?}", w.load().values().collect::<Vec<_>>());

    // Quiet window: what the agents write when nothing moves (Lease renewals).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let quiet = Duration::from_millis(GRACEFUL_LEASE as u64 * 1000 / 2); // two renewal periods
    let (a0, c0) = (w.writes("token=agent-"), w.writes(&format!("token={CONTROLLER_ID}")));
    let q0 = std::time::Instant::now();
    let qs0 = stats_of(&w.stats);
    tokio::time::sleep(quiet).await;
    let (a1, c1) = (w.writes("token=agent-"), w.writes(&format!("token={CONTROLLER_ID}")));
    let quiet_breakdown = breakdown(&w.sim, q0, std::time::Instant::now());
    let renew_rate = total(&diff(&a1, &a0)) as f64 / quiet.as_secs_f64();
    let ctl_quiet_writes = total(&diff(&c1, &c0));
    println!(
        "  quiet window {:.1} s: agents {} writes ({renew_rate:.1}/s, renewals), controller {ctl_quiet_writes}",
        quiet.as_secs_f64(),
        total(&diff(&a1, &a0))
    );
    println!("    quiet-window writes: {quiet_breakdown:?}");
    println!(
        "    controller counters in the quiet window: {}",
        stats_diff(&stats_of(&w.stats), &qs0)
    );

    let mut mode_of_old: HashMap<String, &'static str> = HashMap::new();
    let a_before = w.writes("token=agent-");
    let c_before = w.writes(&format!("token={CONTROLLER_ID}"));
    let handovers_before = w.stats.handovers.load(std::sync::atomic::Ordering::Relaxed);
    let log_start = w.log.snapshot().len();
    let gs0 = stats_of(&w.stats);
    let t0 = Instant::now();
    let std0 = std::time::Instant::now();
    let mut rounds = 0;
    let count_handovers = |log: &Log| -> usize {
        let snap = log.snapshot();
        let mut by: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
        for i in &snap {
            by.entry(i.listener.as_str()).or_default().push(i);
        }
        by.values()
            .map(|is| {
                is.windows(2)
                    .filter(|w| w[0].pod != w[1].pod && matches!(w[0].end, Some((_, End::Stopped(_)))))
                    .count()
            })
            .sum()
    };
    while count_handovers(&w.log) < GRACEFUL_TARGET && rounds < 200 {
        let old = live.remove(0);
        let mode = if rounds % 2 == 0 { "drain" } else { "sigterm" };
        mode_of_old.insert(old.clone(), mode);
        let new = w.create_pod().await?;
        w.wait_ready(&new).await?;
        live.push(new);
        // Give the controller's pod watch a moment to see the new pod Ready (as a Rollout's
        // make-before-break would, having waited for Ready itself).
        tokio::time::sleep(Duration::from_millis(20)).await;
        if mode == "drain" {
            let patch = json!({"metadata": {"annotations": {DRAIN_ANNOTATION: "bench"}}});
            w.pods()
                .patch(&old, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| e.to_string())?;
            w.wait_all_running(&format!("{old} drained"), Duration::from_secs(15), |p| p != old)
                .await?;
            w.delete_pod(&old, 30).await?;
        } else {
            w.delete_pod(&old, 30).await?;
            w.wait_all_running(&format!("{old} released on SIGTERM"), Duration::from_secs(15), |p| {
                p != old
            })
            .await?;
        }
        rounds += 1;
    }
    let phase = t0.elapsed();
    // Let the last writes (status, events) land before reading the counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let std1 = std::time::Instant::now();
    let ctl_writes = diff(&w.writes(&format!("token={CONTROLLER_ID}")), &c_before);
    let agent_writes = diff(&w.writes("token=agent-"), &a_before);
    let handovers_counted_by_controller =
        w.stats.handovers.load(std::sync::atomic::Ordering::Relaxed) - handovers_before;

    let snap = w.log.snapshot();
    let mut by: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
    for i in &snap {
        by.entry(i.listener.as_str()).or_default().push(i);
    }
    let (mut gaps_drain, mut gaps_sigterm) = (Vec::new(), Vec::new());
    let mut handovers = 0;
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut token_steps: BTreeMap<i64, usize> = BTreeMap::new();
    for is in by.values_mut() {
        is.sort_by_key(|i| i.start);
        for pair in is.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.pod == b.pod {
                continue;
            }
            let Some((end, End::Stopped(why))) = &a.end else {
                continue;
            };
            handovers += 1;
            let why = why.split(':').next().unwrap_or_default().to_string();
            *reasons.entry(why).or_default() += 1;
            *token_steps.entry(i64::from(b.token) - i64::from(a.token)).or_default() += 1;
            let gap = b.start.saturating_duration_since(*end);
            match mode_of_old.get(&a.pod).copied() {
                Some("drain") => gaps_drain.push(gap),
                _ => gaps_sigterm.push(gap),
            }
        }
    }
    let _ = log_start;
    println!(
        "  controller counters in the phase: {}",
        stats_diff(&stats_of(&w.stats), &gs0)
    );
    println!("  stop reasons of handed-over listeners: {reasons:?}");
    println!("  fencing token step at handover (new - old → count): {token_steps:?}");
    gaps_drain.sort();
    gaps_sigterm.sort();
    let (overlaps, token_regressions) = w.log.duplicates();
    let breakdown = breakdown(&w.sim, std0, std1);
    w.stop().await;
    Ok(Graceful {
        rounds,
        handovers,
        gaps_drain,
        gaps_sigterm,
        overlaps,
        token_regressions,
        phase,
        ctl_writes,
        agent_writes,
        renew_rate,
        ctl_quiet_writes,
        breakdown,
        handovers_counted_by_controller,
    })
}
