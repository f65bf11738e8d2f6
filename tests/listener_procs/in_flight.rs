//! A Lease deleted while a write to it is in flight stays deleted. A PUT of a missing Lease
//! creates it (kube-apiserver's Lease strategy allows create on update), so an agent renewing
//! with PUT brought back a Lease an operator had just deleted by hand — naming the agent's own
//! pod, with a token no controller wrote. Every Lease write of the agent and the controller is a
//! merge patch conditional on the resourceVersion: 404 when the Lease is gone.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton::api::listenerset::lease_name;
use baton_sim::FaultRule;
use kube::api::DeleteParams;

use crate::harness::kubectl::Kubectl;
use crate::harness::{listeners, wait_for, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// Answered writes (update or patch) of Leases by `user`, by HTTP code (the audit's counts:
/// exact, unbounded). The agent under test holds one Lease: these are its writes of it.
fn answered(ns: &Ns, user: &str) -> BTreeMap<u16, u64> {
    let mut by_code = BTreeMap::new();
    for (k, n) in ns.cluster.sim.core.auth.audit.counts() {
        if k.user == user && k.resource == "leases" && matches!(k.verb.as_str(), "update" | "patch") {
            *by_code.entry(k.code).or_insert(0) += n;
        }
    }
    by_code
}

/// What was answered since `before`.
fn since(before: &BTreeMap<u16, u64>, now: &BTreeMap<u16, u64>) -> BTreeMap<u16, u64> {
    now.iter()
        .map(|(c, n)| (*c, n - before.get(c).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_in_flight_never_brings_back_a_deleted_lease() {
    let ns = Ns::plain("inflight").await;
    let kubectl = Kubectl::new(&ns.cluster.sim);
    let controller = ok(ns.start_controller().await);
    let pod = ok(ns.create_pod("if-a").await);
    let (spec, keys) = listeners("sxt", 1);
    ok(ns.create_set("sxt", spec, 8).await);
    ok(ns.settled("sxt", 1, "the listener running", LONG).await);
    // No controller from here on: nothing but a write in flight could bring the Lease back.
    ok(ns.kill_controller(&controller).await);
    let lease = lease_name("sxt", "l000");
    let path = format!("/leases/{lease}");
    let leases = ns.leases();
    // The agent's writes of this Lease take 1 s to land (less than its 2 s request timeout):
    // delete the Lease while one of them is on its way.
    let slow = FaultRule {
        client: Some(pod.identity.clone()),
        latency: Duration::from_secs(1),
        path: Some(path.clone()),
        ..FaultRule::default()
    };
    ns.cluster.sim.faults.add_rule(slow.clone());
    let mut outcome = None;
    for attempt in 1..=5 {
        let before = answered(&ns, &pod.identity);
        let t0 = Instant::now();
        ok(
            wait_for(&format!("attempt {attempt}: a renewal on its way"), LONG, || async {
                let writes = ns.cluster.sim.core.writes();
                writes
                    .iter()
                    .any(|w| w.at > t0 && w.identity.contains(&pod.identity) && w.path.ends_with(&path))
                    .then_some(())
            })
            .await,
        );
        leases
            .delete(&lease, &DeleteParams::default())
            .await
            .expect("deleting the Lease by hand");
        // The renewal that arrived after `before` is answered (before or after the deletion).
        let after = ok(wait_for("the renewal answered", LONG, || async {
            let now = answered(&ns, &pod.identity);
            (now.values().sum::<u64>() > before.values().sum::<u64>()).then(|| since(&before, &now))
        })
        .await);
        if after.keys().any(|c| *c != 200) {
            println!("attempt {attempt}: the renewal in flight during the deletion was answered {after:?}");
            outcome = Some(after);
            break;
        }
        // It landed before the deletion (a loaded machine): nothing was in flight. The agent
        // stops the listener; start again from the Lease the controller recreates.
        let id = ok(ns.start_controller().await);
        ok(ns.settled("sxt", 1, "the listener running again", LONG).await);
        ok(ns.kill_controller(&id).await);
    }
    ns.cluster.sim.faults.remove_rule(&slow);
    let outcome = outcome.expect("a Lease deleted while a renewal was in flight, within 5 attempts");
    let found = leases.get_opt(&lease).await.expect("reading the Lease");
    assert!(
        found.is_none(),
        "the Lease deleted by hand is back, written by the agent's renewal (answers {outcome:?}): {found:?}"
    );
    assert!(!outcome.contains_key(&201), "{outcome:?}");
    ok(wait_for("the listener stopped", LONG, || async {
        (!ns.log.running().contains_key(&keys[0])).then_some(())
    })
    .await);
    // The controller recreates it for the same pod, next token.
    ok(ns.start_controller().await);
    ok(ns.settled("sxt", 1, "the listener running again", LONG).await);
    let reasons = kubectl
        .ok(&["get", "events", "-n", &ns.name, "-o", "jsonpath={.items[*].reason}"])
        .await;
    assert!(reasons.contains("LeaseRecreated"), "{reasons}");
    assert_clean(&ns, true);
}
