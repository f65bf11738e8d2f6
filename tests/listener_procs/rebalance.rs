//! Evening out with real agents and apps that take time to stop: a scale-out from 5 to 10 pods
//! under 2,000 listeners moves half of them, each once, never more at once than
//! `maxConcurrentMoves`; a scale-in back to 5 moves only the listeners of the pods that go.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;

use crate::harness::app::AppConfig;
use crate::harness::history::LeaseRec;
use crate::harness::{listeners, wait_for, AgentFlags, Cluster, Ns};
use crate::{assert_clean, ok};

const LISTENERS: usize = 2000;
const MAX_MOVES: usize = 100;
/// How long a step (2,000 listeners placed, or 1,000 moved) may take. A move is four Lease
/// writes (release request, release, assignment, acknowledgement); on the real control plane
/// each goes through etcd, which sustains about a hundred writes a second on the 2-core
/// machine and far fewer with other tests beside (docs/benchmarks.md, "baton-sim beside the
/// real control plane"), so a step there takes minutes where baton-sim takes seconds.
fn long(ns: &Ns) -> Duration {
    if ns.cluster.is_real() {
        Duration::from_secs(480)
    } else {
        Duration::from_secs(180)
    }
}

fn pod(i: usize) -> String {
    format!("rb-{i}")
}

/// The Lease changes recorded after resourceVersion `since`, in order.
fn changes(ns: &Ns, since: u64) -> Vec<LeaseRec> {
    ns.cluster.history.with(&ns.name, |h| {
        h.leases.iter().filter(|l| l.rv > since).cloned().collect()
    })
}

/// The newest resourceVersion the recorder has seen.
fn now_rv(ns: &Ns) -> u64 {
    ns.cluster.history.rv.load(std::sync::atomic::Ordering::SeqCst)
}

/// Replay `recs` over `start` (listener → its last record): the most listeners on the move at
/// once (release asked, released, or assigned and not acknowledged), and each listener's holders
/// in order.
fn replay(start: &BTreeMap<String, LeaseRec>, recs: &[LeaseRec]) -> (usize, BTreeMap<String, Vec<String>>) {
    let moving = |l: &LeaseRec| l.release_requested.is_some() || l.holder.is_none() || !l.renewed;
    let mut state = start.clone();
    let mut most = state.values().filter(|l| moving(l)).count();
    let mut holders: BTreeMap<String, Vec<String>> = state
        .iter()
        .map(|(id, l)| (id.clone(), l.holder.iter().cloned().collect()))
        .collect();
    for rec in recs {
        if let Some(h) = &rec.holder {
            let seen = holders.entry(rec.listener.clone()).or_default();
            if seen.last() != Some(h) {
                seen.push(h.clone());
            }
        }
        state.insert(rec.listener.clone(), rec.clone());
        most = most.max(state.values().filter(|l| moving(l)).count());
    }
    (most, holders)
}

/// Each listener's last record up to now.
fn last_records(ns: &Ns) -> BTreeMap<String, LeaseRec> {
    changes(ns, 0).into_iter().map(|l| (l.listener.clone(), l)).collect()
}

async fn set_policy(ns: &Ns, policy: &str) {
    let patch = json!({"spec": {"rebalance": {"policy": policy}}});
    ok(ns
        .sets()
        .patch(
            "acct",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string()));
}

