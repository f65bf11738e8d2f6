//! What an operator does in an incident: Leases deleted by hand with
//! real kubectl while apps take 1 s to stop, a Ready pod whose agent died, and fencing tokens
//! across garbage collection, controller crashes and failovers.
use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::harness::app::AppConfig;
use crate::harness::{listeners, wait_for, AgentFlags, Cluster, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// Apps that take 1 s to stop a listener.
fn slow() -> AppConfig {
    AppConfig {
        stop_delay: Duration::from_secs(1),
        ..AppConfig::default()
    }
}

async fn settled(ns: &Ns, set: &str, keys: &[String], what: &str) -> BTreeMap<String, (Option<String>, i32)> {
    ok(ns.settled(set, keys.len(), what, LONG).await)
}

/// Case 1: `kubectl delete lease -l baton.dev/listenerset=sxt` — the emergency procedure
/// for stuck listeners that a Redis lock scheme needs — five times while every listener runs and apps take 1 s to stop: no listener is
/// ever in two apps, tokens only rise, and each Lease comes back for the pod that ran it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_deleted_leases_never_make_a_duplicate() {
    let ns = ok(Ns::new(Cluster::shared(), "case1", slow(), AgentFlags::default()).await);
    let kubectl = ns.cluster.kubectl();
    ok(ns.start_controller().await);
    for p in ["hd-a", "hd-b", "hd-c"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("sxt", 12);
    ok(ns.create_set("sxt", spec, 5).await);
    let mut before = settled(&ns, "sxt", &keys, "12 listeners running").await;
    for round in 1..=5 {
        let out = kubectl
            .ok(&[
                "delete",
                "lease",
                "-n",
                &ns.name,
                "-l",
                "baton.dev/listenerset=sxt",
                "--wait=false",
            ])
            .await;
        assert!(out.contains("deleted"), "round {round}: {out}");
        let after = ok(wait_for(&format!("round {round}: every Lease back"), LONG, || async {
            let now = ns.holders("sxt").await.ok()?;
            let back = before
                .iter()
                .all(|(id, (_, t))| now.get(id).is_some_and(|(h, t2)| h.is_some() && t2 > t));
            back.then_some(now)
        })
        .await);
        let now = settled(&ns, "sxt", &keys, &format!("round {round}: all running again")).await;
        assert_clean(&ns, false);
        for (id, (holder, token)) in &now {
            assert!(*token >= after[id].1, "{id}: token went back");
            assert_eq!(
                holder, &before[id].0,
                "round {round}: {id} stays with the pod that ran it"
            );
        }
        before = now;
    }
    let a = ns.log.analyse();
    println!(
        "5 rounds of deleting 12 Leases: {} starts, {} samples, worst gap {:?}",
        ns.log.starts(),
        a.samples,
        a.gaps.iter().max()
    );
    assert_clean(&ns, false);
    let reasons = kubectl
        .ok(&["get", "events", "-n", &ns.name, "-o", "jsonpath={.items[*].reason}"])
        .await;
    assert!(reasons.contains("LeaseRecreated"), "{reasons}");
    assert!(!reasons.contains("Takeover"), "{reasons}");
}

/// Case 2: a pod whose sidecar and app died but which stays Ready gets nothing new — not in the
/// set whose Leases it let expire, not in another set — and no status names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_pod_with_a_dead_agent_gets_nothing_new() {
    let ns = Ns::plain("case2").await;
    ok(ns.start_controller().await);
    for p in ["da-a", "da-b", "da-c"] {
        ok(ns.create_pod(p).await);
    }
    let lease = 2;
    let (spec, keys) = listeners("sxt", 6);
    ok(ns.create_set("sxt", spec, lease).await);
    ok(ns.wait_running("6 listeners", &keys, LONG, |_| true).await);
    // da-a's containers die; the pod stays Ready (nothing restarts them).
    ok(ns.kill_containers("da-a").await);
    ok(ns.mark_dead("da-a").await);
    ok(ns
        .wait_running("taken over from da-a", &keys, LONG, |p| p != "da-a")
        .await);
    // New listeners in the same set and in another one: none goes to da-a.
    let (more, more_keys) = listeners("sxt", 9);
    let patch = json!({"spec": {"listeners": more}});
    ns.sets()
        .patch("sxt", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch sxt");
    let (other, other_keys) = listeners("other", 6);
    ok(ns.create_set("other", other, lease).await);
    ok(ns
        .wait_running("9 listeners off da-a", &more_keys, LONG, |p| p != "da-a")
        .await);
    ok(ns
        .wait_running("the other set off da-a", &other_keys, LONG, |p| p != "da-a")
        .await);
    // Two more lease durations: still nothing on da-a.
    tokio::time::sleep(Duration::from_secs(2 * lease as u64)).await;
    for set in ["sxt", "other"] {
        let st = ns.sets().get(set).await.expect("set").status.unwrap_or_default();
        assert!(!st.pods.contains_key("da-a"), "{set}: {:?}", st.pods);
        let held = ok(ns.holders(set).await);
        assert!(
            held.values().all(|(h, _)| h.as_deref() != Some("da-a")),
            "{set}: {held:?}"
        );
    }
    assert_clean(&ns, false);
}

/// Case 5: a listener handed over 3 times (token ≥ 3); both pods force-deleted (the garbage
/// collector deletes its Lease with them); the controller SIGKILLed and replaced; a new pod: the
/// token continues above. Then the pod is replaced while no controller runs, and then the leader
/// is SIGKILLed mid-handover with a standby running: the token still only rises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_survive_gc_restarts_and_failovers() {
    let ns = Ns::plain("case5").await;
    let ctl1 = ok(ns.start_controller().await);
    for p in ["ft-a", "ft-b"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("sxt", 1);
    ok(ns.create_set("sxt", spec, 3).await);
    ok(ns.wait_running("l000 running", &keys, LONG, |_| true).await);
    let drain = |v: serde_json::Value| json!({"metadata": {"annotations": {"baton.dev/drain": v}}});
    for n in 1..=3 {
        let holder = ns.running_on()["sxt/l000"].clone();
        ns.pods_api()
            .patch(
                &holder,
                &PatchParams::default(),
                &Patch::Merge(&drain(json!(jiff::Timestamp::now().to_string()))),
            )
            .await
            .expect("drain");
        ok(ns
            .wait_running(&format!("handover {n}"), &keys, LONG, |p| p != holder)
            .await);
        ns.pods_api()
            .patch(&holder, &PatchParams::default(), &Patch::Merge(&drain(json!(null))))
            .await
            .expect("undrain");
    }
    let handed = ns.log.tokens()["sxt/l000"];
    assert!(handed >= 3, "three handovers: token {handed}");
    ok(wait_for("the status's token ceiling covers the token", LONG, || async {
        let s = ns.sets().get("sxt").await.ok()?;
        (s.status?.fencing_token_ceiling >= Some(handed)).then_some(())
    })
    .await);

    // Both pods force-deleted, their node gone with them: the garbage collector deletes the
    // Lease, which goes once the controller knows nobody can run its listener (its finalizer).
    for p in ["ft-a", "ft-b"] {
        ok(ns.force_delete_pod(p).await);
        ok(ns.kill_containers(p).await);
    }
    ok(wait_for("the Lease garbage-collected", LONG, || async {
        ns.holders("sxt").await.ok()?.is_empty().then_some(())
    })
    .await);
    ok(ns.kill_controller(&ctl1).await);
    let ctl2 = ok(ns.start_controller().await);
    ok(ns.create_pod("ft-c").await);
    ok(ns.wait_running("l000 on ft-c", &keys, LONG, |p| p == "ft-c").await);
    let token = ns.log.tokens()["sxt/l000"];
    assert!(
        token > handed,
        "token after GC and a controller crash: {token} (before: {handed})"
    );

    // The pod is replaced while no controller runs.
    ok(ns.kill_controller(&ctl2).await);
    ok(ns.force_delete_pod("ft-c").await);
    ok(ns.kill_containers("ft-c").await);
    ok(ns.create_pod("ft-d").await);
    let ctl3 = ok(ns.start_controller().await);
    ok(ns.wait_running("l000 on ft-d", &keys, LONG, |p| p == "ft-d").await);
    let after_gap = ns.log.tokens()["sxt/l000"];
    assert!(
        after_gap > token,
        "token after a replacement with no controller: {after_gap} (before: {token})"
    );

    // A standby runs; the leader is SIGKILLed right after a drain starts a handover.
    let _standby = ok(ns.start_controller().await);
    ok(ns.create_pod("ft-e").await);
    ns.pods_api()
        .patch(
            "ft-d",
            &PatchParams::default(),
            &Patch::Merge(&drain(json!(jiff::Timestamp::now().to_string()))),
        )
        .await
        .expect("drain");
    ok(ns.kill_controller(&ctl3).await);
    ok(ns.wait_running("l000 on ft-e", &keys, LONG, |p| p == "ft-e").await);
    let last = ns.log.tokens()["sxt/l000"];
    assert!(last > after_gap, "token after a failover: {last} (before: {after_gap})");
    assert_clean(&ns, false);
}
