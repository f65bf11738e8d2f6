//! The targets of docs/benchmarks-listeners.md ("ListenerSets at scale"), judged against one
//! size's figures and printed side by side with them after the run.
use std::time::Duration;

use super::measure::{pct, show, total};
use super::phases::{Moved, Rest, Start};

/// One figure against its target.
pub struct Check {
    pub size: String,
    pub figure: &'static str,
    pub measured: String,
    pub target: String,
    pub met: bool,
}

/// What one size measured, as the targets read it.
pub struct Figures<'a> {
    pub listeners: usize,
    pub pods: usize,
    pub sets: usize,
    pub lease: i32,
    pub start: &'a Start,
    pub rest: &'a Rest,
    pub drain: &'a Moved,
    pub kill: &'a Moved,
    pub duplicate_samples: u64,
    pub violations: usize,
}

/// The controller's RSS at rest a size must stay under, where the targets name one.
fn rss_target_mib(listeners: usize) -> Option<f64> {
    match listeners {
        10_000 => Some(48.0),
        50_000 => Some(200.0),
        _ => None,
    }
}

/// The controller's leader election period (`--retry-period`, as the harness runs it): its one
/// write at rest.
const RETRY_PERIOD: f64 = 2.0;

/// The writes at rest against their bounds: the agents' (one liveness renewal per pod every
/// quarter lease) and the controller's (its leader-election Lease only). A window of `secs`
/// holds at most ⌊secs ÷ period⌋ + 1 writes of something written every period, so the counts
/// are judged against that, the rates shown.
fn at_rest(f: &Figures, bound: f64) -> Vec<(&'static str, String, String, bool)> {
    let secs = f.rest.secs;
    let (agents, controller) = (total(&f.rest.writes, "agents"), total(&f.rest.writes, "controller"));
    let renewal = f64::from(f.lease) / 4.0;
    let agents_max = f.pods as f64 * ((secs / renewal).floor() + 1.0);
    let controller_max = (secs / RETRY_PERIOD).floor() + 1.0;
    vec![
        (
            "agent writes/s at rest",
            format!("{:.2}", agents as f64 / secs),
            format!("≤ pods × 4 / lease = {bound:.2} (≤ {agents_max:.0} in {secs:.0} s)"),
            agents as f64 <= agents_max,
        ),
        (
            "controller writes/s at rest",
            format!("{:.2}", controller as f64 / secs),
            format!(
                "its leader election only, {:.2} (≤ {controller_max:.0} in {secs:.0} s)",
                1.0 / RETRY_PERIOD
            ),
            controller as f64 <= controller_max,
        ),
    ]
}

/// Every target that applies to `f`'s size.
pub fn judge(f: &Figures) -> Vec<Check> {
    let size = match f.sets {
        1 => format!("{} × {}", f.listeners, f.pods),
        s => format!("{} × {} in {s} sets", f.listeners, f.pods),
    };
    let check = |figure, measured: String, target: String, met| Check {
        size: size.clone(),
        figure,
        measured,
        target,
        met,
    };
    let lease = Duration::from_secs(u64::try_from(f.lease).unwrap_or(15));
    let bound = f.pods as f64 * 4.0 / f64::from(f.lease);
    let drain_p99 = pct(&f.drain.times, 0.99);
    let kill_max = pct(&f.kill.times, 1.0);
    let mut out = Vec::new();
    if f.listeners >= 50_000 && f.sets == 1 {
        let all = f.start.apps_all_running;
        out.push(check(
            "all running after creation",
            show(all),
            "≤ 60 s".into(),
            all <= Duration::from_secs(60),
        ));
    }
    out.extend(
        at_rest(f, bound)
            .into_iter()
            .map(|(figure, measured, target, met)| check(figure, measured, target, met)),
    );
    if f.sets > 1 {
        let cpu = f.rest.controller.max_cpu();
        out.push(check(
            "controller CPU at rest",
            format!("{cpu:.2} % of a core"),
            "< 1 % of a core".into(),
            cpu < 1.0,
        ));
    }
    if let Some(mib) = rss_target_mib(f.listeners).filter(|_| f.sets == 1) {
        let rss = f.rest.controller.max_rss_mib();
        out.push(check(
            "controller RSS at rest",
            format!("{rss:.1} MiB"),
            format!("< {mib:.0} MiB"),
            rss < mib,
        ));
    }
    out.push(check(
        "drain: all running elsewhere",
        format!("{} ({} listeners)", show(f.drain.all_moved), f.drain.listeners),
        "≤ 1 s".into(),
        f.drain.all_moved <= Duration::from_secs(1),
    ));
    out.push(check(
        "drain: gap p99",
        show(drain_p99),
        "< 250 ms".into(),
        drain_p99 < Duration::from_millis(250),
    ));
    out.push(check(
        "SIGKILLed agent: takeover max",
        format!("{} ({} listeners)", show(kill_max), f.kill.listeners),
        format!("≤ lease + 1 s = {}", show(lease + Duration::from_secs(1))),
        kill_max <= lease + Duration::from_secs(1),
    ));
    out.push(check(
        "duplicates / violations",
        format!("{} / {}", f.duplicate_samples, f.violations),
        "0 / 0".into(),
        f.duplicate_samples == 0 && f.violations == 0,
    ));
    out
}

/// The table of every size's checks.
pub fn print(checks: &[Check]) {
    println!("\n| size | figure | measured | target | result |");
    println!("| --- | --- | --- | --- | --- |");
    for c in checks {
        let result = if c.met { "met" } else { "not met" };
        println!(
            "| {} | {} | {} | {} | {result} |",
            c.size, c.figure, c.measured, c.target
        );
    }
}
