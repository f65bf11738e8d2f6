//! A liveness Lease deleted while the agent's renewal of it is in flight stays deleted. A PUT of
//! a missing Lease creates it (kube-apiserver's Lease strategy allows create on update), so an
//! agent renewing with PUT would bring back a Lease an operator had just deleted by hand. Every
//! Lease write of the agent is a merge patch conditional on the resourceVersion: 404 (or 409)
//! when the Lease is gone, and only the controller creates liveness Leases. Meanwhile the
//! listener keeps running on its own Lease's renewals, without a gap and without a duplicate, and
//! the agent registers again on the liveness Lease the controller makes anew.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton::api::listenerset::lease_name;
use baton::api::listenerset::liveness::{liveness_lease_name, registration};
use baton_sim::FaultRule;
use kube::api::DeleteParams;

use crate::harness::{listeners, wait_for, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// Answered writes (create, update or patch) of Leases by `user`, by HTTP code (the audit's counts:
/// exact, unbounded).
fn answered(ns: &Ns, user: &str) -> BTreeMap<u16, u64> {
    let write = |verb: &str| matches!(verb, "update" | "patch" | "create");
    ns.sim_counts(|k| (k.user == user && k.resource == "leases" && write(&k.verb)).then_some(k.code))
}

/// What was answered since `before`.
fn since(before: &BTreeMap<u16, u64>, now: &BTreeMap<u16, u64>) -> BTreeMap<u16, u64> {
    now.iter()
        .map(|(c, n)| (*c, n - before.get(c).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// sim-only: it holds one renewal of the agent in flight (baton-sim's fault rules delay one path
/// of one identity), which no proxy in front of kube-apiserver can single out under TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_a_renewal_in_flight_never_brings_back_a_deleted_liveness_lease() {
    let ns = Ns::plain("inflight").await;
    let controller = ok(ns.start_controller().await);
    let pod = ok(ns.create_pod("if-a").await);
    let (spec, keys) = listeners("sxt", 1);
    ok(ns.create_set("sxt", spec, 8).await);
    ok(ns.settled("sxt", 1, "the listener running", LONG).await);
    let starts = ns.log.starts();
    // No controller from here on: nothing but a write in flight could bring the Lease back.
    ok(ns.kill_controller(&controller).await);
    let live = liveness_lease_name(&pod.uid);
    let path = format!("/leases/{live}");
    let leases = ns.leases();
    // The agent's writes of its liveness Lease take 1 s to land (less than its 2 s request
    // timeout): delete the Lease while one of them is on its way.
    let slow = FaultRule {
        client: Some(pod.identity.clone()),
        latency: Duration::from_secs(1),
        path: Some(path.clone()),
        ..FaultRule::default()
    };
    ns.cluster.sim().faults.add_rule(slow.clone());
    let before = answered(&ns, &pod.identity);
    let t0 = Instant::now();
    ok(wait_for("a renewal on its way", LONG, || async {
        let writes = ns.cluster.sim().core.writes();
        writes
            .iter()
            .any(|w| w.at > t0 && w.identity.contains(&pod.identity) && w.path.ends_with(&path))
            .then_some(())
    })
    .await);
    leases
        .delete(&live, &DeleteParams::default())
        .await
        .expect("deleting the liveness Lease by hand");
    let outcome = ok(wait_for("the renewal answered", LONG, || async {
        let now = answered(&ns, &pod.identity);
        let new = since(&before, &now);
        new.keys().any(|c| *c != 200).then_some(new)
    })
    .await);
    println!("the agent's writes after the deletion were answered {outcome:?}");
    assert!(!outcome.contains_key(&201), "{outcome:?}");
    let found = leases.get_opt(&live).await.expect("reading the Lease");
    assert!(
        found.is_none(),
        "the liveness Lease deleted by hand is back, written by the agent (answers {outcome:?}): {found:?}"
    );
    ns.cluster.sim().faults.remove_rule(&slow);
    // With no registration, the agent keeps the listener alive by renewing its own Lease.
    let listener_path = format!("/leases/{}", lease_name("sxt", "l000"));
    let t1 = Instant::now();
    ok(wait_for("the agent renews the listener's own Lease", LONG, || async {
        let writes = ns.cluster.sim().core.writes();
        writes
            .iter()
            .any(|w| w.at > t1 && w.identity.contains(&pod.identity) && w.path.ends_with(&listener_path))
            .then_some(())
    })
    .await);
    // Past the lease duration since the deletion, it still runs (never stopped).
    let lease_duration = Duration::from_secs(8);
    ok(wait_for("a lease duration past the deletion", LONG, || async {
        (t0.elapsed() > lease_duration + Duration::from_secs(1)).then_some(())
    })
    .await);
    assert!(ns.log.running().contains_key(&keys[0]), "the listener stopped");
    assert_eq!(ns.log.starts(), starts, "the listener was never restarted");
    // The controller makes the liveness Lease anew; the agent registers on it.
    ok(ns.start_controller().await);
    ok(wait_for("the agent registered again", LONG, || async {
        let l = leases.get_opt(&live).await.ok()??;
        registration(&l, "if-a").map(|_| ())
    })
    .await);
    ok(ns.settled("sxt", 1, "the listener running", LONG).await);
    assert_eq!(ns.log.starts(), starts, "the listener was never restarted");
    assert_clean(&ns, true);
}
