//! The report: each phase's figures printed, and its rows of the summary table.
use std::time::Duration;

use crate::crash::Crash;
use crate::faults::{Faults, LeaseDeletes};
use crate::graceful::Graceful;
use crate::metrics::{ms, pct, total};
use crate::{CONTROLLER_ID, CRASH_LEASE, DRAIN_AFTER_HANG, FAULT_LEASE, GRACEFUL_LEASE, GRACEFUL_TARGET};

/// (figure, measured, target, result).
pub(crate) use crate::common::Row;

pub(crate) fn graceful(g: &Graceful) -> Vec<Row> {
    let mut all_gaps: Vec<Duration> = g.gaps_drain.iter().chain(&g.gaps_sigterm).copied().collect();
    all_gaps.sort();
    let renewals = g.renew_rate * g.phase.as_secs_f64();
    let ctl_total = total(&g.ctl_writes);
    let agent_total = total(&g.agent_writes);
    let per_handover_raw = (ctl_total + agent_total) as f64 / g.handovers as f64;
    let per_handover_net = (ctl_total as f64 + (agent_total as f64 - renewals).max(0.0)) / g.handovers as f64;
    println!(
        "  {} pod replacements in {:.1} s, {} handovers (controller counted {} Handover events)",
        g.rounds,
        g.phase.as_secs_f64(),
        g.handovers,
        g.handovers_counted_by_controller
    );
    println!(
        "  duplicates: {} overlapping intervals, {} fencing-token regressions",
        g.overlaps, g.token_regressions
    );
    for (what, gaps) in [
        ("all", &all_gaps),
        ("drain", &g.gaps_drain),
        ("SIGTERM", &g.gaps_sigterm),
    ] {
        println!(
            "  gap {what:<8} n={:<5} p50 {:>9}  p99 {:>9}  max {:>9}",
            gaps.len(),
            ms(pct(gaps, 0.50)),
            ms(pct(gaps, 0.99)),
            ms(gaps.last().copied().unwrap_or_default())
        );
    }
    println!("  API writes during the phase (POST/PUT/PATCH/DELETE by identity):");
    println!("    controller {CONTROLLER_ID}: {:?} = {ctl_total}", g.ctl_writes);
    println!("    agents (agent-*):           {:?} = {agent_total}", g.agent_writes);
    println!(
        "    of which renewals (quiet rate {:.1}/s × {:.1} s) ≈ {renewals:.0}",
        g.renew_rate,
        g.phase.as_secs_f64()
    );
    for (k, v) in &g.breakdown {
        println!(
            "    {k:<36} {v:>6}  ({:.2} per handover)",
            *v as f64 / g.handovers as f64
        );
    }
    println!(
        "  writes per handover: {per_handover_raw:.2} (controller + agents, renewals included), {per_handover_net:.2} without renewals"
    );

    vec![
        (
            "graceful handovers".into(),
            g.handovers.to_string(),
            format!("≥ {GRACEFUL_TARGET}"),
            if g.handovers >= GRACEFUL_TARGET { "PASS" } else { "FAIL" },
        ),
        (
            "duplicates (graceful)".into(),
            (g.overlaps + g.token_regressions).to_string(),
            "0".into(),
            if g.overlaps + g.token_regressions == 0 {
                "PASS"
            } else {
                "FAIL"
            },
        ),
        (
            "graceful gap p50 / p99 / max".into(),
            format!(
                "{} / {} / {}",
                ms(pct(&all_gaps, 0.5)),
                ms(pct(&all_gaps, 0.99)),
                ms(all_gaps.last().copied().unwrap_or_default())
            ),
            "p99 < 1 s".into(),
            if pct(&all_gaps, 0.99) < Duration::from_secs(1) {
                "PASS"
            } else {
                "FAIL"
            },
        ),
        (
            "API writes per handover (ctl + agents)".into(),
            format!("{per_handover_raw:.2} ({per_handover_net:.2} w/o renewals)"),
            "info".into(),
            "-",
        ),
        (
            format!(
                "controller writes while nothing moves ({:.1} s)",
                GRACEFUL_LEASE as f64 / 2.0
            ),
            g.ctl_quiet_writes.to_string(),
            "0 (design: status only on change)".into(),
            if g.ctl_quiet_writes == 0 {
                "PASS"
            } else {
                "FAIL (not gated)"
            },
        ),
    ]
}

pub(crate) fn crash(c: &Crash) -> Vec<Row> {
    println!(
        "  {} crashes, {} listener takeovers; duplicates: {} overlapping intervals, {} fencing-token regressions",
        c.crashes,
        c.takeovers.len(),
        c.overlaps,
        c.token_regressions
    );
    println!(
        "  takeover per listener  p50 {}  p99 {}  max {}  (min {})",
        ms(pct(&c.takeovers, 0.50)),
        ms(pct(&c.takeovers, 0.99)),
        ms(c.takeovers.last().copied().unwrap_or_default()),
        ms(c.takeovers.first().copied().unwrap_or_default())
    );
    println!(
        "  per crash (all moved)  p50 {}  max {}",
        ms(pct(&c.per_crash, 0.50)),
        ms(c.per_crash.last().copied().unwrap_or_default())
    );
    println!(
        "  grace-0 delete (info)  n={} p50 {}  max {}",
        c.grace0.len(),
        ms(pct(&c.grace0, 0.50)),
        ms(c.grace0.last().copied().unwrap_or_default())
    );
    let over = |v: &[Duration]| {
        v.iter()
            .filter(|d| **d > Duration::from_secs(CRASH_LEASE as u64 + 1))
            .count()
    };
    println!(
        "  agent hung, pod Ready (info)      n={} ({} over lease + 1 s) p50 {}  p90 {}  max {}",
        c.hung.len(),
        over(&c.hung),
        ms(pct(&c.hung, 0.50)),
        ms(pct(&c.hung, 0.90)),
        ms(c.hung.last().copied().unwrap_or_default())
    );
    println!(
        "  agent hung, drained {:.0} s later (info) n={} ({} over lease + 1 s) p50 {}  max {}",
        DRAIN_AFTER_HANG.as_secs_f64(),
        c.drained.len(),
        over(&c.drained),
        ms(pct(&c.drained, 0.50)),
        ms(c.drained.last().copied().unwrap_or_default())
    );

    crash_rows(c)
}

