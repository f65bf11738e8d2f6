//! Flux's view of a ListenerSet: kstatus (`tests/support/kstatus.rs`, the rules Flux judges a
//! custom resource by) computed on the set as the API server serves it, captured from the
//! controller in each state, and what Flux's wait concludes from it. A ListenerSet has `Ready`,
//! `Stalled` and `Degraded`, no `Reconciling`: kstatus fails on `Stalled=True` (an invalid spec, a
//! missing Secret: Flux stops waiting at once) and otherwise reads `Ready`.
use std::time::Duration;

use baton::api::listenerset::{ListenerSet, ListenersFrom, SecretRef};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::helpers::condition;
use crate::listener_world::*;
use crate::support::kstatus::{self, watch_until, Outcome, Status};

const LONG: Duration = Duration::from_secs(30);

/// A world with two Ready pods of `svc`, `fx-a` and `fx-b`.
async fn two_ready_pods() -> World {
    let w = world(AgentKnobs::default()).await;
    for p in ["fx-a", "fx-b"] {
        w.create_pod(p, "svc").await;
        w.wait_ready(p).await;
    }
    w
}

fn raw_api(w: &World) -> Api<DynamicObject> {
    Api::namespaced_with(w.client.clone(), NS, &ApiResource::erase::<ListenerSet>(&()))
}

fn json_of(o: &DynamicObject) -> Value {
    serde_json::to_value(o).expect("JSON")
}

