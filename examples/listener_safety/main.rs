//! Listener safety benchmark: what operators and clusters do to listeners, with real
//! processes, measured for duplicates and fencing-token regressions.
//!
//! Run with `cargo run --release --example listener_safety` (after `cargo build --release --bin
//! baton`: the sidecars and controllers are that binary).
//!
//! Everything runs against one in-process simulator, through the harness of
//! `tests/listener_procs` (real `baton agent` sidecars attached to the simulated pods, real
//! `baton controller` processes with leader election, an app per pod beside its sidecar, every
//! start and stop logged on one monotonic clock and every app sampled every 20 ms, every Lease
//! change recorded from the simulator's store):
//!
//! 1. **Hand-deleted Leases**: 4 pods, a 40-listener set (lease 5 s), HTTP apps that take 1 s to
//!    stop a listener. `kubectl delete lease -l baton.dev/listenerset=hand` (real kubectl), 20
//!    times, each time waiting until every listener runs once again on the pod its Lease names.
//! 2. **Churn**: 3 pods × 30 listeners (lease 5 s), file-only apps (they read
//!    `listeners.json` every 50 ms and honour `validUntil`; 200 ms to stop; the sidecars'
//!    ack timeout 1 s), two controllers. For 3 minutes, one action every 1-2 s: a pod replaced
//!    (its replacement Ready first; 20% force-deleted, its containers running on for 2 s, the
//!    rest deleted gracefully), a sidecar SIGTERMed alone and restarted, a sidecar SIGKILLed and
//!    restarted after the lease + 1 s, a controller SIGKILLed and replaced. Then every sidecar is
//!    back and every listener must run once.
//!
//! 3. **A flaky API server**: 3 pods × 30 listeners (lease 5 s), the same file-only apps, one
//!    controller; 20 % of the sidecars' and the controller's requests answered 500
//!    (`BATON_FLAKY_RATE`, `BATON_FLAKY_CODES`) while, for 60 s (`BATON_FLAKY_SECONDS`), a pod is
//!    replaced or a sidecar SIGTERMed and restarted, each time once every listener runs again.
//!    The handover gap of each listener that stopped: p90 < 2 s, max ≤ lease + 2 s.
//!
//! `listener_safety [hand] [churn] [flaky]` runs those phases only (no argument: all three).
//!
//! Targets: 0 duplicates (no listener in two apps at any moment: exact intervals and 20 ms
//! samples), 0 fencing-token regressions (apps and Leases), nothing assigned to a pod after it
//! was force-deleted.
#[path = "../common/mod.rs"]
mod common;
mod flaky;
#[path = "../../tests/listener_procs/harness/mod.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use baton::api::listenerset::{EVENT_LEASE_RECREATED, EVENT_TAKEOVER, LISTENERSET_LABEL};
use harness::app::{AppConfig, Mode};
use harness::{kubelet, listeners, AgentFlags, Cluster, Ns, R};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(120);

/// A run's safety figures.
struct Safety {
    duplicates: usize,
    duplicate_samples: u64,
    samples: u64,
    token_regressions: usize,
    other: Vec<String>,
    starts: usize,
}

