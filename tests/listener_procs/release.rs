//! Graceful handover: on SIGTERM a pod's agent stops its listeners and releases their Leases; asked
//! to let a listener go to a named successor (a drain), it hands the Lease over itself.
use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ListParams;

use crate::harness::{listeners, wait_for, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// Events of the namespace: how many listeners those of reason `r` cover.
async fn covered(ns: &Ns, r: &str) -> usize {
    let events = ns
        .cluster
        .kubectl()
        .ok(&[
            "get",
            "events",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={range .items[*]}{.reason}{\"|\"}{.message}{\"\\n\"}{end}",
        ])
        .await;
    events
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter(|(reason, _)| *reason == r)
        .filter_map(|(_, m)| m.split_once(" listener(s)")?.0.parse::<usize>().ok())
        .sum()
}

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
    assert_eq!((covered(&ns, "Assigned").await, covered(&ns, "Handover").await), (4, 4));
    ok(ns.wait_running("all on rl-b", &keys, LONG, |p| p == "rl-b").await);
    assert_clean(&ns, true);
}

/// A drain is handed over by the drained pod's own agent: the controller's release request names
/// each listener's successor, and the agent, once its app stopped the listener, gives the Lease to
/// that pod with the next token in the write that would have released it. The controller writes
/// one patch per listener (the request), not two (request, then assignment); each listener moves
/// once, token + 1, and the Handover Event still counts every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_pods_agent_hands_its_listeners_to_their_successor() {
    let ns = Ns::plain("handover").await;
    let kubectl = ns.cluster.kubectl();
    let ctl = ok(ns.start_controller().await);
    ok(ns.create_pod("ho-a").await);
    let (spec, keys) = listeners("sxt", 4);
    ok(ns.create_set("sxt", spec, 5).await);
    let before = ok(ns.settled("sxt", 4, "4 listeners on ho-a", LONG).await);
    ok(ns.create_pod("ho-b").await);
    let written = ns.cluster.writes().len();
    kubectl
        .ok(&["annotate", "pod", "ho-a", "-n", &ns.name, "baton.dev/drain=true"])
        .await;
    ok(ns.wait_running("all on ho-b", &keys, LONG, |p| p == "ho-b").await);
    let after = ok(ns.settled("sxt", 4, "4 listeners on ho-b", LONG).await);
    for (id, (holder, token)) in &after {
        assert_eq!(holder.as_deref(), Some("ho-b"));
        assert_eq!(*token, before[id].1 + 1, "{id}: one move, the next token");
    }
    let lease_patches: Vec<(String, String)> = ns.cluster.writes()[written..]
        .iter()
        .filter(|(_, path)| path.contains("/leases/sxt-"))
        .cloned()
        .collect();
    let by_controller = lease_patches.iter().filter(|(who, _)| who.contains(&ctl)).count();
    assert_eq!(
        by_controller, 4,
        "one request per listener, no assignment: {lease_patches:#?}"
    );
    ok(wait_for("the Handover Event of all 4", LONG, || async {
        (covered(&ns, "Handover").await == 4).then_some(())
    })
    .await);
    assert_clean(&ns, true);
}
