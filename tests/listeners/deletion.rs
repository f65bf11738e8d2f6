//! Deleting a ListenerSet: its holders stop and release, its Leases are deleted, then the set
//! goes; sets without pods and cut-off holders.

use std::time::Duration;

use baton::api::listenerset::{Listener, ListenerSet};
use tokio::time::Instant;

use crate::helpers::*;
use crate::listener_world::*;

/// The listeners of `set`, per the agents' log: (id, end of its last interval; None = running).
fn last_ends(w: &World, ids: &[String]) -> std::collections::BTreeMap<String, Option<Instant>> {
    let log = w.log.snapshot();
    ids.iter()
        .map(|id| {
            let last = log.iter().filter(|i| &i.listener == id).max_by_key(|i| i.start);
            (id.clone(), last.and_then(|i| i.end))
        })
        .collect()
}

async fn wait_set_gone(w: &World, set: &str, deadline: Duration) {
    let sets = w.sets();
    wait_for(&format!("ListenerSet {set} gone"), deadline, || {
        let sets = sets.clone();
        async move { sets.get_opt(set).await.ok()?.is_none().then_some(()) }
    })
    .await;
}

fn has_finalizer(set: &ListenerSet) -> bool {
    set.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == baton::api::listenerset::FINALIZER)
}

/// Deleting a ListenerSet: its holders stop and release, every Lease is deleted, then the set goes;
/// another set on the same pods is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_set_stops_its_listeners_and_deletes_its_leases() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    for p in ["del-a", "del-b"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["del-a", "del-b"] {
        w.wait_ready(p).await;
    }
    // A 30 s lease: deletion finishing far sooner proves holders released, nothing expired.
    let lease = 30;
    w.create_set("gone", "svc", listeners(6), lease).await;
    let keep: Vec<Listener> = (0..3)
        .map(|i| Listener {
            id: format!("k{i}"),
            ..Default::default()
        })
        .collect();
    let keep_ids: Vec<String> = keep.iter().map(|l| l.id.clone()).collect();
    w.create_set("stays", "svc", keep, lease).await;
    let gone = ids(6);
    let all: Vec<String> = gone.iter().chain(&keep_ids).cloned().collect();
    w.wait_running("9 listeners of two sets", &all, Duration::from_secs(30), |_| true)
        .await;
    let sets = w.sets();
    assert!(
        has_finalizer(&sets.get("gone").await.unwrap()),
        "the controller put its finalizer on"
    );
    assert_eq!(w.holders("gone").await.len(), 6);
    let kept_before = w.holders("stays").await;
    let (deleted_at, _watch) = w.watch_lease_deletions("gone").await;

    let t0 = Instant::now();
    sets.delete("gone", &Default::default()).await.unwrap();
    wait_set_gone(&w, "gone", Duration::from_secs(15)).await;
    let took = t0.elapsed();
    println!("ListenerSet with 6 running listeners deleted in {took:?}");
    assert!(
        took < Duration::from_secs(lease as u64 / 2),
        "took {took:?}: holders must release, not let the {lease} s Leases expire"
    );
    assert!(
        w.holders("gone").await.is_empty(),
        "no Lease of the deleted set remains"
    );
    let running = w.log.running();
    for id in &gone {
        assert!(!running.contains_key(id), "{id} still runs on {:?}", running.get(id));
    }
    // A Lease went only after its listener had stopped.
    let ends = last_ends(&w, &gone);
    wait_for("every Lease deletion watched", Duration::from_secs(5), || {
        let n = deleted_at.lock().unwrap().len();
        async move { (n == 6).then_some(()) }
    })
    .await;
    for (id, at) in deleted_at.lock().unwrap().iter() {
        let end = ends.get(id).copied().flatten().expect("stopped");
        assert!(end <= *at, "{id}: its Lease was deleted before its holder stopped");
    }
    // The other set on the same pods did not notice.
    assert_eq!(w.holders("stays").await, kept_before);
    w.wait_running("the other set still running", &keep_ids, Duration::from_secs(1), |_| {
        true
    })
    .await;
    assert_eq!(
        w.log.snapshot().iter().filter(|i| i.listener.starts_with('k')).count(),
        3,
        "the other set's listeners never restarted"
    );
    wait_for("Terminating and Finalized events", Duration::from_secs(5), || async {
        let reasons = w.set_event_reasons("gone").await;
        (reasons.iter().any(|r| r == "Terminating") && reasons.iter().any(|r| r == "Finalized")).then_some(())
    })
    .await;
    let (dups, _, _) = w.log.analyse();
    assert_eq!(dups, 0);
}

