//! Graceful handover: on SIGTERM a pod's agent stops its listeners and releases their Leases.
use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ListParams;

use crate::harness::{listeners, wait_for, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// listener → Lease uid.
async fn lease_uids(ns: &Ns, set: &str) -> BTreeMap<String, String> {
    let lp = ListParams::default().labels(&format!("baton.dev/listenerset={set}"));
    let list = ns.leases().list(&lp).await.expect("leases");
    list.items
        .into_iter()
        .filter_map(|l| {
            let id = l.metadata.labels.as_ref()?.get("baton.dev/listener")?.clone();
            Some((id, l.metadata.uid?))
        })
        .collect()
}

/// A released Lease belongs to no pod: its agent drops the pod's ownerReference with the release,
/// so the garbage collector does not delete it when the pod goes. With no other pod to take them,
/// a SIGTERMed pod's Leases outlive it, and a pod that comes later gets the same Leases handed
/// over (Handover, next token), not new ones (Assigned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_leases_outlive_their_pod_and_are_handed_over() {
    let ns = Ns::plain("release").await;
    let kubectl = ns.cluster.kubectl();
    ok(ns.start_controller().await);
    ok(ns.create_pod("rl-a").await);
    let (spec, keys) = listeners("sxt", 4);
    ok(ns.create_set("sxt", spec, 5).await);
    let before = ok(ns.settled("sxt", 4, "4 listeners on rl-a", LONG).await);
    let uids = lease_uids(&ns, "sxt").await;
    ok(ns.delete_pod("rl-a", 30).await);
    let pods = ns.pods_api();
    ok(wait_for("rl-a gone", LONG, || async {
        pods.get_opt("rl-a").await.ok()?.is_none().then_some(())
    })
    .await);
    let released = ok(ns.holders("sxt").await);
    assert_eq!(released.len(), 4, "the released Leases outlive the pod: {released:?}");
    assert!(released.values().all(|(h, _)| h.is_none()), "{released:?}");
    ok(ns.create_pod("rl-b").await);
    let after = ok(ns.settled("sxt", 4, "4 listeners on rl-b", LONG).await);
    for (id, (holder, token)) in &after {
        assert_eq!(holder.as_deref(), Some("rl-b"));
        assert!(*token > before[id].1, "{id}: token {token} after {}", before[id].1);
    }
    assert_eq!(lease_uids(&ns, "sxt").await, uids, "the same Lease objects");
    // One Event per burst and reason, each saying how many listeners it covers.
    let events = kubectl
        .ok(&[
            "get",
            "events",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={range .items[*]}{.reason}{\"|\"}{.message}{\"\\n\"}{end}",
        ])
        .await;
    let count = |r: &str| -> usize {
        events
            .lines()
            .filter_map(|l| l.split_once('|'))
            .filter(|(reason, _)| *reason == r)
            .filter_map(|(_, m)| m.split_once(" listener(s)")?.0.parse::<usize>().ok())
            .sum()
    };
    assert_eq!((count("Assigned"), count("Handover")), (4, 4), "{events}");
    ok(ns.wait_running("all on rl-b", &keys, LONG, |p| p == "rl-b").await);
    assert_clean(&ns, true);
}
