//! Changes to a running set: suspend/resume, removal, a missing Secret, config; and the
//! controller's write counters.

use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::helpers::*;
use crate::listener_world::*;

/// Suspend/resume, removal, a missing Secret (condition + other listeners unaffected), config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_resume_remove_and_missing_secret() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    w.create_pod("sr-a", "svc").await;
    w.create_pod("sr-b", "svc").await;
    w.wait_ready("sr-a").await;
    w.wait_ready("sr-b").await;
    let mut ls = listeners(3);
    ls.push(tokened());
    w.create_set("sxt", "svc", ls.clone(), 10).await;
    let three = ids(3);
    w.wait_running("3 plain listeners", &three, Duration::from_secs(30), |_| true)
        .await;
    let sets = w.sets();
    let set = wait_for("Degraded MissingSecret", Duration::from_secs(10), || {
        let sets = sets.clone();
        async move {
            let s = sets.get("sxt").await.ok()?;
            (condition(&s, "Degraded")?.1 == "MissingSecret" && s.status.as_ref()?.running == 3).then_some(s)
        }
    })
    .await;
    let (status, reason, message) = condition(&set, "Degraded").unwrap();
    println!("Degraded={status} {reason}: {message}");
    assert!(message.contains("tokens"));
    assert!(!w.log.running().contains_key("tokened"));
    assert_eq!(condition(&set, "Ready").unwrap().0, "False");
    // Only a person can fix it: Stalled, with what to create (kstatus fails on it at once).
    let (stalled, reason, message) = condition(&set, "Stalled").expect("Stalled");
    assert_eq!((stalled.as_str(), reason.as_str()), ("True", "MissingSecret"));
    assert!(message.contains("create it"), "{message}");

    // The Secret appears: the listener starts with its config.
    w.create_secret("tokens", json!({"tokened": "s3cr3t"})).await;
    w.wait_running(
        "tokened running",
        &["tokened".to_string()],
        Duration::from_secs(10),
        |_| true,
    )
    .await;
    let pod = w.log.running()["tokened"][0].clone();
    assert_eq!(
        w.configs
            .lock()
            .unwrap()
            .get(&(pod, "tokened".to_string()))
            .cloned()
            .flatten()
            .as_deref(),
        Some("s3cr3t")
    );
    wait_for("Ready", Duration::from_secs(10), || {
        let sets = sets.clone();
        async move {
            let s = sets.get("sxt").await.ok()?;
            let fixed = condition(&s, "Degraded")?.0 == "False" && condition(&s, "Stalled")?.0 == "False";
            (condition(&s, "Ready")?.0 == "True" && fixed).then_some(())
        }
    })
    .await;

    // Suspend l001: it stops everywhere; resume: it runs again.
    let mut suspended = ls.clone();
    suspended[1].suspend = true;
    let patch = json!({"spec": {"listeners": suspended}});
    sets.patch("sxt", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("l001 stopped and counted suspended", Duration::from_secs(10), || {
        let sets = sets.clone();
        let running = w.log.running().contains_key("l001");
        async move {
            let s = sets.get("sxt").await.ok()?;
            (!running && set_status(&s).3 == 1).then_some(())
        }
    })
    .await;
    let patch = json!({"spec": {"listeners": ls}});
    sets.patch("sxt", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    w.wait_running("l001 resumed", &["l001".to_string()], Duration::from_secs(30), |_| true)
        .await;

    // Remove l002: it stops and its Lease goes.
    let mut removed = ls.clone();
    removed.remove(2);
    let patch = json!({"spec": {"listeners": removed}});
    sets.patch("sxt", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("l002 stopped and its Lease deleted", Duration::from_secs(10), || {
        let running = w.log.running().contains_key("l002");
        let w = &w;
        async move { (!running && !w.holders("sxt").await.contains_key("l002")).then_some(()) }
    })
    .await;
    let set = wait_for("status without l002", Duration::from_secs(10), || {
        let sets = sets.clone();
        async move {
            let s = sets.get("sxt").await.ok()?;
            let st = s.status.clone()?;
            (st.listeners == 3 && st.running == 3).then_some(s)
        }
    })
    .await;
    let leases = baton::cli::listeners::set_leases(&w.client, NS, "sxt")
        .await
        .expect("leases");
    assert!(!leases
        .iter()
        .any(|l| baton::api::listenerset::lease::listener_of(l) == Some(("sxt", "l002"))));
    print!("{}", baton::cli::listeners::render(&set, &leases));
    let (dups, _, _) = w.log.analyse();
    assert_eq!(dups, 0);
}

#[test]
fn stats_are_counted() {
    let s = baton::listeners::controller::Stats::default();
    s.lease_updates.fetch_add(2, Ordering::Relaxed);
    assert_eq!(s.writes(), 2);
}
