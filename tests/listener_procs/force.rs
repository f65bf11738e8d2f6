//! A force-deleted holder is not proof the listener stopped. After `kubectl
//! delete pod --force --grace-period=0` the pod's containers may run on (the node has not caught
//! up, or is cut off): its listeners move only once its agent, by its own safety rule, can no
//! longer be running them. A pod whose deletion the controller saw complete (the kubelet reported
//! every container terminated) is proof: its listeners move at once.
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use tokio::time::Instant;

use crate::harness::app::AppConfig;
use crate::harness::{listeners, wait_for, AgentFlags, Cluster, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_deleted_holder_keeps_its_listeners_until_it_must_have_stopped() {
    let app = AppConfig {
        stop_delay: Duration::from_secs(1),
        ..AppConfig::default()
    };
    // The apps take 1 s to stop: the agents stop listeners 2 s before a Lease could expire.
    let agent = AgentFlags {
        safety_margin: Some(2.0),
        ..AgentFlags::default()
    };
    let ns = ok(Ns::new(Cluster::shared(), "case6", app, agent).await);
    let kubectl = ns.cluster.kubectl();
    ok(ns.start_controller().await);
    for p in ["fd-a", "fd-b", "fd-c", "fd-d"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, fast) = listeners("fast", 8);
    ok(ns.create_set("fast", spec, 5).await);
    let (spec, slow) = listeners("slow", 4);
    ok(ns.create_set("slow", spec, 20).await);
    let all: Vec<String> = fast.iter().chain(&slow).cloned().collect();
    ok(ns.settled("fast", 8, "fast running", LONG).await);
    ok(ns.settled("slow", 4, "slow running", LONG).await);

    // A: force-deleted while its sidecar and app run on: they see the garbage collector delete
    // the pod's Leases (which stay, being deleted, until nobody runs their listeners), stop the
    // listeners and let them go. (Which listeners it holds is the sets' own order of the pods.)
    let first_on_a = ns
        .running_on()
        .into_iter()
        .filter(|(l, p)| p == "fd-a" && l.starts_with("fast/"))
        .map(|(l, _)| l.trim_start_matches("fast/").to_string())
        .min();
    let first_on_a = first_on_a.unwrap_or_else(|| panic!("fd-a runs no fast listener: {:?}", ns.running_on()));
    let out = kubectl
        .ok(&["delete", "pod", "fd-a", "-n", &ns.name, "--force", "--grace-period=0"])
        .await;
    assert!(out.contains("force deleted"), "{out}");
    ok(ns.mark_dead("fd-a").await);
    ok(ns.wait_running("fast off fd-a", &fast, LONG, |p| p != "fd-a").await);
    ok(ns.kill_containers("fd-a").await);

    // B: cut off from the API server, then force-deleted (a partitioned node's pod removed by
    // force): its agent learns nothing and stops by its safety deadline.
    ok(ns.partition_agent("fd-b"));
    ok(ns.force_delete_pod("fd-b").await);
    ok(ns.mark_dead("fd-b").await);
    ok(ns
        .wait_running("fast off fd-b", &fast, LONG, |p| p != "fd-a" && p != "fd-b")
        .await);
    ok(ns.kill_containers("fd-b").await);
    ok(ns.heal_agent("fd-b"));

    // C: the agent and app of fd-c die, then fd-c is deleted gracefully: the kubelet reports
    // its containers terminated and removes it. That is proof: its slow listeners (lease 20 s)
    // move at once, not after their Leases expire.
    let on_c: Vec<String> = ns
        .running_on()
        .into_iter()
        .filter(|(l, p)| p == "fd-c" && l.starts_with("slow/"))
        .map(|(l, _)| l)
        .collect();
    assert!(!on_c.is_empty(), "fd-c runs a slow listener");
    let tokens = ok(ns.holders("slow").await);
    ok(ns.kill_containers("fd-c").await);
    let t = Instant::now();
    ok(ns.delete_pod("fd-c", 30).await);
    ok(ns
        .wait_running("fd-c's slow listeners on fd-d", &on_c, LONG, |p| p == "fd-d")
        .await);
    let took = t.elapsed();
    println!("confirmed stop (graceful deletion completed): listeners moved in {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "moved after {took:?}: the lease expired first"
    );
    ok(ns.wait_running("all on fd-d", &all, LONG, |p| p == "fd-d").await);
    // Each of fd-c's slow listeners moved for that reason, with the next token, however many
    // reconciles ran meanwhile: one Event for the burst names each of them.
    let expected: Vec<String> = on_c
        .iter()
        .map(|key| {
            let id = key.trim_start_matches("slow/");
            let (holder, token) = tokens.get(id).cloned().unwrap_or_default();
            assert_eq!(
                holder.as_deref(),
                Some("fd-c"),
                "{id}'s Lease before the kill: {tokens:?}"
            );
            format!("{id} → fd-d (token {})", token + 1)
        })
        .collect();
    let why = "taken over from pod fd-c (holder pod fd-c stopped (the kubelet reported its containers terminated))";
    // (Events are published in the background: wait for them.)
    let events: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    let found = wait_for("the takeover Event of fd-c's slow listeners", LONG, || async {
        let messages: Vec<String> = events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter_map(|e| e.message)
            .filter(|m| m.contains(why))
            .collect();
        expected
            .iter()
            .all(|n| messages.iter().any(|m| m.contains(n.as_str())))
            .then_some(())
    })
    .await;
    let reasons = kubectl
        .ok(&[
            "get",
            "events",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ])
        .await;
    assert!(found.is_ok(), "not all of {expected:#?} in:\n{reasons}");
    let recreated = format!("whose Lease was deleted: stopped by their holder, given a new Lease: {first_on_a} → fd-");
    assert!(
        reasons.contains(&recreated),
        "fd-a's listeners were let go by its agent ({recreated:?}): {reasons}"
    );
    assert!(
        reasons.contains("taken over from pod fd-b (holder pod fd-b is gone and renewed nothing for 5s)"),
        "fd-b's listeners waited for its agent's deadline: {reasons}"
    );
    assert_clean(&ns, true);
}
