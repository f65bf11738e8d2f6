//! Argo CD's health of a ListenerSet, as Argo CD computes it: the shipped
//! `config/argocd/baton.dev/ListenerSet/health.lua` run by a real Lua 5.1 on the set as the
//! controller wrote it, captured in each state: all running, starting (a pod without an agent),
//! agents not renewing (an agent cut off), a holder gone (orphaned), no eligible pod. Each state is also captured as the
//! testdata of `config/argocd/baton.dev/ListenerSet/health_test.yaml`
//! (`crate::support::argocd::testdata`): checked against the fixture, or written with
//! `BATON_UPDATE_ARGOCD_TESTDATA=1`.
use std::collections::BTreeMap;
use std::time::Duration;

use baton::api::listenerset::ListenerSet;

use crate::listener_world::*;
use crate::support::argocd::{argocd_health, testdata, Checked};

const LONG: Duration = Duration::from_secs(30);

/// What of a captured ListenerSet varies from run to run, compared by presence only: which
/// listeners the per-listener attention entries name.
const CHECKED: Checked = Checked {
    presence_only: &["status.attention[*].listener"],
};

/// `s` as fixture `testdata/<state>.yaml` of the health tests.
fn capture(state: &str, s: &ListenerSet) {
    let obj = serde_json::to_value(s).expect("a ListenerSet as JSON");
    testdata(&format!("baton.dev/ListenerSet/testdata/{state}.yaml"), &obj, &CHECKED);
}

fn health(s: &ListenerSet) -> (String, String) {
    argocd_health(
        "baton.dev/ListenerSet/health.lua",
        &serde_json::to_value(s).expect("a ListenerSet as JSON"),
    )
}

fn condition(s: &ListenerSet, type_: &str) -> (String, String) {
    s.status
        .as_ref()
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

/// Set `name` once `ok` holds for its current generation.
async fn wait_set(w: &World, name: &str, what: &str, ok: impl Fn(&ListenerSet) -> bool) -> ListenerSet {
    let sets = w.sets();
    wait_for(what, LONG, || {
        let sets = sets.clone();
        let ok = &ok;
        async move {
            let s = sets.get(name).await.ok()?;
            let current = s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation;
            (current && ok(&s)).then_some(s)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_health_of_a_listenerset_in_every_state() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    for p in ["hl-a", "hl-b"] {
        w.create_pod(p, "svc").await;
        w.wait_ready(p).await;
    }
    w.create_set("sxt", "svc", listeners(4), 3).await;
    let running = wait_set(&w, "sxt", "all running", |s| condition(s, "Ready").0 == "True").await;
    assert_eq!(health(&running).0, "Healthy", "{:?}", health(&running));
    capture("all-running", &running);

    // A Ready pod without an agent: what it is given stays starting.
    crate::helpers::lonely_set(&w, "hl-lonely").await;
    let starting = wait_set(&w, "lonely", "listeners starting", |s| {
        s.status.as_ref().is_some_and(|st| st.starting > 0)
    })
    .await;
    let (status, message) = health(&starting);
    assert_eq!(status, "Progressing", "{message}");
    capture("starting", &starting);

    // An agent cut off from the API server: its pod stops renewing, and is reported so after its
    // listeners were taken over (the state stays until it renews again or restarts).
    w.sim.faults.block("token=agent-hl-a");
    let silent = wait_set(&w, "sxt", "Degraded=AgentsNotRenewing, all taken over", |s| {
        condition(s, "Degraded") == ("True".into(), "AgentsNotRenewing".into())
            && s.status
                .as_ref()
                .is_some_and(|st| st.running == 4 && !st.pods.contains_key("hl-a"))
    })
    .await;
    let (status, message) = health(&silent);
    assert_eq!(status, "Degraded");
    assert!(message.contains("hl-a"), "names the pod: {message}");
    capture("not-renewing", &silent);
    w.sim.faults.unblock("token=agent-hl-a");

    // A holder pod deleted: its listener is orphaned until its Lease (60 s) expires.
    for p in ["hl-c", "hl-d"] {
        w.create_pod(p, "solo").await;
        w.wait_ready(p).await;
    }
    w.create_set("solo", "solo", listeners(2), 60).await;
    let spread = BTreeMap::from([("hl-c".to_string(), 1), ("hl-d".to_string(), 1)]);
    wait_set(&w, "solo", "one listener on each pod", |s| {
        condition(s, "Ready").0 == "True" && s.status.as_ref().is_some_and(|st| st.pods == spread)
    })
    .await;
    w.delete_pod("hl-c", Some(0)).await;
    let orphaned = wait_set(&w, "solo", "Degraded=Orphaned", |s| {
        condition(s, "Degraded") == ("True".into(), "Orphaned".into())
    })
    .await;
    let (status, message) = health(&orphaned);
    assert_eq!(status, "Degraded");
    assert!(message.contains("taken over"), "{message}");
    capture("orphaned", &orphaned);

    // No pod matches the selector.
    w.create_set("nobody", "nobody", listeners(2), 3).await;
    let orphan = wait_set(&w, "nobody", "Degraded=NoEligiblePods", |s| {
        condition(s, "Degraded") == ("True".into(), "NoEligiblePods".into())
    })
    .await;
    assert_eq!(health(&orphan).0, "Degraded", "{:?}", health(&orphan));
    capture("no-eligible-pod", &orphan);
}
