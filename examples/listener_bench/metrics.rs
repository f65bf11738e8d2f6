//! Counters, differences, percentiles and the write-log breakdown used in the report.
use std::collections::BTreeMap;
use std::time::Duration;

use baton::listeners::controller::Stats;
use baton_sim::Sim;

use crate::CONTROLLER_ID;

/// The controller's own counters, as (name, value).
pub(crate) fn stats_of(s: &Stats) -> Vec<(&'static str, u64)> {
    use std::sync::atomic::Ordering::Relaxed;
    vec![
        ("reconciles", s.reconciles.load(Relaxed)),
        ("lease_creates", s.lease_creates.load(Relaxed)),
        ("lease_updates", s.lease_updates.load(Relaxed)),
        ("release_requests", s.release_requests.load(Relaxed)),
        ("conflicts", s.conflicts.load(Relaxed)),
        ("assign_conflicts", s.assign_conflicts.load(Relaxed)),
        ("status_writes", s.status_writes.load(Relaxed)),
        ("handovers", s.handovers.load(Relaxed)),
        ("takeovers", s.takeovers.load(Relaxed)),
    ]
}

pub(crate) fn stats_diff(after: &[(&'static str, u64)], before: &[(&'static str, u64)]) -> String {
    after
        .iter()
        .zip(before)
        .map(|((k, a), (_, b))| format!("{k} {}", a - b))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn diff(
    after: &BTreeMap<&'static str, u64>,
    before: &BTreeMap<&'static str, u64>,
) -> BTreeMap<&'static str, u64> {
    after
        .iter()
        .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0)))
        .collect()
}

pub(crate) fn total(m: &BTreeMap<&'static str, u64>) -> u64 {
    m.values().sum()
}

/// Nearest-rank percentile.
pub(crate) fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Writes in the simulator's write log between two instants, by (identity class, kind).
pub(crate) fn breakdown(sim: &Sim, from: std::time::Instant, to: std::time::Instant) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for w in sim.core.writes().into_iter().filter(|w| w.at >= from && w.at <= to) {
        let who = if w.identity.contains(&format!("token={CONTROLLER_ID}")) {
            "controller"
        } else if w.identity.contains("token=agent-") {
            "agents"
        } else {
            continue;
        };
        let what = if w.path.contains("/leases") {
            "Lease"
        } else if w.path.contains("/listenersets/") && w.path.ends_with("/status") {
            "ListenerSet status"
        } else if w.path.contains("/events") {
            "Event"
        } else {
            "other"
        };
        *m.entry(format!("{who} {} {what}", w.method)).or_default() += 1;
    }
    m
}
