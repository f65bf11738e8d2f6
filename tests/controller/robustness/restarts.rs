//! (5) After every restart, `/readyz` turns 200 and every object is reconciled.

use std::time::Instant;

use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::controller::{create_raw, raw_listenersets, raw_rollouts, start, temp_dir, wait_observed, NO_ELECTION};
use crate::support::{manifest_v, Env};

const RESTARTS: usize = 20;

/// Three Rollouts and two ListenerSets; 20 times: while the controller is down, change every
/// object's spec (a new generation), start the real binary, and require `/readyz` 200 and
/// `status.observedGeneration` = the new generation on every object (each was reconciled),
/// then SIGTERM. Before, `/readyz` stayed 503 after most starts (several tasks awaited
/// kube-runtime's store readiness, which wakes one waiter) and first reconciles stalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_restarts_each_ready_and_reconciling_every_object() {
    let env = Env::start().await;
    let dir = temp_dir("restarts");
    let rollouts: Vec<String> = (0..3).map(|i| format!("r{i}")).collect();
    let sets: Vec<String> = (0..2).map(|i| format!("l{i}")).collect();
    for r in &rollouts {
        env.apply(&manifest_v(r, 1, "v1")).await;
    }
    let raw_sets = raw_listenersets(&env.client);
    for s in &sets {
        create_raw(&raw_sets, super::controller::listenerset(s))
            .await
            .expect("ListenerSet");
    }
    let raw_rs = raw_rollouts(&env.client);
    let started = Instant::now();
    for round in 0..RESTARTS {
        // A new generation of every object while no controller runs.
        let toggle = i64::try_from(round % 2).unwrap_or(0);
        for r in &rollouts {
            let p = json!({"spec": {"revisionHistoryLimit": 10 + toggle}});
            raw_rs
                .patch(r, &PatchParams::default(), &Patch::Merge(&p))
                .await
                .expect("patch");
        }
        for s in &sets {
            let p = json!({"spec": {"leaseDurationSeconds": 15 + toggle}});
            raw_sets
                .patch(s, &PatchParams::default(), &Patch::Merge(&p))
                .await
                .expect("patch");
        }
        let mut c = start(&env.sim, dir.path(), &format!("baton-restart-{round}"), &NO_ELECTION).await;
        c.wait_ready().await;
        wait_observed(
            &raw_rs,
            &rollouts,
            &format!("restart {round}: every Rollout reconciled"),
        )
        .await;
        wait_observed(
            &raw_sets,
            &sets,
            &format!("restart {round}: every ListenerSet reconciled"),
        )
        .await;
        c.stop().await;
    }
    eprintln!(
        "{RESTARTS} restarts, each ready and reconciling every object: {:?}",
        started.elapsed()
    );
}
