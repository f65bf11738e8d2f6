//! Evening out with in-process agents: a scale-out that adds pods one at a time, each created once
//! the one before is Ready (as a StatefulSet does), moves the fewest listeners the final pods
//! need, each once.
use std::collections::BTreeMap;
use std::time::Duration;

use baton::api::listenerset::{RebalancePolicy, RebalanceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::PostParams;

use crate::listener_world::*;

const LONG: Duration = Duration::from_secs(30);
const LISTENERS: usize = 12;

fn pod(i: usize) -> String {
    format!("so-{i}")
}

/// Listeners held per pod.
fn loads(holders: &BTreeMap<String, (Option<String>, i32)>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (holder, _) in holders.values() {
        if let Some(h) = holder {
            *out.entry(h.clone()).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_one_pod_at_a_time_moves_each_listener_once_to_the_final_pods() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    for i in 0..4 {
        w.create_pod(&pod(i), "svc").await;
        w.wait_ready(&pod(i)).await;
    }
    let (_stop, _ctl) = w.controller("controller-a").await;
    let mut set = listenersets::set(NS, "even", "svc", listeners(LISTENERS), 5);
    set.spec.rebalance = Some(RebalanceSpec {
        policy: Some(RebalancePolicy::Balanced),
        max_skew: 1,
        max_concurrent_moves: IntOrString::Int(12),
        min_residence_seconds: 0,
    });
    w.sets().create(&PostParams::default(), &set).await.expect("the set");
    let all = ids(LISTENERS);
    w.wait_running("12 listeners on 4 pods", &all, LONG, |_| true).await;
    let before = wait_for("3 listeners acknowledged on each of the 4 pods", LONG, || async {
        let h = w.holders("even").await;
        let even = loads(&h).values().all(|n| *n == 3) && loads(&h).len() == 4;
        let running = w.sets().get("even").await.ok()?.status?.running == 12;
        (even && running).then_some(h)
    })
    .await;

    // From 4 to 8 pods, each created as soon as the one before is Ready.
    for i in 4..8 {
        w.create_pod(&pod(i), "svc").await;
        w.wait_ready(&pod(i)).await;
    }
    let after = wait_for("evened out over the 8 pods, nothing on the move", LONG, || async {
        let s = w.sets().get("even").await.ok()?.status?;
        let r = s.rebalance.clone()?;
        let settled = s.pods.len() == 8 && r.skew <= 1 && r.moves_in_progress == 0 && s.running == 12;
        if !settled {
            return None;
        }
        Some(w.holders("even").await)
    })
    .await;
    w.wait_running("every listener running once", &all, LONG, |_| true)
        .await;

    // Each move is one handover: the Lease's token rises by one.
    let moved: Vec<(&String, i32)> = after
        .iter()
        .map(|(l, (_, token))| (l, token - before.get(l).map_or(0, |(_, t)| *t)))
        .filter(|(_, up)| *up > 0)
        .collect();
    let final_loads = loads(&after);
    assert!(
        moved.iter().all(|(_, up)| *up == 1),
        "a listener moved more than once: {moved:?}, loads {final_loads:?}"
    );
    assert_eq!(
        moved.len(),
        4,
        "12 listeners from 4 to 8 pods: 4 moves, one to each new pod; moved {moved:?}, loads {final_loads:?}"
    );
    for i in 0..8 {
        let want = if i < 4 { 2 } else { 1 };
        assert_eq!(final_loads.get(&pod(i)), Some(&want), "{final_loads:?}");
    }
    w.log.assert_no_duplicates();
}
