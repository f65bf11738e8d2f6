//! The listener decision alone, without I/O: how long one pass of [`decide`] takes for a set of
//! N listeners on P pods, at rest, when one pod drains (its listeners are asked to move) and
//! when those listeners are free to be assigned again. Prints p50 / p99 per size, and beside
//! them the p50 of [`decide_full`], which decides the same looking at every listener one by one.
//!
//! `cargo run --release -p baton-controller --example decide_bench [N×P ...]` (default
//! `1000x20 10000x20 50000x100 1000x2`).
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use baton_controller::listeners::assigner::LeaseView;
use baton_controller::listeners::decide::{
    decide, decide_full, Delta, Input, LeaseFacts, LiveLease, LivenessFacts, Memory, PodFacts, Unresponsive, Wanted,
};
use tokio::time::Instant;

/// Owned facts for one decision.
struct World {
    listeners: Vec<Wanted>,
    pods: Vec<PodFacts>,
    leases: Vec<LeaseFacts>,
    liveness: BTreeMap<String, LivenessFacts>,
}

const DURATION: Duration = Duration::from_secs(10);

fn world(n: usize, p: usize, now: Instant) -> World {
    let pods: Vec<PodFacts> = (0..p)
        .map(|i| PodFacts {
            name: format!("web-{i}"),
            uid: format!("uid-web-{i}"),
            selected: true,
            eligible: true,
            ready: true,
            restarts: 0,
            weight: 1,
            revision: None,
        })
        .collect();
    let listeners: Vec<Wanted> = (0..n)
        .map(|i| Wanted {
            id: format!("account-{i:06}"),
            ..Default::default()
        })
        .collect();
    let leases = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let holder = &pods[i % p];
            LeaseFacts {
                name: format!("set-{}", l.id),
                view: LeaseView {
                    listener: l.id.clone(),
                    holder: Some(holder.name.clone()),
                    holder_uid: Some(holder.uid.clone()),
                    expired: false,
                    transitions: 1,
                    resource_version: format!("{}", 1000 + i),
                    release_requested: false,
                    renewed: true,
                    rebalancing: false,
                    held_for: Some(Duration::from_secs(60)),
                    successor: None,
                },
                observed: now,
                duration: DURATION,
                terminating: false,
                adopted: true,
                labelled_uid: Some(holder.uid.clone()),
            }
        })
        .collect();
    let liveness = pods
        .iter()
        .map(|p| {
            let facts = LivenessFacts {
                lease: Some(LiveLease {
                    name: format!("baton-agent.{}", p.uid),
                    resource_version: "1".into(),
                    registered: true,
                    fenced: false,
                    leaving: false,
                }),
                observed: Some(now),
                wakes_after: Some(DURATION),
                registration_seen: None,
            };
            (p.uid.clone(), facts)
        })
        .collect();
    World {
        listeners,
        pods,
        leases,
        liveness,
    }
}

/// A pass: [`decide`] or [`decide_full`].
type Pass = fn(&Input, &mut Memory) -> baton_controller::listeners::decide::Decision;

/// Decide `rounds` times on `w` at `now`; the pass times in µs, sorted, and the writes of one.
/// Each pass is told, as the controller tells it, that the Leases at `changed` changed since the
/// last one (`seq` numbers the updates): it sets the settled listeners aside from what the last
/// kept. The first pass of a memory reads the set whole.
fn passes(
    pass: Pass,
    (w, changed): (&World, &[usize]),
    (memory, seq): (&mut Memory, &mut u64),
    (now, started): (Instant, Instant),
    rounds: usize,
) -> (Vec<u128>, usize) {
    let (empty, unresponsive) = (BTreeSet::new(), Unresponsive::default());
    let mut times = Vec::with_capacity(rounds);
    let mut writes = 0;
    for _ in 0..rounds {
        *seq += 1;
        let input = Input {
            deleting: false,
            listeners: &w.listeners,
            keep_unknown: false,
            max_per_pod: 0,
            rebalance: None,
            under_way: &empty,
            pods: &w.pods,
            leases: &w.leases,
            liveness: &w.liveness,
            ceiling: Some(17),
            recover: None,
            unresponsive: &unresponsive,
            stopped: &empty,
            lease_duration: DURATION,
            // A set's own order of pods, as a set with a uid has.
            seed: 0x5eed,
            started,
            now,
            delta: Some(Delta {
                spec: 1,
                shape: 1,
                from: *seq - 1,
                to: *seq,
                changed,
            }),
        };
        let t = std::time::Instant::now();
        let d = pass(&input, memory);
        times.push(t.elapsed().as_micros());
        writes = d.writes.len();
    }
    times.sort_unstable();
    (times, writes)
}

