//! Failures: crashed and partitioned agents, a controller replaced mid-handover, and `recover`
//! reassigning orphans.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::listener_world::*;

/// kill -9 of an agent, and a pod deleted with grace 0: the listeners run again within lease
/// duration + 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_agents_listeners_are_taken_over_in_time() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    for p in ["crash-a", "crash-b", "crash-c"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["crash-a", "crash-b", "crash-c"] {
        w.wait_ready(p).await;
    }
    let lease = 3;
    w.create_set("sxt", "svc", listeners(9), lease).await;
    let all = ids(9);
    w.wait_running("9 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    let limit = Duration::from_secs(lease as u64 + 1);

    // kill -9: the process dies (and the kubelet restarts it).
    let victim = w.log.running()["l000"][0].clone();
    let t0 = Instant::now();
    assert!(w.sim.kubelet.crash(NS, &victim));
    wait_for("crashed process recorded", Duration::from_secs(2), || {
        let open = w.log.running().values().any(|p| p.contains(&victim));
        async move { (!open).then_some(()) }
    })
    .await;
    w.wait_running("all running after kill -9", &all, limit, |_| true).await;
    println!(
        "after kill -9 of {victim}: all listeners running again in {:?}",
        t0.elapsed()
    );

    // Grace 0: the pod is gone at once; its listeners are orphans, taken over at once.
    let victim = w.log.running()["l001"][0].clone();
    let t0 = Instant::now();
    w.delete_pod(&victim, Some(0)).await;
    w.wait_running("all running after a grace-0 delete", &all, limit, |p| p != victim)
        .await;
    let took = t0.elapsed();
    println!("after grace-0 delete of {victim}: all listeners running elsewhere in {took:?}");
    w.log.assert_no_duplicates();
}

/// A partitioned agent stops its listeners before the controller reassigns them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_agent_stops_before_takeover() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    w.create_pod("part-a", "svc").await;
    w.create_pod("part-b", "svc").await;
    w.wait_ready("part-a").await;
    w.wait_ready("part-b").await;
    let lease = 3;
    w.create_set("sxt", "svc", listeners(8), lease).await;
    let all = ids(8);
    w.wait_running("8 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    let on_a: Vec<String> = w
        .log
        .running()
        .into_iter()
        .filter(|(_, p)| p[0] == "part-a")
        .map(|(l, _)| l)
        .collect();
    assert!(!on_a.is_empty());

    let t0 = Instant::now();
    w.sim.faults.block("token=agent-part-a");
    w.wait_running(
        "part-a's listeners on part-b",
        &all,
        Duration::from_secs(lease as u64 + 2),
        |p| p == "part-b",
    )
    .await;
    println!(
        "partition: {} listeners moved to part-b in {:?}",
        on_a.len(),
        t0.elapsed()
    );
    let log = w.log.snapshot();
    for l in &on_a {
        let a_end = log
            .iter()
            .filter(|i| &i.listener == l && i.pod == "part-a")
            .filter_map(|i| i.end)
            .max();
        let b_start = log
            .iter()
            .filter(|i| &i.listener == l && i.pod == "part-b")
            .map(|i| i.start)
            .max();
        let (a_end, b_start) = (a_end.expect("a stopped"), b_start.expect("b started"));
        assert!(a_end <= b_start, "{l}: part-a stopped before part-b started");
        println!("{l}: stopped on part-a {:?} before part-b started", b_start - a_end);
    }
    // Heal: the old holder finds its Leases gone and starts nothing.
    let starts = w.log.starts();
    w.sim.faults.unblock("token=agent-part-a");
    let leases = w.leases();
    wait_for("part-a's agent talks again", Duration::from_secs(20), || {
        let leases = leases.clone();
        async move { leases.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
    assert!(w.log.running().values().all(|p| p.len() == 1 && p[0] == "part-b"));
    assert_eq!(w.log.starts(), starts);
    w.log.assert_no_duplicates();
}

/// The controller is replaced in the middle of handovers: no overlap, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_failover_mid_handover() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (stop1, ctl1) = w.controller("controller-1").await;
    for p in ["fo-a", "fo-b", "fo-c"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["fo-a", "fo-b", "fo-c"] {
        w.wait_ready(p).await;
    }
    w.create_set("sxt", "svc", listeners(30), 5).await;
    let all = ids(30);
    w.wait_running("30 listeners", &all, Duration::from_secs(15), |_| true)
        .await;
    // Drain fo-a: its listeners start moving...
    let patch = json!({"metadata": {"annotations": {"baton.dev/drain": "now"}}});
    w.pods()
        .patch("fo-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let starts = w.log.starts();
    wait_for("first handover", Duration::from_secs(20), || {
        let n = w.log.starts();
        async move { (n > starts).then_some(()) }
    })
    .await;
    // ...and the controller goes away mid-way; another takes over.
    let _ = stop1.send(());
    let _ = ctl1.await;
    let (_stop2, _ctl2) = w.controller("controller-2").await;
    w.wait_running("30 listeners off fo-a", &all, Duration::from_secs(20), |p| p != "fo-a")
        .await;
    let (dups, worst, gaps) = w.log.analyse();
    println!(
        "failover: {} handovers, duplicates {dups}, worst gap {worst:?}",
        gaps.len()
    );
    assert_eq!(dups, 0);
}

/// `recover` reassigns orphans now (a holder stuck terminating, its agent cut off), and only them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_reassigns_only_orphans() {
    let _serial = serial();
    let (w, _ctl) = recover_world().await;
    let all = ids(6);
    let before = w.holders("sxt").await;
    // rc-a gets stuck: cut off from the API, then deleted (a finalizer keeps it terminating);
    // SIGTERM: the agent stops its listeners but cannot release (it is cut off).
    w.strand("rc-a").await;
    let t0 = Instant::now();
    let sets = w.sets();
    baton::cli::listeners::recover(&sets, "sxt", Duration::from_secs(10))
        .await
        .unwrap();
    w.wait_running("all running off rc-a", &all, Duration::from_secs(20), |p| p != "rc-a")
        .await;
    println!(
        "recover: orphans reassigned in {:?} (lease duration 60 s)",
        t0.elapsed()
    );
    let after = w.holders("sxt").await;
    for (id, (holder, token)) in &before {
        if holder.as_deref() != Some("rc-a") {
            assert_eq!(
                after.get(id),
                Some(&(holder.clone(), *token)),
                "{id} on a Ready pod did not move"
            );
        }
    }
    let (dups, _, _) = w.log.analyse();
    assert_eq!(dups, 0);
    w.unstrand("rc-a").await;
}