fn crash_rows(c: &Crash) -> Vec<Row> {
    let limit = Duration::from_secs(CRASH_LEASE as u64 + 1);
    vec![
        (
            "duplicates (crash)".into(),
            (c.overlaps + c.token_regressions).to_string(),
            "0".into(),
            if c.overlaps + c.token_regressions == 0 {
                "PASS"
            } else {
                "FAIL"
            },
        ),
        (
            format!("crash takeover p50 / p99 (lease {CRASH_LEASE} s)"),
            format!("{} / {}", ms(pct(&c.takeovers, 0.5)), ms(pct(&c.takeovers, 0.99))),
            format!("≤ {} s", limit.as_secs()),
            if pct(&c.takeovers, 0.99) <= limit && c.takeovers.last().is_some_and(|m| *m <= limit) {
                "PASS"
            } else {
                "FAIL"
            },
        ),
        (
            "crash takeover max".into(),
            ms(c.takeovers.last().copied().unwrap_or_default()),
            format!("≤ {} s", limit.as_secs()),
            if c.takeovers.last().is_some_and(|m| *m <= limit) {
                "PASS"
            } else {
                "FAIL"
            },
        ),
        (
            "takeover, agent hung in a Ready pod: p50 / max".into(),
            format!(
                "{} / {}",
                ms(pct(&c.hung, 0.5)),
                ms(c.hung.last().copied().unwrap_or_default())
            ),
            format!("≤ {} s", limit.as_secs()),
            if c.hung.last().is_some_and(|m| *m <= limit) {
                "PASS"
            } else {
                "FAIL (not gated)"
            },
        ),
        (
            format!(
                "takeover, agent hung, pod drained {:.0} s later: p50 / max",
                DRAIN_AFTER_HANG.as_secs_f64()
            ),
            format!(
                "{} / {}",
                ms(pct(&c.drained, 0.5)),
                ms(c.drained.last().copied().unwrap_or_default())
            ),
            format!("≤ {} s", limit.as_secs()),
            if c.drained.last().is_some_and(|m| *m <= limit) {
                "PASS"
            } else {
                "FAIL (not gated)"
            },
        ),
    ]
}

pub(crate) fn faults(f: &Faults) -> Vec<Row> {
    let dist = |v: &[Duration]| {
        format!(
            "n={} p50 {}  max {}  (min {})",
            v.len(),
            ms(pct(v, 0.50)),
            ms(v.last().copied().unwrap_or_default()),
            ms(v.first().copied().unwrap_or_default())
        )
    };
    let regressions = f.deleted.token_regressions + f.again.token_regressions;
    println!(
        "  duplicates: {} overlapping intervals, {} fencing-token regressions ({regressions} on the same pod)",
        f.overlaps, f.token_regressions
    );
    println!(
        "  confirmed stop: kill → running on another pod   {}",
        dist(&f.confirmed)
    );
    for (what, d) in [("hand-deleted Lease", &f.deleted), ("deleted again at once", &f.again)] {
        println!(
            "  {what}: holder stop → running again  {}; {} back on the same pod, {} on another",
            dist(&d.times),
            d.same_pod,
            d.times.len() - d.same_pod
        );
        for e in &d.slow {
            println!("    back after > 1 s: {e}");
        }
    }
    let lease = Duration::from_secs(FAULT_LEASE as u64);
    let max = |v: &[Duration]| v.last().copied().unwrap_or_default();
    let dups = f.overlaps + f.token_regressions + regressions;
    let info = |what: &str, d: &LeaseDeletes| -> Row {
        (
            format!("{what}: running again p50 / max"),
            format!(
                "{} / {} ({} of {} on the same pod)",
                ms(pct(&d.times, 0.5)),
                ms(max(&d.times)),
                d.same_pod,
                d.times.len()
            ),
            format!("info (≤ {FAULT_LEASE} s by design)"),
            "-",
        )
    };
    vec![
        (
            "duplicates (confirmed stop + hand-deleted Lease)".into(),
            dups.to_string(),
            "0".into(),
            if dups == 0 { "PASS" } else { "FAIL" },
        ),
        (
            format!("takeover after a confirmed stop p50 / max (lease {FAULT_LEASE} s)"),
            format!("{} / {}", ms(pct(&f.confirmed, 0.5)), ms(max(&f.confirmed))),
            format!("< {FAULT_LEASE} s (no expiry wait)"),
            if !f.confirmed.is_empty() && max(&f.confirmed) < lease {
                "PASS"
            } else {
                "FAIL"
            },
        ),
        info("hand-deleted Lease", &f.deleted),
        info("Lease deleted again right after its recreation", &f.again),
    ]
}
