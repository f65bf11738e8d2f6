//! Issue 12: `baton listeners recover` reports what it did — which listeners moved, from which
//! pod to which — without internal nonces; `baton listeners NAME -o json|wide`. The real binary
//! against the simulator, with agents in the simulated pods.
#![allow(clippy::await_holding_lock)]
#[path = "cli_support/mod.rs"]
mod cli_support;
#[path = "support/listener_world.rs"]
mod listener_world;

use std::time::Duration;

use cli_support::*;
use kube::api::{Patch, PatchParams};
use listener_world::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_says_which_listeners_moved() {
    let _serial = serial();
    let knobs = AgentKnobs {
        stop_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let w = world(knobs).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    for p in ["rc-a", "rc-b", "rc-c"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["rc-a", "rc-b", "rc-c"] {
        w.wait_ready(p).await;
    }
    w.create_set("sxt", "svc", listeners(6), 60).await;
    let all = ids(6);
    w.wait_running("6 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    let kc = w.sim.kubeconfig_path().to_path_buf();

    // Nothing orphaned: nothing moves, and it says so.
    let r = baton(&kc, &["listeners", "recover", "sxt"]).await;
    assert_eq!(r.code, Some(0), "{r}");
    assert_eq!(
        r.stdout.lines().next(),
        Some("listenerset.baton.dev/sxt recovered: no orphaned listener to move"),
        "{r}"
    );

    let before = w.holders("sxt").await;
    let on_a: Vec<String> = before
        .iter()
        .filter(|(_, (h, _))| h.as_deref() == Some("rc-a"))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!on_a.is_empty(), "{before:?}");
    // rc-a gets stuck: cut off from the API, then deleted (a finalizer keeps it terminating).
    let patch = json!({"metadata": {"finalizers": ["test/hold"]}});
    w.pods()
        .patch("rc-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    w.sim.faults.block("token=agent-rc-a");
    w.delete_pod("rc-a", Some(30)).await;
    wait_for("rc-a stopped its listeners", Duration::from_secs(20), || {
        let open = w.log.running().values().any(|p| p.contains(&"rc-a".to_string()));
        async move { (!open).then_some(()) }
    })
    .await;

    let r = baton(&kc, &["listeners", "recover", "sxt"]).await;
    assert_eq!(r.code, Some(0), "{r}");
    let after = w.holders("sxt").await;
    let moved: Vec<String> = on_a
        .iter()
        .map(|id| format!("{id}: rc-a → {}", after[id].0.clone().unwrap_or_default()))
        .collect();
    let want = match moved.len() {
        1 => format!("listenerset.baton.dev/sxt recovered: 1 listener moved ({})", moved[0]),
        n => format!(
            "listenerset.baton.dev/sxt recovered: {n} listeners moved ({})",
            moved.join(", ")
        ),
    };
    assert_eq!(r.stdout.lines().next(), Some(want.as_str()), "{r}");
    assert!(
        !r.stdout.contains("recover 1") && !r.stdout.to_lowercase().contains("nonce"),
        "{r}"
    );
    assert_eq!(
        r.stdout.lines().nth(1),
        Some("ListenerSet sxt: 6 listeners, 6 running, 0 starting, 0 pending, 0 orphaned, 0 suspended"),
        "{r}"
    );

    // The same set as JSON and as a wide table.
    let r = baton(&kc, &["listeners", "sxt", "-o", "json"]).await;
    let set: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(set["status"]["assignments"].as_array().map(Vec::len), Some(6));
    let r = baton(&kc, &["listeners", "show", "sxt", "-o", "wide"]).await;
    let table: String = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("LISTENER"))
        .collect::<Vec<_>>()
        .join("\n");
    let c = cells(&table, &["AGE"]);
    assert_eq!(c[0], ["LISTENER", "POD", "AGE", "TOKEN", "LEASE"]);
    assert_eq!(c.len(), 7, "{}", r.stdout);
    assert!(
        c[1..].iter().all(|row| row[4] == format!("sxt-{}", row[0])),
        "{}",
        r.stdout
    );

    w.sim.faults.unblock("token=agent-rc-a");
    let patch = json!({"metadata": {"finalizers": null}});
    let _ = w
        .pods()
        .patch("rc-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}
