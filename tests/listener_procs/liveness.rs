//! Liveness Leases deleted by hand with real kubectl while every listener runs and apps take 1 s
//! to stop: each agent's registration ends (its next renewal answers 404), the controller makes
//! the Lease anew, the agent registers on it and acknowledges its listeners again. Nothing moves,
//! nothing runs twice, no token changes.
use std::collections::BTreeMap;
use std::time::Duration;

use baton::api::listenerset::liveness::{is_liveness, registration, LIVENESS_LABEL};
use kube::api::ListParams;

use crate::harness::app::AppConfig;
use crate::harness::{listeners, wait_for, AgentFlags, Cluster, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);
const PODS: [&str; 3] = ["lv-a", "lv-b", "lv-c"];

/// The liveness Leases of the namespace: name → (registered holder, uid).
async fn liveness(ns: &Ns) -> Option<BTreeMap<String, (Option<String>, String)>> {
    let list = ns
        .leases()
        .list(&ListParams::default().labels(LIVENESS_LABEL))
        .await
        .ok()?;
    Some(
        list.items
            .iter()
            .filter(|l| is_liveness(l))
            .map(|l| {
                let holder = PODS
                    .iter()
                    .find(|p| registration(l, p).is_some())
                    .map(|p| p.to_string());
                let name = l.metadata.name.clone().unwrap_or_default();
                (name, (holder, l.metadata.uid.clone().unwrap_or_default()))
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_deleted_liveness_leases_move_nothing_and_run_nothing_twice() {
    let app = AppConfig {
        stop_delay: Duration::from_secs(1),
        ..AppConfig::default()
    };
    let ns = ok(Ns::new(Cluster::shared(), "live-del", app, AgentFlags::default()).await);
    let kubectl = ns.cluster.kubectl();
    ok(ns.start_controller().await);
    for p in PODS {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("sxt", 12);
    ok(ns.create_set("sxt", spec, 5).await);
    let before = ok(ns.settled("sxt", keys.len(), "12 listeners running", LONG).await);
    let starts = ns.log.starts();
    for round in 1..=3 {
        let old = ok(wait_for("every agent registered", LONG, || async {
            let l = liveness(&ns).await?;
            (l.len() == PODS.len() && l.values().all(|(h, _)| h.is_some())).then_some(l)
        })
        .await);
        let out = kubectl
            .ok(&["delete", "lease", "-n", &ns.name, "-l", LIVENESS_LABEL, "--wait=false"])
            .await;
        assert!(out.contains("deleted"), "round {round}: {out}");
        // Made anew (another uid) and registered again by the same pods' agents.
        ok(
            wait_for(&format!("round {round}: every agent registered anew"), LONG, || async {
                let now = liveness(&ns).await?;
                let anew = old
                    .iter()
                    .all(|(name, (holder, uid))| now.get(name).is_some_and(|(h, u)| u != uid && h == holder));
                (now.len() == PODS.len() && anew).then_some(())
            })
            .await,
        );
        let now = ok(ns
            .settled("sxt", keys.len(), &format!("round {round}: all running"), LONG)
            .await);
        assert_eq!(now, before, "round {round}: no listener moved and no token changed");
        assert_clean(&ns, false);
    }
    assert_eq!(ns.log.starts(), starts, "no listener stopped and started again");
    let a = ns.log.analyse();
    println!(
        "3 rounds of deleting every liveness Lease: {} samples, {} duplicate samples",
        a.samples, a.duplicate_samples
    );
    assert_clean(&ns, true);
}