async fn status(ns: &Ns, set: &str) -> serde_json::Value {
    ok(ns.sets().get(set).await.map_err(|e| e.to_string()))
        .status
        .map(|s| json!(s))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_evens_out_in_bounded_moves_and_a_scale_in_moves_only_what_must() {
    let app = AppConfig {
        stop_delay: Duration::from_millis(500),
        ..Default::default()
    };
    let ns = ok(Ns::new(Cluster::shared(), "rebalance", app, AgentFlags::default()).await);
    // 2,000 Lease writes in a burst on a loaded machine: the shipped election timings, not the
    // harness's quick ones (a 1.5 s renew deadline can pass while the writes queue).
    ns.use_shipped_election();
    ok(ns.start_controller().await);
    for i in 0..5 {
        ok(ns.create_pod(&pod(i)).await);
    }
    let (spec, keys) = listeners("acct", LISTENERS);
    ok(ns.create_set("acct", spec, 15).await);
    let patch = json!({"spec": {"rebalance": {"maxConcurrentMoves": MAX_MOVES, "minResidenceSeconds": 5}}});
    ok(ns
        .sets()
        .patch(
            "acct",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|e| e.to_string()));
    let long = long(&ns);
    ok(ns.settled("acct", LISTENERS, "2,000 listeners on 5 pods", long).await);

    // Scale out: five more pods, evened out once all five are up. (The harness starts pods one
    // after another; on a loaded machine the first could be Ready and evened out to before the
    // last exists, which moves more than the fewest: a scale is one step for a workload, which
    // creates its pods together and is not Healthy until they are up.)
    let (before, since) = (last_records(&ns), now_rv(&ns));
    set_policy(&ns, "Sticky").await;
    for i in 5..10 {
        ok(ns.create_pod(&pod(i)).await);
    }
    set_policy(&ns, "Balanced").await;
    let balanced = ok(wait_for("evened out over 10 pods", long, || async {
        let s = status(&ns, "acct").await;
        let r = &s["rebalance"];
        // All ten pods hold listeners: the status describes the scaled set, not the one before.
        let ten = s["pods"].as_object().is_some_and(|p| p.len() == 10);
        let done =
            ten && r["skew"].as_i64()? <= 1 && r["movesInProgress"].as_i64()? == 0 && s["running"] == json!(LISTENERS);
        done.then_some(s)
    })
    .await);
    ok(ns
        .wait_running("every listener running once", &keys, long, |_| true)
        .await);
    let (most, holders) = replay(&before, &changes(&ns, since));
    assert!(
        most <= MAX_MOVES,
        "{most} listeners on the move at once (max {MAX_MOVES})"
    );
    let moved: Vec<(&String, &Vec<String>)> = holders.iter().filter(|(_, h)| h.len() > 1).collect();
    assert!(
        moved.iter().all(|(_, h)| h.len() == 2),
        "a listener moved twice: {:?}",
        moved.iter().find(|(_, h)| h.len() > 2)
    );
    assert_eq!(
        moved.len(),
        LISTENERS / 2,
        "5 → 10 pods moves half the listeners, no more"
    );
    let on = |p: &str| {
        holders
            .values()
            .filter(|h| h.last().map(String::as_str) == Some(p))
            .count()
    };
    for i in 0..10 {
        assert_eq!(on(&pod(i)), LISTENERS / 10, "{} holds {}", pod(i), on(&pod(i)));
    }
    assert_eq!(
        balanced["rebalance"]["policy"], "Balanced",
        "a new set is Balanced: {balanced}"
    );

    // Scale in: the five new pods go; only their listeners move, and nothing evens out after.
    let (before, since) = (last_records(&ns), now_rv(&ns));
    for i in 5..10 {
        ok(ns.delete_pod(&pod(i), 30).await);
    }
    let survivors: BTreeSet<String> = (0..5).map(pod).collect();
    ok(ns
        .wait_running("all back on 5 pods", &keys, long, |p| survivors.contains(p))
        .await);
    // The status counts go out at most every half second: wait for the one after the moves.
    let even = wait_for(
        "the status shows the placement even",
        Duration::from_secs(15),
        || async {
            let s = status(&ns, "acct").await;
            s["rebalance"]["skew"].as_i64().is_some_and(|k| k <= 1).then_some(())
        },
    )
    .await;
    assert!(even.is_ok(), "placement kept it even: {}", status(&ns, "acct").await);
    let recs = changes(&ns, since);
    let asked: BTreeSet<&str> = recs
        .iter()
        .filter(|l| l.release_requested.as_deref() == Some("rebalance"))
        .map(|l| l.listener.as_str())
        .collect();
    // On kube-apiserver, whose watches lag furthest behind the controller's writes, the
    // placement can still end two apart here for a cause not found yet (docs/listeners.md, "When
    // it waits"): evening out may mend it with a few moves, never more than 1 % of what had to
    // move. baton-sim must hold the placement even.
    let allowed = if ns.cluster.is_real() { LISTENERS / 2 / 100 } else { 0 };
    assert!(
        asked.len() <= allowed,
        "evened out during a scale-in ({} listeners, at most {allowed}): {:?}",
        asked.len(),
        asked.first()
    );
    let (_, holders) = replay(&before, &recs);
    for (id, h) in &holders {
        if survivors.contains(&h[0]) && !asked.contains(id.as_str()) {
            assert_eq!(h.len(), 1, "{id} left a pod that stayed: {h:?}");
        }
    }
    assert_clean(&ns, true);
}
