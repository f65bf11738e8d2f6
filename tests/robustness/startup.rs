//! (1) Transient API errors at startup do not kill the controller.

use baton_sim::faults::FaultRule;

use crate::controller::{spawn, temp_dir, Proc, NO_ELECTION};
use crate::support::{Env, LONG};

/// Eight starts of the real binary while 30% of its requests fail with 409, 429, 500 or 503:
/// every one comes up ready (before: the CRD check exited 1 on any such answer), and each
/// stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_through_transient_api_errors() {
    let env = Env::start().await;
    let dir = temp_dir("startup");
    env.sim.faults.add_rule(FaultRule {
        client: Some("baton-start-".into()),
        error_rate: 0.3,
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
        p.wait_ready().await;
    }
    let retried: usize = procs
        .iter()
        .map(|p| p.log_lines("transient failure, retrying").len())
        .sum();
    eprintln!("8 starts under 30% injected errors: all ready; {retried} startup retries logged");
    env.sim.faults.clear();
    for p in &mut procs {
        p.stop().await;
    }
}
