//! Graceful handover: on SIGTERM a pod's agent stops its listeners and releases their Leases; asked
//! to let a listener go to a named successor (a drain), it hands the Lease over itself.
use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ListParams;

use baton::api::listenerset::liveness::{is_leaving, liveness_lease_name};

use crate::harness::app::AppConfig;
use crate::harness::{listeners, signal, wait_for, AgentFlags, Cluster, Ns};
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

/// A handover that reaches a pod whose agent has begun to shut down moves on at the next pass. The
/// successor's agent marked its pod leaving on its liveness Lease and died before the drained
/// pod's agent handed the listener over: nothing will acknowledge the handover, and an agent that
/// leaves starts nothing more, so the controller gives the listener to another pod at once
/// instead of waiting out the Lease's duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_to_a_pod_whose_agent_is_leaving_moves_on_at_once() {
    const LEASE: i32 = 30;
    // The apps take 5 s to stop a listener: the window in which the successor's agent leaves.
    let app = AppConfig {
        stop_delay: Duration::from_secs(5),
        ..AppConfig::default()
    };
    let ns = ok(Ns::new(Cluster::shared(), "leaving-successor", app, AgentFlags::default()).await);
    let kubectl = ns.cluster.kubectl();
    ok(ns.start_controller().await);
    for p in ["ls-a", "ls-b"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("sxt", 2);
    ok(ns.create_set("sxt", spec, LEASE).await);
    let held = ok(wait_for("one listener on each pod", LONG, || async {
        let h = ns.holders("sxt").await.ok()?;
        let on = |p: &str| h.values().filter(|(holder, _)| holder.as_deref() == Some(p)).count();
        (on("ls-a") == 1 && on("ls-b") == 1).then_some(h)
    })
    .await);
    ok(ns.wait_running("one on each pod", &keys, LONG, |_| true).await);
    let Some((moving, (_, token))) = held.iter().find(|(_, (h, _))| h.as_deref() == Some("ls-a")) else {
        panic!("nothing on ls-a: {held:?}");
    };
    let key = keys
        .iter()
        .find(|k| k.ends_with(&format!("/{moving}")))
        .cloned()
        .unwrap_or_default();
    // Drain ls-a: the release request names ls-b, the only pod that may take the listener.
    kubectl
        .ok(&["annotate", "pod", "ls-a", "-n", &ns.name, "baton.dev/drain=true"])
        .await;
    ok(wait_for("the release request", LONG, || async {
        let asked = ns.cluster.history.with(&ns.name, |h| {
            h.leases
                .iter()
                .any(|l| &l.listener == moving && l.release_requested.is_some())
        });
        asked.then_some(())
    })
    .await);
    // ls-b's agent begins to shut down (it marks its pod leaving) and dies before the handover.
    let b = ok(ns.pod("ls-b"));
    if let Some(pid) = b.sidecar_pid() {
        signal(pid, "TERM").await;
    }
    let live = liveness_lease_name(&b.uid);
    ok(wait_for("ls-b marked leaving", LONG, || async {
        let l = ns.leases().get(&live).await.ok()?;
        is_leaving(&l).then_some(())
    })
    .await);
    ok(ns.kill_agent("ls-b").await);
    ok(ns.create_pod("ls-c").await);
    ok(wait_for("the handover to ls-b", LONG, || async {
        let handed = ns.cluster.history.with(&ns.name, |h| {
            h.leases
                .iter()
                .any(|l| &l.listener == moving && l.holder.as_deref() == Some("ls-b") && l.transitions == token + 1)
        });
        handed.then_some(())
    })
    .await);
    // Well within the Lease's 30 s, which an unacknowledged assignment would otherwise wait out.
    ok(ns
        .wait_running("the listener on ls-c", &[key], Duration::from_secs(12), |p| p == "ls-c")
        .await);
    assert_clean(&ns, true);
}

/// An agent that holds nothing still marks its pod leaving before it exits on SIGTERM: a handover
/// already on its way to the pod then moves on at once, and the controller hands it nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_holding_nothing_marks_its_pod_leaving_before_it_exits() {
    let ns = Ns::plain("leaving-empty").await;
    ok(ns.start_controller().await);
    for p in ["le-a", "le-b"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, _) = listeners("sxt", 1);
    ok(ns.create_set("sxt", spec, 5).await);
    let held = ok(ns.settled("sxt", 1, "1 listener running", LONG).await);
    let idle = match held.values().next() {
        Some((Some(h), _)) if h == "le-a" => "le-b",
        _ => "le-a",
    };
    let pod = ok(ns.pod(idle));
    let live = liveness_lease_name(&pod.uid);
    ok(wait_for("its agent registered", LONG, || async {
        let l = ns.leases().get(&live).await.ok()?;
        baton::api::listenerset::liveness::is_registered(&l).then_some(())
    })
    .await);
    ok(ns.term_agent(idle).await);
    let l = ok(ns.leases().get(&live).await.map_err(|e| e.to_string()));
    assert!(
        is_leaving(&l),
        "{idle} exited without marking its pod leaving: {:?}",
        l.metadata.annotations
    );
    assert_clean(&ns, true);
}
