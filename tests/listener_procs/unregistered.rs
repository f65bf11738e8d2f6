//! Pods without an agent, then one agent: a set whose listeners were handed to pods that have no
//! agent (each left them unacknowledged, so both listeners are orphaned and no pod may take them)
//! runs them on the first pod whose agent registers, as soon as it registers, and its status
//! counts what the Leases show and names no renewing pod as silent. Replayed with the real
//! controller and agent, on plain pods and on the shipped samples applied with real kubectl.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use baton::api::listenerset::liveness::{liveness_lease_name, registration};
use baton::api::listenerset::ListenerSetStatus;
use kube::api::ListParams;

use crate::harness::{baton_bin, listeners, wait_for, AppKind, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(120);
/// How soon after its agent starts a pod must run what waits for a pod: far less than the time
/// the controller forgets a pod that left an assignment unacknowledged (a minute at least), so
/// only the registration can be what moved them.
const ON_REGISTRATION: Duration = Duration::from_secs(20);

/// The set's status once `check` holds for it.
async fn status_when(
    ns: &Ns,
    set: &str,
    what: &str,
    deadline: Duration,
    check: impl Fn(&ListenerSetStatus) -> bool,
) -> ListenerSetStatus {
    let got = wait_for(what, deadline, || async {
        let st = ns.sets().get(set).await.ok()?.status?;
        check(&st).then_some(st)
    })
    .await;
    match got {
        Ok(st) => st,
        Err(e) => panic!("{e}\n{}", ns.api_state().await),
    }
}

/// Whether `n` listeners are orphaned and none can move: the set says no pod's agent answers.
fn all_orphaned(st: &ListenerSetStatus, n: i32) -> bool {
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready");
    st.orphaned == n
        && ready.is_some_and(|c| {
            c.status == "False" && c.reason == "AgentsNotRenewing" && c.message.starts_with("no listener can move")
        })
}

/// Whether the set counts `n` listeners running on `pod` and nothing waiting, and none of its
/// conditions names `pod`.
fn running_on(st: &ListenerSetStatus, n: i32, pod: &str) -> bool {
    let quiet = st.orphaned == 0 && st.pending == 0 && st.starting == 0;
    let ready = st
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == "AllRunning");
    st.running == n
        && quiet
        && ready
        && st.pods.get(pod) == Some(&n)
        && st.conditions.iter().all(|c| !c.message.contains(pod))
}

