//! ListenerSet handover benchmark: graceful handovers during rolling replacement, and crash
//! takeovers, measured end to end on the simulator.
//!
//! Run with `cargo run --release --example listener_bench [graceful] [crash] [faults]` (no
//! argument: every phase; with arguments, only the phases named).
//!
//! Everything runs in this process on loopback: the `baton-sim` API server and kubelet, the
//! ListenerSet controller (`baton::operator::run_listeners`, client identity `ls-ctl-bench`) and one
//! agent (`baton::agent::Agent`, client identity `agent-<pod>`) per simulated pod, attached with
//! `sim.kubelet.attach`. The "application" of each pod acknowledges every stop at once and logs
//! every listener start/stop on one shared monotonic clock; duplicates and gaps come from that
//! log.
//!
//! 1. **Graceful handovers** (lease 15 s, the default): 10 pods, 200 listeners. Pods are
//!    replaced one at a time the way a rolling deploy does it, alternating two styles:
//!    *drain* (create the replacement, wait until Ready, annotate the old pod `baton.dev/drain`,
//!    wait until it holds nothing, delete it) and *SIGTERM* (create the replacement, wait until
//!    Ready, delete the old pod with a 30 s grace period: its agent stops and releases
//!    everything). Rounds continue until ≥ 1,000 handovers have been logged.
//!    * *handover* = consecutive intervals of one listener on two different pods, the first ended
//!      by a stop the application acknowledged;
//!    * *gap* = the application on the old pod stopped → the application on the new pod started
//!      (this contains the release write, so it bounds "release → new holder running" from
//!      above);
//!    * *API writes* = POST/PUT/PATCH/DELETE counted by the simulator per client identity
//!      (`sim.core.request_count`) for the controller and all agents during the phase; the
//!      agents' Lease renewals, which happen whether or not anything moves, are measured in a
//!      quiet window before the phase and reported separately. The bench driver's own writes
//!      (pod create/annotate/delete, i.e. what a Deployment/Rollout controller would do) are
//!      not counted.
//! 2. **Crash takeovers** (lease 3 s): a fresh simulator, 10 pods, 200 listeners. One pod at a
//!    time, its agent is killed with `sim.kubelet.crash` (no release) and the restarted container
//!    is made to hang (a dead agent in a pod that stays Ready), so the takeover has to wait for
//!    Lease expiry. Takeover time = the crash → the listener started on another pod. Rounds
//!    continue until ≥ 100 listener takeovers and ≥ 10 crashes. A few pods deleted with grace 0
//!    are measured too (information only: the holder pod is gone, no expiry wait).
//! 3. **Confirmed stops and hand-deleted Leases** (lease 15 s): a fresh simulator, 10 pods, 200
//!    listeners. *Confirmed stop*: the busiest pod's agent is killed (`sim.kubelet.crash`, no
//!    release; the restarted container runs no agent), then the pod is deleted gracefully: the
//!    container exits on SIGTERM, the kubelet reports it terminated and removes the pod, which
//!    proves the listeners stopped. Takeover = the kill (the old holder's last running moment) →
//!    the listener started on another pod; a few rounds. *Hand-deleted Lease*: the Leases of a
//!    few running listeners, each on another live pod, are deleted at once; their holders stop
//!    them (the Lease is gone) and the controller recreates each for the same pod with the next
//!    token (or holds it one lease duration). Time = the holder's stop → the listener running
//!    again, and on which pod; a few rounds, then five Leases deleted again three times, each
//!    time as soon as their listeners run again. Both: duplicates and fencing-token regressions
//!    (target 0), including a restart on the same pod whose token did not go up.
#[path = "../common/mod.rs"]
mod common;
mod crash;
mod faults;
mod graceful;
mod log;
mod metrics;
mod report;
#[path = "../../tests/support/wait.rs"]
mod wait;
mod world;

use std::time::Duration;

// The bench parameters, shared by the phases.
const NS: &str = "default";
const AGENT_LABEL: &str = "baton-agent";
const CONTROLLER_ID: &str = "ls-ctl-bench";
const PODS: usize = 10;
const LISTENERS: usize = 200;
const GRACEFUL_LEASE: i32 = 15;
const GRACEFUL_TARGET: usize = 1_000;
const CRASH_LEASE: i32 = 3;
const CRASH_TARGET: usize = 100;
const MIN_CRASHES: usize = 10;
const GRACE0_ROUNDS: usize = 3;
const HANG_ROUNDS: usize = 3;
const DRAIN_AFTER_HANG: Duration = Duration::from_secs(2);
const FAULT_LEASE: i32 = 15;
const CONFIRMED_ROUNDS: usize = 3;
const LEASE_DELETE_ROUNDS: usize = 3;
const LEASE_DELETES_PER_ROUND: usize = 5;
const AGAIN_TIMES: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os("BATON_BENCH_LOG").is_some() {
        baton::telemetry::init(baton::telemetry::LogFormat::Pretty);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    const PHASES: [&str; 3] = ["graceful", "crash", "faults"];
    if let Some(bad) = args.iter().find(|a| !PHASES.contains(&a.as_str())) {
        eprintln!("unknown phase {bad:?}; phases: {}", PHASES.join(", "));
        std::process::exit(64);
    }
    let run = |p: &str| args.is_empty() || args.iter().any(|a| a == p);
    let started = std::time::Instant::now();
    println!("listener_bench: {PODS} pods, {LISTENERS} listeners, simulator on loopback, 2 tokio workers");
    let mut rows = Vec::new();
    if run("graceful") {
        println!("[graceful] handovers (lease {GRACEFUL_LEASE} s), pods replaced one at a time, drain / SIGTERM alternating …");
        let g = graceful::graceful().await.unwrap_or_else(|e| fail("graceful", e));
        rows.extend(report::graceful(&g));
    }
    if run("crash") {
        println!("[crash] takeovers (lease {CRASH_LEASE} s): sim.kubelet.crash, restarted container hangs …");
        let c = crash::crashes().await.unwrap_or_else(|e| fail("crash", e));
        rows.extend(report::crash(&c));
    }
    if run("faults") {
        println!("[faults] confirmed stops and hand-deleted Leases (lease {FAULT_LEASE} s) …");
        let f = faults::faults().await.unwrap_or_else(|e| fail("faults", e));
        rows.extend(report::faults(&f));
    }
    common::print_rows(&rows);
    println!();
    println!(
        "command: listener_bench {}  ({} build, total {:.1} s)",
        args.join(" "),
        if cfg!(debug_assertions) { "debug" } else { "release" },
        started.elapsed().as_secs_f64()
    );
    // Rows marked "(not gated)" are findings, not the benchmark's own targets.
    if rows.iter().any(|r| r.3 == "FAIL") {
        std::process::exit(2);
    }
}

fn fail(phase: &str, e: String) -> ! {
    eprintln!("{phase} phase failed: {e}");
    std::process::exit(1);
}