/// `(status, reason)` of condition `type_`, or empty strings.
fn cond(s: &ListenerSet, type_: &str) -> (String, String) {
    condition(s, type_).map(|(st, r, _)| (st, r)).unwrap_or_default()
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

/// Set `name` as the API server serves it, once `ok` holds for its current generation.
async fn wait_set(w: &World, name: &str, what: &str, ok: impl Fn(&ListenerSet) -> bool) -> Value {
    watch_until(&raw_api(w), name, what, LONG, |v| {
        let s: ListenerSet = serde_json::from_value(v.clone()).expect("a ListenerSet");
        let current = s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation;
        current && ok(&s)
    })
    .await
}

/// kstatus on `v` in `state` ([`kstatus::judge`]).
fn judge(state: &str, v: &Value, want: Status, reason: &str) -> Outcome {
    kstatus::judge(
        state,
        v,
        &format!("ListenerSet/{NS}/{}", v["metadata"]["name"].as_str().unwrap_or("")),
        (want, reason),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_status_of_a_listenerset_in_every_state() {
    let _serial = serial();
    let w = two_ready_pods().await;
    // Before the controller runs: no status at all, and kstatus has nothing to go on.
    w.create_set("sxt", "svc", listeners(4), 3).await;
    let unseen = json_of(&raw_api(&w).get("sxt").await.expect("the set"));
    assert!(unseen["status"].is_null(), "{}", unseen["status"]);
    let o = judge("created, no status yet", &unseen, Status::Current, "");
    assert_eq!(o.message, "Resource is current");

    let (_stop, _ctl) = w.controller("controller-a").await;
    let running = wait_set(&w, "sxt", "all running", |s| cond(s, "Ready").0 == "True").await;
    assert_eq!(
        judge("all running", &running, Status::Current, "").message,
        "Resource is Ready"
    );

    let more = json!({"spec": {"listeners": listeners(5)}});
    let changed = raw_api(&w)
        .patch("sxt", &PatchParams::default(), &Patch::Merge(&more))
        .await
        .expect("patching the set");
    judge(
        "changed, not observed yet",
        &json_of(&changed),
        Status::InProgress,
        "LatestGenerationNotObserved",
    );
    wait_set(&w, "sxt", "5 running", |s| {
        cond(s, "Ready").0 == "True" && s.status.as_ref().is_some_and(|st| st.running == 5)
    })
    .await;

    // A Ready pod without an agent: what it is given stays starting.
    crate::helpers::lonely_set(&w, "fx-lonely").await;
    let starting = wait_set(&w, "lonely", "listeners starting", |s| {
        s.status.as_ref().is_some_and(|st| st.starting > 0)
    })
    .await;
    judge("starting", &starting, Status::InProgress, "ListenersStarting");

    w.create_set("nobody", "nobody", listeners(2), 3).await;
    let orphan = wait_set(&w, "nobody", "no eligible pod", |s| {
        cond(s, "Ready") == pair("False", "NoEligiblePods")
    })
    .await;
    judge("no eligible pod", &orphan, Status::InProgress, "NoEligiblePods");

    // A name that is no label value: the controller reports the spec invalid, Degraded and
    // Stalled True; Flux fails at once.
    let long = format!("fx-invalid-{}", "x".repeat(53));
    w.create_set(&long, "svc", listeners(1), 3).await;
    let invalid = wait_set(&w, &long, "InvalidSpec", |s| {
        cond(s, "Ready") == pair("False", "InvalidSpec")
            && cond(s, "Degraded") == pair("True", "InvalidSpec")
            && cond(s, "Stalled") == pair("True", "InvalidSpec")
    })
    .await;
    let o = judge("invalid spec", &invalid, Status::Failed, "InvalidSpec");
    assert!(o.message.contains("rename it"), "{}", o.message);

    // Deleted: the finalizer keeps it until its Leases are gone.
    let deleting = raw_api(&w)
        .delete("sxt", &DeleteParams::default())
        .await
        .expect("deleting the set")
        .left()
        .expect("held by its finalizer");
    let o = judge("being deleted", &json_of(&deleting), Status::Terminating, "");
    assert_eq!(o.message, "Resource scheduled for deletion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_status_of_a_listenerset_whose_agents_stop_renewing() {
    let _serial = serial();
    let w = two_ready_pods().await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    w.create_set("sxt", "svc", listeners(4), 3).await;
    wait_set(&w, "sxt", "all running", |s| cond(s, "Ready").0 == "True").await;

    // One agent cut off: its listeners move to the other pod; Degraded names the silent one.
    w.sim.faults.block("token=agent-fx-a");
    let moved = wait_set(&w, "sxt", "all running on fx-b, Degraded", |s| {
        cond(s, "Ready").0 == "True" && cond(s, "Degraded") == pair("True", "AgentsNotRenewing")
    })
    .await;
    judge("one agent not renewing, listeners moved", &moved, Status::Current, "");

    // Every agent cut off: nothing can run the listeners.
    w.sim.faults.block("token=agent-fx-b");
    let silent = wait_set(&w, "sxt", "no listener running, no agent renewing", |s| {
        cond(s, "Ready") == pair("False", "AgentsNotRenewing") && s.status.as_ref().is_some_and(|st| st.running == 0)
    })
    .await;
    let o = judge("no agent renewing", &silent, Status::InProgress, "AgentsNotRenewing");
    assert!(
        o.message.contains("fx-a") && o.message.contains("fx-b"),
        "{}",
        o.message
    );
}

/// A set whose `listenersFrom` Secret is missing is Stalled, so Flux fails at once, saying what to
/// create; once the Secret is there it is not Stalled, its listeners run and Flux passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_fails_early_on_a_listenerset_whose_secret_is_missing_and_passes_once_it_is_there() {
    let _serial = serial();
    let w = two_ready_pods().await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    let mut set = crate::listener_world::listenersets::set(NS, "from", "svc", Vec::new(), 3);
    set.spec.listeners_from = Some(ListenersFrom {
        secret_ref: Some(SecretRef {
            name: "fx-tokens".into(),
        }),
        secret_selector: None,
    });
    w.sets().create(&PostParams::default(), &set).await.expect("the set");
    let stalled = wait_set(&w, "from", "Stalled=True", |s| cond(s, "Stalled").0 == "True").await;
    let o = judge(
        "listenersFrom Secret missing",
        &stalled,
        Status::Failed,
        "MissingSecret",
    );
    assert!(
        o.message.contains("fx-tokens") && o.message.contains("create it"),
        "{}",
        o.message
    );
    assert_eq!(
        (cond(&typed(&stalled), "Ready"), cond(&typed(&stalled), "Degraded")),
        (pair("False", "MissingSecret"), pair("True", "MissingSecret"))
    );

    w.create_secret("fx-tokens", json!({"a1": "t1", "a2": "t2"})).await;
    let fixed = wait_set(&w, "from", "Stalled=False and Ready", |s| {
        cond(s, "Stalled").0 != "True" && cond(s, "Ready").0 == "True"
    })
    .await;
    assert_eq!(cond(&typed(&fixed), "Stalled"), pair("False", "AllRunning"));
    assert_eq!(
        judge("listenersFrom Secret created", &fixed, Status::Current, "").message,
        "Resource is Ready"
    );
    w.wait_running(
        "both listeners of the Secret running",
        &["a1".to_string(), "a2".to_string()],
        LONG,
        |_| true,
    )
    .await;
}

fn typed(v: &Value) -> ListenerSet {
    serde_json::from_value(v.clone()).expect("a ListenerSet")
}