fn pct(sorted: &[u128], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let sizes: Vec<(usize, usize)> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            let (n, p) = a.split_once('x')?;
            Some((n.parse().ok()?, p.parse().ok()?))
        })
        .collect();
    let sizes = if sizes.is_empty() {
        // 1,000 × 2: a pod holds 500 listeners, as at 50,000 × 100 (the same drain, a set 50 × smaller).
        vec![(1000, 20), (10_000, 20), (50_000, 100), (1000, 2)]
    } else {
        sizes
    };
    println!("| set | phase | writes | pass p50 | pass p99 | full pass p50 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    // (listeners, pods, the p50 of a drain's slower pass), per size.
    let mut drains: Vec<(usize, usize, f64)> = Vec::new();
    for (n, p) in sizes {
        let started = Instant::now();
        let now = started + Duration::from_secs(60);
        let mut w = world(n, p, now);
        let (mut memory, mut full_memory) = (Memory::default(), Memory::default());
        let (mut seq, mut full_seq) = (0, 0);
        let rounds = (2_000_000 / n).clamp(5, 200);
        let mut row = |phase: &str, w: &World, changed: &[usize]| {
            let (t, writes) = passes(decide, (w, changed), (&mut memory, &mut seq), (now, started), rounds);
            let (full, _) = passes(
                decide_full,
                (w, changed),
                (&mut full_memory, &mut full_seq),
                (now, started),
                rounds.min(20),
            );
            println!(
                "| {n} × {p} | {phase} | {writes} | {:.2} ms | {:.2} ms | {:.2} ms |",
                pct(&t, 0.5),
                pct(&t, 0.99),
                pct(&full, 0.5)
            );
            pct(&t, 0.5)
        };
        row("at rest", &w, &[]);
        // One pod drains: each of its listeners is asked to move.
        w.pods[0].eligible = false;
        let requests = row("drain: release requests", &w, &[]);
        // Its listeners are released: each is assigned to another pod. (Each pass is told they
        // changed.)
        let mut released = Vec::new();
        for (i, l) in w.leases.iter_mut().enumerate() {
            if l.view.holder.as_deref() == Some("web-0") {
                l.view.holder = None;
                l.view.renewed = false;
                released.push(i);
            }
        }
        let assignments = row("drain: assignments", &w, &released);
        drains.push((n, p, requests.max(assignments)));
    }
    print_target(&drains);
}

/// The target beside the figure: a pass that moves one pod's listeners at the largest size within
/// 2 × of one at the smallest (the slower of a drain's two passes, p50).
fn print_target(drains: &[(usize, usize, f64)]) {
    let (Some(small), Some(large)) = (drains.iter().min_by_key(|d| d.0), drains.iter().max_by_key(|d| d.0)) else {
        return;
    };
    if small.0 == large.0 || small.2 <= 0.0 {
        return;
    }
    let ratio = large.2 / small.2;
    println!("\n| target | figure | result |");
    println!("| --- | --- | --- |");
    println!(
        "| a pass moving one pod's listeners at {} × {} within 2 × of one at {} × {} | {ratio:.1} × ({:.2} / {:.2} ms) | {} |",
        large.0,
        large.1,
        small.0,
        small.1,
        large.2,
        small.2,
        if ratio <= 2.0 { "met" } else { "not met" }
    );
    // The same drain in a smaller set: what of the pass still grows with the set.
    if let Some(same) = drains
        .iter()
        .filter(|d| d.0 < large.0 && d.0 * large.1 == large.0 * d.1 && d.2 > 0.0)
        .min_by_key(|d| d.0)
    {
        println!(
            "| (for comparison) the same drain, {} listeners, in a set of {} × {} | {:.1} × ({:.2} / {:.2} ms) | |",
            large.0 / large.1.max(1),
            same.0,
            same.1,
            large.2 / same.2,
            large.2,
            same.2
        );
    }
}