fn safety(ns: &Ns) -> Safety {
    let a = ns.log.analyse();
    // What a failure looks like, for whoever reads the report.
    for o in a.overlaps.iter().take(5) {
        println!("  duplicate: {o}");
    }
    for n in a.duplicate_notes.iter().take(3) {
        println!("  sampled twice: {n}");
    }
    let rules = ns.violations(true);
    let token_regressions = a.token_regressions.len() + rules.iter().filter(|v| v.starts_with("token of")).count();
    let other = rules
        .into_iter()
        .filter(|v| !v.starts_with("token of") && !v.starts_with("duplicate") && !v.starts_with("app token"))
        .filter(|v| !v.contains("samples saw a listener in two apps"))
        .collect();
    Safety {
        duplicates: a.overlaps.len(),
        duplicate_samples: a.duplicate_samples,
        samples: a.samples,
        token_regressions,
        other,
        starts: ns.log.starts(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn pct(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Hand {
    rounds: usize,
    settle: Vec<Duration>,
    recreated_events: usize,
    takeover_events: usize,
    safety: Safety,
}

async fn hand_deletions(cluster: Arc<Cluster>) -> R<Hand> {
    let app = AppConfig {
        mode: Mode::Http,
        stop_delay: Duration::from_secs(1),
        ..AppConfig::default()
    };
    let agent = AgentFlags {
        safety_margin: Some(2.0),
        ..AgentFlags::default()
    };
    let ns = Ns::new(cluster.clone(), "hand", app, agent).await?;
    let kubectl = cluster.kubectl();
    ns.start_controller().await?;
    for i in 0..4 {
        ns.create_pod(&format!("h{i}")).await?;
    }
    let (spec, _) = listeners("hand", 40);
    ns.create_set("hand", spec, 5).await?;
    let mut before = ns.settled("hand", 40, "40 listeners running", LONG).await?;
    let mut settle = Vec::new();
    for round in 1..=20 {
        let t0 = Instant::now();
        let run = kubectl
            .run(&[
                "delete",
                "lease",
                "-n",
                "hand",
                "-l",
                &format!("{LISTENERSET_LABEL}=hand"),
                "--wait=false",
            ])
            .await;
        if run.code != 0 {
            return Err(format!("round {round}: {run}"));
        }
        let prior = before.clone();
        harness::wait_for(&format!("round {round}: every Lease back"), LONG, || {
            let (ns, prior) = (&ns, &prior);
            async move {
                let now = ns.holders("hand").await.ok()?;
                prior
                    .iter()
                    .all(|(id, (_, t))| now.get(id).is_some_and(|(h, t2)| h.is_some() && t2 > t))
                    .then_some(())
            }
        })
        .await
        .map_err(|e| {
            let now = futures::executor::block_on(ns.holders("hand"));
            format!("{e}\nkubectl: {run}\nnow: {now:?}")
        })
        .unwrap_or_else(|e| panic!("{e}"));
        before = ns
            .settled("hand", 40, &format!("round {round}: all running again"), LONG)
            .await?;
        settle.push(t0.elapsed());
    }
    let reasons = kubectl
        .run(&["get", "events", "-n", "hand", "-o", "jsonpath={.items[*].reason}"])
        .await
        .stdout;
    let count = |r: &str| reasons.split_whitespace().filter(|x| *x == r).count();
    Ok(Hand {
        rounds: settle.len(),
        settle,
        recreated_events: count(EVENT_LEASE_RECREATED),
        takeover_events: count(EVENT_TAKEOVER),
        safety: safety(&ns),
    })
}

/// A tiny deterministic generator (xorshift), seeded from the clock and printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default, Debug)]
struct Actions {
    graceful: usize,
    force: usize,
    sigterm: usize,
    sigkill: usize,
    controller_kills: usize,
}

struct Churn {
    seed: u64,
    actions: Actions,
    safety: Safety,
    settled_after: Duration,
}

/// How long the churn lasts (`BATON_CHURN_SECONDS` shortens it for a trial run).
fn churn_time() -> Duration {
    let secs = std::env::var("BATON_CHURN_SECONDS").ok().and_then(|s| s.parse().ok());
    Duration::from_secs(secs.unwrap_or(180))
}
const CHURN_LEASE: u64 = 5;

/// The churn's apps and sidecars (also the flaky phase's): file-only apps reading
/// `listeners.json` every 50 ms and honouring `validUntil`, 200 ms to stop; ack timeout 1 s.
fn file_apps() -> (AppConfig, AgentFlags) {
    let app = AppConfig {
        mode: Mode::File,
        stop_delay: Duration::from_millis(200),
        poll: Duration::from_millis(50),
        honour_valid_until: true,
    };
    let agent = AgentFlags {
        ack_timeout: 1,
        safety_margin: None,
    };
    (app, agent)
}

async fn churn(cluster: Arc<Cluster>) -> R<Churn> {
    let (app, agent) = file_apps();
    let ns = Arc::new(Ns::new(cluster, "churn", app, agent).await?);
    ns.start_controller().await?;
    ns.start_controller().await?;
    let mut live: Vec<String> = Vec::new();
    let mut next = 0;
    for _ in 0..3 {
        let name = format!("c{next}");
        next += 1;
        ns.create_pod(&name).await?;
        live.push(name);
    }
    let (spec, _) = listeners("churn", 90);
    ns.create_set("churn", spec, CHURN_LEASE as i32).await?;
    ns.settled("churn", 90, "90 listeners running", LONG).await?;
    let seed = seed();
    let mut rng = Rng(seed);
    let mut actions = Actions::default();
    // Sidecars down (SIGKILLed, to be restarted later than the lease), and their restarts.
    let mut down: Vec<(String, Instant)> = Vec::new();
    let t0 = Instant::now();
    let end = t0 + churn_time();
    while Instant::now() < end {
        // Restart the sidecars whose time has come.
        let now = Instant::now();
        for (pod, _) in down.iter().filter(|(_, at)| *at <= now) {
            if live.contains(pod) {
                ns.restart_agent(pod).await?;
            }
        }
        down.retain(|(_, at)| *at > now);
        let up: Vec<String> = live
            .iter()
            .filter(|p| !down.iter().any(|(d, _)| d == *p))
            .cloned()
            .collect();
        let pick = |rng: &mut Rng, from: &[String]| from[rng.below(from.len() as u64) as usize].clone();
        match rng.below(100) {
            0..=34 if !up.is_empty() => {
                // Replace a pod, make-before-break; 20% by force.
                let old = pick(&mut rng, &up);
                let new = format!("c{next}");
                next += 1;
                ns.create_pod(&new).await?;
                live.push(new.clone());
                live.retain(|p| *p != old);
                if rng.below(100) < 20 {
                    actions.force += 1;
                    eprintln!("{:>7.2}s force-delete {old} (new {new})", t0.elapsed().as_secs_f64());
                    ns.force_delete_pod(&old).await?;
                    ns.mark_dead(&old).await?;
                    let (ns2, old2) = (ns.clone(), old.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        let _ = ns2.kill_containers(&old2).await;
                    });
                } else {
                    actions.graceful += 1;
                    eprintln!("{:>7.2}s delete {old} (new {new})", t0.elapsed().as_secs_f64());
                    ns.delete_pod(&old, 30).await?;
                }
            }
            35..=54 if up.len() > 1 => {
                actions.sigterm += 1;
                let pod = pick(&mut rng, &up);
                eprintln!("{:>7.2}s SIGTERM agent of {pod}", t0.elapsed().as_secs_f64());
                ns.term_agent(&pod).await?;
                ns.restart_agent(&pod).await?;
            }
            55..=74 if up.len() > 1 => {
                actions.sigkill += 1;
                let pod = pick(&mut rng, &up);
                eprintln!("{:>7.2}s SIGKILL agent of {pod}", t0.elapsed().as_secs_f64());
                ns.kill_agent(&pod).await?;
                down.push((pod, Instant::now() + Duration::from_secs(CHURN_LEASE + 1)));
            }
            75..=89 => {
                actions.controller_kills += 1;
                eprintln!("{:>7.2}s kill a controller", t0.elapsed().as_secs_f64());
                let ids = ns.controller_ids();
                if let Some(id) = ids.get(rng.below(ids.len() as u64) as usize) {
                    ns.kill_controller(id).await?;
                }
                ns.start_controller().await?;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(1000 + rng.below(1000))).await;
        // Stop early if a rule is already broken: the report says which.
        if !ns.violations(true).is_empty() {
            break;
        }
    }
    // Every sidecar back; every listener must run once again.
    for (pod, _) in &down {
        if live.contains(pod) {
            ns.restart_agent(pod).await?;
        }
    }
    let t = Instant::now();
    ns.settled("churn", 90, "90 listeners running after the churn", LONG)
        .await?;
    let settled_after = t.elapsed();
    Ok(Churn {
        seed,
        actions,
        safety: safety(&ns),
        settled_after,
    })
}

fn row(f: &str, m: String, t: &str, pass: bool) -> (String, String, String, &'static str) {
    (f.to_string(), m, t.to_string(), if pass { "PASS" } else { "FAIL" })
}

/// The duplicates and token-regressions rows of a run (`what` names it, `short` again).
fn safety_rows(what: &str, short: &str, s: &Safety) -> Vec<common::Row> {
    vec![
        row(
            &format!("{what}: duplicates"),
            format!("{} (sampled {} of {})", s.duplicates, s.duplicate_samples, s.samples),
            "0",
            s.duplicates == 0 && s.duplicate_samples == 0,
        ),
        row(
            &format!("{short}: token regressions"),
            s.token_regressions.to_string(),
            "0",
            s.token_regressions == 0 && s.other.is_empty(),
        ),
    ]
}

/// Exits with the phase's failure.
fn or_exit<T>(phase: &str, r: R<T>) -> T {
    r.unwrap_or_else(|e| {
        eprintln!("{phase} phase failed: {e}");
        std::process::exit(1);
    })
}

async fn hand_phase(cluster: Arc<Cluster>, rows: &mut Vec<common::Row>) {
    println!("[hand] hand-deleted Leases: 40 listeners on 4 pods (lease 5 s), apps take 1 s to stop, 20 rounds …");
    let hand = or_exit("hand-deletion", hand_deletions(cluster).await);
    let s = &hand.safety;
    println!(
        "  {} rounds, {} starts, {} samples; every Lease back and every listener running again: p50 {} max {}",
        hand.rounds,
        s.starts,
        s.samples,
        ms(pct(&hand.settle, 0.5)),
        ms(pct(&hand.settle, 1.0))
    );
    println!(
        "  duplicates {} (sampled {}), token regressions {}, Events: LeaseRecreated {}, Takeover {}; other: {:?}",
        s.duplicates, s.duplicate_samples, s.token_regressions, hand.recreated_events, hand.takeover_events, s.other
    );
    rows.extend(safety_rows(
        "hand-deleted Leases (20 × 40, 1 s stops)",
        "hand-deleted Leases",
        s,
    ));
}

async fn churn_phase(cluster: Arc<Cluster>, rows: &mut Vec<common::Row>) {
    println!(
        "[churn] 3 pods × 30 listeners (lease {CHURN_LEASE} s), file-only apps polling every 50 ms, {} s …",
        churn_time().as_secs()
    );
    let churn = or_exit("churn", churn(cluster).await);
    let c = &churn.safety;
    println!("  seed {:#x}: {:?}", churn.seed, churn.actions);
    println!(
        "  {} starts, {} samples; duplicates {} (sampled {}), token regressions {}; other: {:?}",
        c.starts, c.samples, c.duplicates, c.duplicate_samples, c.token_regressions, c.other
    );
    println!(
        "  all 90 running once again {} after the churn ended",
        ms(churn.settled_after)
    );
    rows.extend(safety_rows("churn (3 min, 3 × 30, file apps)", "churn", c));
}

async fn flaky_phase(cluster: Arc<Cluster>, rows: &mut Vec<common::Row>) {
    let cfg = flaky::FlakyConfig::from_env();
    println!(
        "[flaky] 3 pods × 30 listeners (lease {} s), {:.0} % of the sidecars' and controller's requests answered {:?}, \
         pods replaced and sidecars SIGTERMed for {} s …",
        flaky::FLAKY_LEASE,
        cfg.rate * 100.0,
        cfg.codes,
        cfg.seconds
    );
    let f = or_exit("flaky", flaky::flaky(cluster, &cfg, seed()).await);
    let s = &f.safety;
    let (p50, p90, max) = (pct(&f.gaps, 0.5), pct(&f.gaps, 0.9), pct(&f.gaps, 1.0));
    println!(
        "  seed {:#x}: {} pods replaced, {} sidecars SIGTERMed, {} requests failed; {} handovers, gap p50 {} p90 {} max {}",
        f.seed,
        f.replaced,
        f.sigterms,
        f.failed_requests,
        f.gaps.len(),
        ms(p50),
        ms(p90),
        ms(max)
    );
    for w in &f.slowest {
        println!("  slow: {w}");
    }
    let bound = Duration::from_secs(flaky::FLAKY_LEASE + 2);
    let what = format!("flaky API ({:.0} % {:?})", cfg.rate * 100.0, cfg.codes);
    rows.push(row(
        &format!("{what}: gap p90"),
        ms(p90),
        "< 2000 ms",
        p90 < Duration::from_secs(2),
    ));
    rows.push(row(
        &format!("{what}: gap max"),
        ms(max),
        &format!("≤ {} ms", bound.as_millis()),
        max <= bound,
    ));
    rows.extend(safety_rows(&what, "flaky API", s));
}

/// A seed from the clock (printed, so a run can be told apart).
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = std::time::Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = |phase: &str| args.is_empty() || args.iter().any(|a| a == phase);
    let cluster = match Cluster::start(kubelet()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("the simulator did not start: {e}");
            std::process::exit(1);
        }
    };
    println!("listener_safety: real baton agent sidecars and baton controllers on the simulator, 2 tokio workers");
    let mut rows = Vec::new();
    if run("hand") {
        hand_phase(cluster.clone(), &mut rows).await;
    }
    if run("churn") {
        churn_phase(cluster.clone(), &mut rows).await;
    }
    if run("flaky") {
        flaky_phase(cluster.clone(), &mut rows).await;
    }
    common::print_rows(&rows);
    println!();
    println!(
        "command: cargo run --release --example listener_safety {}  (total {:.1} s)",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    if rows.iter().any(|r| r.3 == "FAIL") {
        std::process::exit(2);
    }
}
