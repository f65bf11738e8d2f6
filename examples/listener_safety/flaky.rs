//! Phase 3: handovers while the API server fails a share of the requests of every sidecar and
//! controller (baton-sim's fault rules: `error_rate` of their requests answered with one of
//! `codes`, the test's own client spared), under a graceful churn: pods replaced make-before-break
//! and sidecars SIGTERMed and restarted. The handover gap of every listener that moved or
//! restarted, its app's stop → its next start anywhere.
use std::sync::Arc;
use std::time::Duration;

use baton_sim::faults::FaultRule;
use tokio::time::Instant;

use crate::harness::app::Interval;
use crate::harness::{listeners, Cluster, Ns, R};
use crate::{Rng, Safety, LONG};

pub(crate) const FLAKY_LEASE: u64 = 5;
const FLAKY_LISTENERS: usize = 30;

/// How long the churn lasts (`BATON_FLAKY_SECONDS`), the share of requests failed
/// (`BATON_FLAKY_RATE`) and with which codes (`BATON_FLAKY_CODES`, comma-separated).
pub(crate) struct FlakyConfig {
    pub(crate) seconds: u64,
    pub(crate) rate: f64,
    pub(crate) codes: Vec<u16>,
}

impl FlakyConfig {
    pub(crate) fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        FlakyConfig {
            seconds: var("BATON_FLAKY_SECONDS").and_then(|s| s.parse().ok()).unwrap_or(60),
            rate: var("BATON_FLAKY_RATE").and_then(|s| s.parse().ok()).unwrap_or(0.2),
            codes: var("BATON_FLAKY_CODES")
                .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
                .filter(|c: &Vec<u16>| !c.is_empty())
                .unwrap_or_else(|| vec![500]),
        }
    }
}

pub(crate) struct Flaky {
    pub(crate) seed: u64,
    pub(crate) replaced: usize,
    pub(crate) sigterms: usize,
    /// Stop → next start of a listener, in any app, for every stop during the churn.
    pub(crate) gaps: Vec<Duration>,
    /// The slowest few: listener, from, to, gap.
    pub(crate) slowest: Vec<String>,
    pub(crate) failed_requests: u64,
    pub(crate) safety: Safety,
}

/// Every gap of the log: for each listener, an interval's end → the start of the next one.
fn gaps(snap: &[Interval], since: Instant) -> Vec<(Duration, String)> {
    let mut by: std::collections::BTreeMap<&str, Vec<&Interval>> = Default::default();
    for i in snap {
        by.entry(i.listener.as_str()).or_default().push(i);
    }
    let mut out = Vec::new();
    for (l, mut is) in by {
        is.sort_by_key(|i| i.start);
        for w in is.windows(2) {
            let Some(end) = w[0].end.filter(|e| *e >= since && *e <= w[1].start) else {
                continue;
            };
            let what = format!(
                "{l}: {} (token {}) → {} (token {})",
                w[0].app, w[0].token, w[1].app, w[1].token
            );
            out.push((w[1].start - end, what));
        }
    }
    out.sort_by_key(|(d, _)| *d);
    out
}

pub(crate) async fn flaky(cluster: Arc<Cluster>, cfg: &FlakyConfig, seed: u64) -> R<Flaky> {
    let (app, agent) = crate::file_apps();
    let ns = Ns::new(cluster.clone(), "flaky", app, agent).await?;
    ns.start_controller().await?;
    let mut live: Vec<String> = Vec::new();
    let mut next = 0;
    for _ in 0..3 {
        let name = format!("f{next}");
        next += 1;
        ns.create_pod(&name).await?;
        live.push(name);
    }
    let (spec, _) = listeners("flaky", FLAKY_LISTENERS);
    ns.create_set("flaky", spec, FLAKY_LEASE as i32).await?;
    ns.settled("flaky", FLAKY_LISTENERS, "30 listeners running", LONG)
        .await?;
    // The sidecars' and the controller's requests fail; the test's own (pod creates and deletes,
    // reads) do not.
    let rules: Vec<FaultRule> = ["agent-flaky-", "ctl-flaky-"]
        .iter()
        .map(|who| FaultRule {
            client: Some(who.to_string()),
            error_rate: cfg.rate,
            error_codes: cfg.codes.clone(),
            ..FaultRule::default()
        })
        .collect();
    let sim = cluster.sim();
    let before = sim.faults.injected();
    for r in &rules {
        sim.faults.add_rule(r.clone());
    }
    let mut rng = Rng(seed);
    let (mut replaced, mut sigterms) = (0, 0);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(cfg.seconds);
    while Instant::now() < end {
        if rng.below(2) == 0 {
            let old = live[rng.below(live.len() as u64) as usize].clone();
            let new = format!("f{next}");
            next += 1;
            eprintln!("{:>7.2}s delete {old} (new {new})", t0.elapsed().as_secs_f64());
            ns.create_pod(&new).await?;
            live.push(new);
            live.retain(|p| *p != old);
            ns.delete_pod(&old, 30).await?;
            replaced += 1;
        } else {
            let pod = live[rng.below(live.len() as u64) as usize].clone();
            eprintln!("{:>7.2}s SIGTERM the sidecar of {pod}", t0.elapsed().as_secs_f64());
            ns.term_agent(&pod).await?;
            ns.restart_agent(&pod).await?;
            sigterms += 1;
        }
        // Each action's handovers are over before the next begins (a gap is one handover's).
        ns.settled("flaky", FLAKY_LISTENERS, "every listener running again", LONG)
            .await?;
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1000))).await;
        if !ns.violations(true).is_empty() {
            break;
        }
    }
    for r in &rules {
        sim.faults.remove_rule(r);
    }
    let failed_requests = sim.faults.injected().saturating_sub(before);
    ns.settled("flaky", FLAKY_LISTENERS, "30 listeners running after the churn", LONG)
        .await?;
    dump_logs(&ns);
    let all = gaps(&ns.log.snapshot(), t0);
    let slowest = all
        .iter()
        .rev()
        .take(5)
        .map(|(d, w)| format!("{w} after {d:?}"))
        .collect();
    Ok(Flaky {
        seed,
        replaced,
        sigterms,
        gaps: all.into_iter().map(|(d, _)| d).collect(),
        slowest,
        failed_requests,
        safety: crate::safety(&ns),
    })
}

/// With `BATON_BENCH_LOGS=<dir>`, every controller's and sidecar's log, one file each.
fn dump_logs(ns: &Ns) {
    let Some(dir) = std::env::var_os("BATON_BENCH_LOGS").map(std::path::PathBuf::from) else {
        return;
    };
    let _ = std::fs::create_dir_all(&dir);
    for id in ns.controller_ids() {
        let _ = std::fs::write(
            dir.join(format!("{id}.log")),
            ns.controller_log(&id).unwrap_or_default(),
        );
    }
    for pod in ns.pod_names() {
        if let Ok(p) = ns.pod(&pod) {
            let _ = std::fs::write(dir.join(format!("agent-{pod}.log")), p.logs());
        }
    }
}
