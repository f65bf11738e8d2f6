//! (1) Transient API errors at startup do not kill the controller.

use baton_sim::faults::FaultRule;

use super::controller::{spawn, temp_dir, Proc, NO_ELECTION};
use crate::support::{wait_for, Env, LONG};

/// Eight starts of the real binary. First the API server answers every CRD check with 409,
/// 429, 500 or 503 (before: the check exited 1 on any answer but 404, and the pod
/// crash-looped): each process retries, stays up and serves `/healthz` 200 with `/readyz` 503.
/// Then 30% of all their requests fail that way: every one becomes ready, and each stops
/// cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_through_transient_api_errors() {
    let env = Env::start().await;
    let dir = temp_dir("startup");
    env.sim.faults.add_rule(FaultRule {
        client: Some("baton-start-".into()),
        path: Some("/apis/baton.dev/".into()),
        error_rate: 1.0,
        error_codes: vec![409, 429, 500, 503],
        ..FaultRule::default()
    });
    let mut procs: Vec<Proc> = (0..8)
        .map(|i| spawn(&env.sim, dir.path(), &format!("baton-start-{i}"), &NO_ELECTION))
        .collect();
    for p in &mut procs {
        match p.proc.wait_addr(LONG).await {
            Some(a) => p.addr = Some(a),
            None => panic!("{} did not serve its probes:\n{}", p.id, p.log_text()),
        }
    }
    for p in &mut procs {
        wait_for(&format!("{}: three retries of the CRD check", p.id), LONG, || async {
            (p.log_lines("transient failure, retrying").len() >= 3).then_some(())
        })
        .await;
        assert!(
            matches!(p.proc.child.try_wait(), Ok(None)),
            "{} exited:\n{}",
            p.id,
            p.log_text()
        );
        assert_eq!(p.get("/healthz").await.map(|r| r.0), Some(200), "{}", p.id);
        assert_eq!(p.get("/readyz").await.map(|r| r.0), Some(503), "{}", p.id);
    }
    env.sim.faults.clear();
    env.sim.faults.add_rule(FaultRule {
        client: Some("baton-start-".into()),
        error_rate: 0.3,
        error_codes: vec![409, 429, 500, 503],
        ..FaultRule::default()
    });
    for p in &mut procs {
        p.wait_ready().await;
    }
    let retried: usize = procs
        .iter()
        .map(|p| p.log_lines("transient failure, retrying").len())
        .sum();
    eprintln!(
        "8 starts through failing CRD checks, then 30% injected errors: all ready; {retried} startup retries logged"
    );
    env.sim.faults.clear();
    for p in &mut procs {
        p.stop().await;
    }
}
