//! "running" means running. A listener counts as running only once its holder
//! renewed the Lease after the assignment; pods whose agents never renew are named in the
//! status, get nothing more, and nothing churns.
use std::time::Duration;

use crate::harness::{listeners, wait_for, AppKind, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// Three Ready pods and no agent anywhere (the sample as it was: no sidecar in its pod
/// template): status never counts a listener as running, Ready is False naming the pods whose
/// agents never renewed, and once every pod has shown it, nothing is written any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_without_agents_are_named_and_nothing_churns() {
    let ns = Ns::plain("case3").await;
    let kubectl = ns.cluster.kubectl();
    ok(ns.start_controller().await);
    for p in ["nr-a", "nr-b", "nr-c"] {
        ok(ns.create_plain_pod(p).await);
    }
    let lease = 2;
    let (spec, _) = listeners("sxt", 2);
    ok(ns.create_set("sxt", spec, lease).await);
    let ready = ok(wait_for("Ready=False naming every pod", LONG, || async {
        let set = ns.sets().get("sxt").await.ok()?;
        let c = set.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        let named = ["nr-a", "nr-b", "nr-c"].iter().all(|p| c.message.contains(p));
        (c.status == "False" && c.reason == "AgentsNotRenewing" && named).then_some(c)
    })
    .await);
    println!("Ready=False ({}): {}", ready.reason, ready.message);
    let gate = kubectl
        .run(&[
            "wait",
            "-n",
            &ns.name,
            "--for=condition=Ready",
            "listenerset/sxt",
            "--timeout=2s",
        ])
        .await;
    assert_ne!(gate.code, 0, "kubectl wait must fail: {gate}");
    // Nothing churns: no Lease is written for five lease durations.
    let leases = |ns: &Ns| ns.cluster.history.with(&ns.name, |h| h.leases.len());
    let before = leases(&ns);
    tokio::time::sleep(Duration::from_secs(5 * lease as u64)).await;
    let after = leases(&ns);
    assert_eq!(after, before, "Lease writes after every pod was found without an agent");
    let reasons = kubectl
        .ok(&["get", "events", "-n", &ns.name, "-o", "jsonpath={.items[*].reason}"])
        .await;
    let takeovers = reasons.split_whitespace().filter(|r| *r == "Takeover").count();
    assert!(takeovers <= 2, "{takeovers} takeovers: {reasons}");
    assert_clean(&ns, true);
}

/// The sample as a user applies it (`kubectl apply -k config/samples`, real kubectl): its pod
/// template carries the `baton agent` sidecar and the sample app, which the "node" here runs as
/// real processes (the sidecar binary, and `python3` on the Python client's sample app, laid out
/// from the ConfigMap as the template mounts it).
/// `kubectl wait --for=condition=Ready` on the ListenerSet succeeds, every listener runs in
/// exactly one app, and status never ran ahead of the renewals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_runs_with_its_sidecar() {
    let ns = std::sync::Arc::new(Ns::plain("default").await);
    let kubectl = ns.cluster.kubectl();
    ok(ns.start_controller().await);
    let samples = format!("{}/config/samples", env!("CARGO_MANIFEST_DIR"));
    let out = kubectl.ok(&["apply", "-k", &samples]).await;
    assert!(
        out.contains("listenerset.baton.dev/user-service-listeners created"),
        "{out}"
    );
    let script = ok(ns.script_of_template("user-service", "app").await);
    let _node = crate::harness::app::AbortOnDrop(ns.run_declared_sidecars("baton-agent", AppKind::Script(script)));
    let gate = kubectl
        .run(&[
            "wait",
            "-n",
            "default",
            "--for=condition=Ready",
            "listenerset/user-service-listeners",
            "--timeout=120s",
        ])
        .await;
    assert_eq!(gate.code, 0, "kubectl wait: {gate}");
    let keys: Vec<String> = ["listener1", "listener2"]
        .iter()
        .map(|l| format!("user-service-listeners/{l}"))
        .collect();
    ok(ns
        .wait_running("both listeners in a sample app", &keys, LONG, |_| true)
        .await);
    let table = kubectl.ok(&["get", "listenersets", "-n", "default"]).await;
    println!("{table}");
    assert!(table.contains("STARTING"), "{table}");
    let st = ns
        .sets()
        .get("user-service-listeners")
        .await
        .expect("set")
        .status
        .unwrap_or_default();
    assert_eq!((st.running, st.starting, st.suspended), (2, 0, 1), "{st:?}");
    assert_clean(&ns, true);
}
