//! Many sets on the same pods, as a platform with one set per service has them: each set orders
//! equally loaded pods its own way, so what a drain moves spreads over the pods instead of every
//! set handing its listeners to the pod whose name sorts first.
use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::{listeners, wait_for, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(120);
/// Sets of one listener per pod: a drain leaves each set a tie among the other pods.
const SETS: usize = 30;
const PODS: [&str; 4] = ["ms-0", "ms-1", "ms-2", "ms-3"];

/// GETs of pods by the controller `ctl` so far (the simulator's audit; the real control plane's
/// keeps writes only: `None`).
fn pod_gets(ns: &Ns, ctl: &str) -> Option<u64> {
    ns.cluster.real().is_none().then(|| {
        let gets = ns.sim_counts(|k| (k.user == ctl && k.resource == "pods" && k.verb == "get").then_some(()));
        gets.values().sum()
    })
}

fn set(i: usize) -> String {
    format!("ms{i:02}")
}

/// 30 sets of 4 listeners on 4 pods, one per pod; `kubectl annotate` drains the last pod. Each
/// set's listener there may go to any of the other three, all equally loaded: were the tie
/// broken by name in every set alike, all 30 would land on `ms-0` (which then holds twice what
/// the others do). Spread over the three at random, one gets more than 23 about once in 1.6
/// million runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_spreads_many_sets_listeners_over_the_pods() {
    let ns = Ns::plain("spread").await;
    let kubectl = ns.cluster.kubectl();
    let ctl = ok(ns.start_controller().await);
    for p in PODS {
        ok(ns.create_pod(p).await);
    }
    let mut keys = Vec::new();
    for i in 0..SETS {
        let (spec, k) = listeners(&set(i), PODS.len());
        ok(ns.create_set(&set(i), spec, 15).await);
        keys.extend(k);
    }
    // A pod whose agent had not registered yet when a set was placed got nothing of it: evening
    // out (a set is Balanced) gives it its one listener once it has.
    ok(wait_for("each set with one listener on each pod", LONG, || async {
        for i in 0..SETS {
            let held = ns.holders(&set(i)).await.ok()?;
            let on = |p: &str| held.values().filter(|(h, _)| h.as_deref() == Some(p)).count();
            if !PODS.iter().all(|p| on(p) == 1) {
                return None;
            }
        }
        Some(())
    })
    .await);
    let mut before = BTreeMap::new();
    for i in 0..SETS {
        let held = ok(ns
            .settled(&set(i), PODS.len(), "each set's listeners running", LONG)
            .await);
        for (id, (holder, _)) in held {
            before.insert(format!("{}/{id}", set(i)), holder.unwrap_or_default());
        }
    }
    let drained = PODS[3];
    let moving: Vec<String> = before
        .iter()
        .filter(|(_, h)| h.as_str() == drained)
        .map(|(l, _)| l.clone())
        .collect();
    assert_eq!(moving.len(), SETS, "one listener of each set on {drained}: {before:?}");
    let gets_before = pod_gets(&ns, &ctl);
    kubectl
        .ok(&["annotate", "pod", drained, "-n", &ns.name, "baton.dev/drain=true"])
        .await;
    ok(ns
        .wait_running("the drained pod's listeners running elsewhere", &keys, LONG, |p| {
            p != drained
        })
        .await);
    // Each set's pass names a successor for its listener, and the API server confirms each pod
    // named: once per pod, not once per set's pass (a pass uses what another pass just asked).
    if let (Some(before), Some(after)) = (gets_before, pod_gets(&ns, &ctl)) {
        let gets = after - before;
        assert!(
            gets < SETS as u64 / 2,
            "{gets} GETs of pods by the controller in a drain of {SETS} sets' listeners to 3 pods"
        );
    }
    let on = ns.running_on();
    let mut landed: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &moving {
        *landed.entry(on.get(l).map_or("nowhere", String::as_str)).or_default() += 1;
    }
    assert!(
        landed.values().all(|n| *n <= 23),
        "the {SETS} listeners of {drained} went to {landed:?}: not spread over the other pods"
    );
    for i in 0..SETS {
        let held = ok(ns
            .settled(&set(i), PODS.len(), "each set's listeners running", LONG)
            .await);
        let mut per_pod: BTreeMap<String, usize> = BTreeMap::new();
        for (holder, _) in held.values() {
            *per_pod.entry(holder.clone().unwrap_or_default()).or_default() += 1;
        }
        assert!(
            per_pod.len() == 3 && per_pod.values().all(|n| (1..=2).contains(n)),
            "{} is placed unevenly after the drain: {per_pod:?}",
            set(i)
        );
    }
    assert_clean(&ns, true);
}
