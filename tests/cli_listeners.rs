//! `baton listeners recover` reports what it did — which listeners moved, from which
//! pod to which — without internal nonces; `baton listeners NAME -o json|wide`. The real binary
//! against the simulator, with agents in the simulated pods.
#![allow(clippy::await_holding_lock)]
#[path = "cli_support/mod.rs"]
mod cli_support;
#[path = "support/listener_world.rs"]
mod listener_world;
#[path = "support/mod.rs"]
mod support;

use cli_support::*;
use listener_world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_says_which_listeners_moved() {
    let _serial = serial();
    let (w, _ctl) = recover_world().await;
    let kc = w.sim.kubeconfig_path().to_path_buf();

    // Nothing orphaned: nothing moves, and it says so.
    let r = baton(&kc, &["listeners", "recover", "sxt"]).await;
    assert_eq!(r.code, 0, "{r}");
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
    w.strand("rc-a").await;

    let r = baton(&kc, &["listeners", "recover", "sxt"]).await;
    assert_eq!(r.code, 0, "{r}");
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

    // The same set as JSON (its status counts; which pod holds what is in the Leases) and as a
    // wide table (read from the Leases).
    let r = baton(&kc, &["listeners", "sxt", "-o", "json"]).await;
    let set: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(set["status"]["running"].as_i64(), Some(6), "{}", r.stdout);
    let per_pod: i64 = set["status"]["pods"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_i64()).sum())
        .unwrap_or_default();
    assert_eq!(per_pod, 6, "{}", r.stdout);
    let r = baton(&kc, &["listeners", "show", "sxt", "-o", "wide"]).await;
    let table: String = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("LISTENER"))
        .collect::<Vec<_>>()
        .join("\n");
    let c = cells(&table, &["AGE"]);
    assert_eq!(c[0], ["LISTENER", "POD", "AGE", "TOKEN", "STATE", "LEASE"]);
    assert_eq!(c.len(), 7, "{}", r.stdout);
    assert!(
        c[1..]
            .iter()
            .all(|row| row[4] == "running" && row[5] == format!("sxt-{}", row[0])),
        "{}",
        r.stdout
    );

    w.unstrand("rc-a").await;
}