/// A set that never had a pod is deleted at once (its finalizer does not hold it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_without_pods_is_deleted_at_once() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    w.create_set("lonely", "nobody", listeners(3), 15).await;
    let sets = w.sets();
    wait_for("finalizer and status", Duration::from_secs(10), || {
        let sets = sets.clone();
        async move {
            let s = sets.get("lonely").await.ok()?;
            (has_finalizer(&s) && condition(&s, "Ready")?.1 == "NoEligiblePods").then_some(())
        }
    })
    .await;
    let t0 = Instant::now();
    sets.delete("lonely", &Default::default()).await.unwrap();
    wait_set_gone(&w, "lonely", Duration::from_secs(5)).await;
    println!("ListenerSet without pods deleted in {:?}", t0.elapsed());
    assert!(w.holders("lonely").await.is_empty());
}

/// A deleted set whose holder is cut off (cannot release) keeps its Lease until it expired, which
/// is after that holder stopped its listeners on its own; then the set goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_sets_lease_outlives_a_cut_off_holder() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    w.create_pod("cut-a", "svc").await;
    w.wait_ready("cut-a").await;
    let lease = 4;
    w.create_set("cut", "svc", listeners(3), lease).await;
    let all = ids(3);
    w.wait_running("3 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    let (deleted_at, _watch) = w.watch_lease_deletions("cut").await;
    w.sim.faults.block("token=agent-cut-a");
    let t0 = Instant::now();
    let sets = w.sets();
    sets.delete("cut", &Default::default()).await.unwrap();
    // The holder cannot hear the release request: the set waits, and says why.
    let set = wait_for("set Terminating", Duration::from_secs(5), || {
        let sets = sets.clone();
        async move {
            let s = sets.get_opt("cut").await.ok()??;
            (condition(&s, "Ready")?.1 == "Terminating").then_some(s)
        }
    })
    .await;
    let (status, _, message) = condition(&set, "Ready").unwrap();
    println!("Ready={status} Terminating: {message}");
    assert_eq!(status, "False");
    assert_eq!(
        w.holders("cut").await.len(),
        3,
        "no Lease deleted while its holder may run it"
    );
    wait_set_gone(&w, "cut", Duration::from_secs(lease as u64 + 5)).await;
    println!(
        "deleted in {:?} with the holder cut off ({lease} s Leases)",
        t0.elapsed()
    );
    assert!(w.holders("cut").await.is_empty());
    wait_for("every Lease deletion watched", Duration::from_secs(5), || {
        let n = deleted_at.lock().unwrap().len();
        async move { (n == 3).then_some(()) }
    })
    .await;
    let ends = last_ends(&w, &all);
    for (id, at) in deleted_at.lock().unwrap().iter() {
        let end = ends
            .get(id)
            .copied()
            .flatten()
            .expect("the cut-off holder stopped on its own");
        assert!(end <= *at, "{id}: its Lease was deleted before its holder stopped");
        assert!(
            *at - t0 >= Duration::from_secs(2),
            "{id}: deleted before the Lease could expire"
        );
    }
    assert!(w.log.running().is_empty());
    w.sim.faults.unblock("token=agent-cut-a");
    let (dups, _, _) = w.log.analyse();
    assert_eq!(dups, 0);
}