/// `baton listeners recover SET` in `ns` (the real binary): its exit code and output.
async fn recover(ns: &Ns, set: &str) -> (i32, String) {
    let kubeconfig = ok(ns.cluster.kubeconfig("operator").await);
    let out = tokio::process::Command::new(baton_bin())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["-n", &ns.name, "listeners", "recover", set, "--timeout-seconds", "20"])
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap_or_else(|e| panic!("running baton listeners recover: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The registration number `pod`'s liveness Lease records (None: not registered).
async fn registered(ns: &Ns, pod: &str, uid: &str) -> Option<i32> {
    let lease = ns.leases().get_opt(&liveness_lease_name(uid)).await.ok()??;
    registration(&lease, pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_agent_to_register_runs_what_pods_without_agents_left() {
    const PODS: [&str; 3] = ["na-0", "na-1", "na-2"];
    let ns = Ns::plain("no-agent").await;
    ok(ns.start_controller().await);
    let mut uids = BTreeMap::new();
    for p in PODS {
        uids.insert(p, ok(ns.create_plain_pod(p).await));
    }
    let (spec, keys) = listeners("sxt", 2);
    ok(ns.create_set("sxt", spec, 3).await);
    // Each listener went to a pod with no agent and lapsed there, until every pod had left one.
    let st = status_when(
        &ns,
        "sxt",
        "both listeners orphaned on pods without agents",
        LONG,
        |st| {
            let named = st
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && PODS.iter().all(|p| c.message.contains(p)));
            all_orphaned(st, 2) && named
        },
    )
    .await;
    println!("before any agent: {:?}", st.conditions);
    // No pod has an agent: a recover can move nothing, and says why at once.
    let (code, out) = recover(&ns, "sxt").await;
    println!("{out}");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no listener moved") && out.contains("no listener can move"),
        "{out}"
    );

    // An agent starts on na-0, serving the set (`baton agent --listenerset sxt`).
    let started = std::time::Instant::now();
    ok(ns
        .start_procs("na-0", &uids["na-0"], vec!["sxt".into()], AppKind::Model)
        .await);
    ok(ns
        .wait_running("both listeners on na-0", &keys, ON_REGISTRATION, |p| p == "na-0")
        .await);
    println!("both run on na-0 {:?} after its agent started", started.elapsed());
    let held = ok(ns.settled("sxt", 2, "the Leases name na-0", ON_REGISTRATION).await);
    assert!(held.values().all(|(h, _)| h.as_deref() == Some("na-0")), "{held:?}");
    assert!(registered(&ns, "na-0", &uids["na-0"]).await.is_some());
    let st = status_when(
        &ns,
        "sxt",
        "the status counts both running on na-0",
        ON_REGISTRATION,
        |st| running_on(st, 2, "na-0"),
    )
    .await;
    // A recover now finds nothing left to move.
    let (code, out) = recover(&ns, "sxt").await;
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no orphaned listener to move"), "{out}");
    // The pods without an agent are named for what they are; nothing says an agent stopped.
    let degraded = st.conditions.iter().find(|c| c.type_ == "Degraded");
    println!("with na-0's agent: {:?}", st.conditions);
    assert!(
        st.conditions.iter().all(|c| !c.message.contains("stopped renewing")),
        "{:?}",
        st.conditions
    );
    assert!(
        degraded.is_some_and(|c| c.message.contains("na-1") && c.message.contains("never renewed")),
        "{degraded:?}"
    );
    assert_clean(&ns, true);
}

/// `kubectl apply -k config/samples` with the controller running and no agent in any pod: the
/// listeners go to pods that have no agent and are orphaned. Then the agent of a pod that left
/// one unacknowledged and holds none starts (the sample's sidecar and app): both listeners run on
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_applied_before_its_agents_run_runs_on_the_first_agent() {
    const SET: &str = "user-service-listeners";
    let ns = Arc::new(Ns::plain("sample-late-agent").await);
    let kubectl = ns.cluster.kubectl();
    ok(ns.start_controller().await);
    let samples = format!("{}/config/samples", env!("CARGO_MANIFEST_DIR"));
    let out = kubectl.ok(&["apply", "-k", &samples, "-n", &ns.name]).await;
    assert!(out.contains(&format!("listenerset.baton.dev/{SET} created")), "{out}");
    let st = status_when(&ns, SET, "both listeners orphaned on pods without agents", LONG, |st| {
        all_orphaned(st, 2)
    })
    .await;
    let table = kubectl.ok(&["get", "listenersets", "-n", &ns.name]).await;
    println!("{table}{:?}", st.conditions);
    // A pod that left a listener unacknowledged (the status names it) and holds none of the
    // orphans now: its agent has nothing of its own to acknowledge.
    let holders = ok(ns.holders(SET).await);
    let ready = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone());
    let pods = ok(ns
        .pods_api()
        .list(&ListParams::default().labels("app=user-service"))
        .await
        .map_err(|e| e.to_string()));
    let pod = pods
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .filter(|p| holders.values().all(|(h, _)| h.as_deref() != Some(p.as_str())))
        .find(|p| ready.as_deref().is_some_and(|m| m.contains(p.as_str())))
        .unwrap_or_else(|| panic!("a lapsed pod that holds no orphan: {holders:?} {ready:?}"));
    let uid = ok(ns.wait_ready(&pod).await);

    // Its sidecar and the sample app start, as the sample's pod template runs them.
    let script = ok(ns.script_of_template("user-service", "app").await);
    let started = std::time::Instant::now();
    ok(ns
        .start_procs(&pod, &uid, vec![SET.into()], AppKind::Script(script))
        .await);
    let keys: Vec<String> = ["listener1", "listener2"]
        .iter()
        .map(|l| format!("{SET}/{l}"))
        .collect();
    ok(ns
        .wait_running("both listeners in the sample app", &keys, ON_REGISTRATION, |p| p == pod)
        .await);
    println!("both run on {pod} {:?} after its agent started", started.elapsed());
    assert!(registered(&ns, &pod, &uid).await.is_some());
    let st = status_when(
        &ns,
        SET,
        "the status counts both running there",
        ON_REGISTRATION,
        |st| running_on(st, 2, &pod),
    )
    .await;
    assert_eq!(st.suspended, 1, "{st:?}");
    let table = kubectl.ok(&["get", "listenersets", "-n", &ns.name]).await;
    println!("{table}");
    assert_clean(&ns, true);
}
