//! A dead sidecar must not leave its app running. `baton agent` is SIGKILLed
//! (OOM) and restarts later than the lease; its app keeps running, and must stop each listener
//! by the `validUntil` the sidecar last published — it cannot hear anything else — before the
//! listener is given to another pod.
use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use baton::api::listenerset::liveness::liveness_lease_name;
use baton::api::listenerset::{lease_name, REASON_AGENTS_NOT_RENEWING};
use baton_sim::FaultRule;

use crate::harness::app::{AppConfig, Mode};
use crate::harness::{listeners, wait_for, AgentFlags, AppKind, Cluster, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// Kill the sidecar of one of three pods (its app keeps running, the pod stays Ready), let the
/// listeners move, restart the sidecar later than the lease, give the set more listeners.
async fn sidecar_killed(mode: Mode, ns_name: &str) {
    let app = AppConfig {
        mode,
        stop_delay: Duration::from_secs(1),
        ..AppConfig::default()
    };
    // The apps take 1 s to stop: the agents stop listeners 2 s before a Lease could expire.
    let agent = AgentFlags {
        safety_margin: Some(2.0),
        ..AgentFlags::default()
    };
    let ns = ok(Ns::new(Cluster::shared(), ns_name, app, agent).await);
    ok(ns.start_controller().await);
    for p in ["ks-a", "ks-b", "ks-c"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("sxt", 9);
    ok(ns.create_set("sxt", spec, 5).await);
    ok(ns.settled("sxt", 9, "9 listeners running", LONG).await);
    let on_a: Vec<String> = ns
        .running_on()
        .into_iter()
        .filter(|(_, p)| p == "ks-a")
        .map(|(l, _)| l)
        .collect();
    assert!(!on_a.is_empty(), "ks-a runs listeners");
    let t = Instant::now();
    ok(ns.kill_agent("ks-a").await);
    ok(ns
        .wait_running("taken over from ks-a", &keys, LONG, |p| p != "ks-a")
        .await);
    println!(
        "{mode:?} app: ks-a's {} listeners moved {:?} after its sidecar was killed",
        on_a.len(),
        t.elapsed()
    );
    // The sidecar comes back (its container restarted), later than the lease.
    ok(ns.restart_agent("ks-a").await);
    // The pod is Ready before its agent renews again; listeners added in between go to the
    // others. Wait until the controller counts ks-a's agent as renewing.
    let sets = ns.sets();
    ok(wait_for("the controller sees ks-a renewing again", LONG, || async {
        let set = sets.get("sxt").await.ok()?;
        let degraded = set.status?.conditions.into_iter().find(|c| c.type_ == "Degraded");
        (!degraded.is_some_and(|c| c.status == "True" && c.reason == REASON_AGENTS_NOT_RENEWING)).then_some(())
    })
    .await);
    let (more, more_keys) = listeners("sxt", 12);
    let patch = json!({"spec": {"listeners": more}});
    ns.sets()
        .patch("sxt", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch sxt");
    ok(ns.wait_running("12 listeners", &more_keys, LONG, |_| true).await);
    ok(ns.settled("sxt", 12, "12 listeners settled", LONG).await);
    assert!(
        ns.running_on().values().any(|p| p == "ks-a"),
        "the restarted ks-a takes listeners again: {:?}",
        ns.running_on()
    );
    assert_clean(&ns, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sidecar_does_not_leave_its_http_app_running() {
    sidecar_killed(Mode::Http, "case4-http").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sidecar_does_not_leave_its_file_app_running() {
    sidecar_killed(Mode::File, "case4-file").await;
}

/// The sample app (the Python client's, clients/python/examples/sample_app.py, which
/// config/samples runs; python3 from the checkout) follows the contract too: its sidecar
/// SIGKILLed, it stops its listeners by their validUntil, before they run anywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_app_stops_when_its_sidecar_is_gone() {
    let ns = Ns::plain("case4-sample").await;
    ok(ns.start_controller().await);
    let script = std::path::PathBuf::from(format!(
        "{}/clients/python/examples/sample_app.py",
        env!("CARGO_MANIFEST_DIR")
    ));
    for p in ["sa-a", "sa-b"] {
        let uid = ok(ns.create_plain_pod(p).await);
        ok(ns
            .start_procs(p, &uid, Vec::new(), AppKind::Script(script.clone()))
            .await);
    }
    let (spec, keys) = listeners("sxt", 4);
    ok(ns.create_set("sxt", spec, 4).await);
    ok(ns.settled("sxt", 4, "4 listeners in the sample apps", LONG).await);
    ok(ns.kill_agent("sa-a").await);
    ok(ns.wait_running("all on sa-b", &keys, LONG, |p| p == "sa-b").await);
    assert_clean(&ns, true);
}

/// A sidecar that comes back (its container restarted) while its pod's listeners are asked to
/// go: the app still runs what the sidecar's predecessor listed, so the new sidecar releases each
/// listener only once the app has applied a document without it — never at once, which handed
/// listeners to another pod while the old app was still stopping them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sidecar_releases_only_what_its_app_has_stopped() {
    let app = AppConfig {
        mode: Mode::Http,
        stop_delay: Duration::from_millis(500),
        ..AppConfig::default()
    };
    let ns = ok(Ns::new(Cluster::shared(), "case4-restart", app, AgentFlags::default()).await);
    ok(ns.start_controller().await);
    for p in ["rs-a", "rs-b"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("sxt", 8);
    ok(ns.create_set("sxt", spec, 5).await);
    ok(ns.settled("sxt", 8, "8 listeners running", LONG).await);
    let on_a = ns.running_on().values().filter(|p| *p == "rs-a").count();
    assert!(on_a > 0, "rs-a runs listeners");
    // The sidecar dies; before its Leases can expire, the pod is drained and the controller asks
    // for every listener of it back.
    ok(ns.kill_agent("rs-a").await);
    ok(ns.drain("rs-a", true).await);
    ok(wait_for("rs-a's Leases asked back", LONG, || async {
        let held = ns.holders("sxt").await.ok()?;
        let mine = held.values().filter(|(h, _)| h.as_deref() == Some("rs-a")).count();
        let leases = ns.leases().list(&Default::default()).await.ok()?;
        let asked = leases
            .items
            .iter()
            .filter(|l| l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some("rs-a"))
            .filter(|l| baton::api::listenerset::lease::release_requested(l).is_some())
            .count();
        (mine > 0 && asked == mine).then_some(())
    })
    .await);
    // The sidecar's container restarts: the new sidecar finds them asked back.
    ok(ns.restart_agent("rs-a").await);
    ok(ns
        .wait_running("every listener off the drained rs-a", &keys, LONG, |p| p == "rs-b")
        .await);
    assert_clean(&ns, true);
}

/// sim-only: one release of the SIGTERMed sidecar is answered 500 until it exits (a fault rule on
/// one path of one identity, which no proxy in front of kube-apiserver can single out under TLS).
/// While it shuts down, its agent releases the rest; the pod is Ready and now holds the fewest,
/// yet nothing is assigned back to it (its liveness Lease is marked leaving): each assignment
/// would only be released again, and the listener wait until the sidecar gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_a_shutting_down_sidecar_is_given_nothing_back() {
    let (ns, _, held) = two_pods_four_each("sdl", ["sd-a", "sd-b"]).await;
    let on_a: Vec<(String, i32)> = held
        .iter()
        .filter(|(_, (h, _))| h.as_deref() == Some("sd-a"))
        .map(|(id, (_, t))| (id.clone(), *t))
        .collect();
    assert!(on_a.len() >= 2, "sd-a runs listeners: {held:?}");
    let stuck = FaultRule {
        client: Some(ok(ns.pod("sd-a")).identity.clone()),
        error_rate: 1.0,
        error_codes: vec![500],
        path: Some(format!("/leases/{}", lease_name("sxt", &on_a[0].0))),
        ..FaultRule::default()
    };
    ns.cluster.sim().faults.add_rule(stuck.clone());
    let since = ns.cluster.history.rv.load(std::sync::atomic::Ordering::SeqCst);
    ok(ns.term_agent("sd-a").await);
    ns.cluster.sim().faults.remove_rule(&stuck);
    assert_nothing_given_back(&ns, "sd-a", since, &held);
    // Its sidecar back, the stuck listener runs again, nothing twice.
    ok(ns.restart_agent("sd-a").await);
    ok(ns.settled("sxt", 8, "8 listeners running again", LONG).await);
    assert_clean(&ns, true);
}

/// What runs where, by listener: (holder, token).
type Held = BTreeMap<String, (Option<String>, i32)>;

/// A namespace `name` with a controller, `pods`, and set `sxt` of 8 listeners (lease 5 s)
/// running four on each pod, none on the move; the listeners' keys and what runs where.
async fn two_pods_four_each(name: &str, pods: [&str; 2]) -> (Ns, Vec<String>, Held) {
    let ns = ok(Ns::new(Cluster::shared(), name, AppConfig::default(), AgentFlags::default()).await);
    ok(ns.start_controller().await);
    for p in pods {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("sxt", 8);
    ok(ns.create_set("sxt", spec, 5).await);
    let held = ok(four_on_each(&ns, "sxt", pods).await);
    (ns, keys, held)
}

/// No Lease change recorded after resourceVersion `since` assigns a listener to `pod` anew (a
/// holder of `pod` with a token above the one in `held`, or a listener not in it).
fn assert_nothing_given_back(ns: &Ns, pod: &str, since: u64, held: &Held) {
    let given_back: Vec<String> = ns.cluster.history.with(&ns.name, |h| {
        h.leases
            .iter()
            .filter(|r| r.rv > since && r.holder.as_deref() == Some(pod))
            .filter(|r| held.get(&r.listener).is_none_or(|(_, t)| r.transitions > *t))
            .map(|r| format!("{} (token {})", r.listener, r.transitions))
            .collect()
    });
    assert!(
        given_back.is_empty(),
        "{} assignments to {pod} while its sidecar shut down, the first: {:?}",
        given_back.len(),
        &given_back[..given_back.len().min(10)]
    );
}

/// Wait for 8 listeners of set `set` running, four on each of `pods`, none asked to move (all
/// running is not yet placed for good: a pod whose agent registered late gets its share by
/// evening out after, and a move that comes after would look like an assignment to a
/// shutting-down sidecar); what runs where, by listener: (holder, token).
async fn four_on_each(ns: &Ns, set: &str, pods: [&str; 2]) -> Result<Held, String> {
    wait_for(
        "8 listeners running, four on each pod, none on the move",
        LONG,
        || async {
            let held = ns.settled(set, 8, "8 listeners running", LONG).await.ok()?;
            let on = |p: &str| held.values().filter(|(h, _)| h.as_deref() == Some(p)).count();
            let leases = ns.leases().list(&Default::default()).await.ok()?;
            let moving = leases
                .items
                .iter()
                .any(|l| baton::api::listenerset::lease::release_requested(l).is_some());
            (pods.iter().all(|p| on(p) == 4) && !moving).then_some(held)
        },
    )
    .await
}

/// sim-only: every write of the SIGTERMed sidecar's liveness Lease takes 1.2 s (a fault rule on
/// one path of one identity), so its leaving mark lands long after its listeners have stopped.
/// Its releases wait for the mark: the controller never sees a released listener while the pod
/// still looks able to take it, so nothing is assigned back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_a_sidecar_whose_leaving_mark_is_slow_is_given_nothing_back() {
    let (ns, keys, held) = two_pods_four_each("svl", ["sv-a", "sv-b"]).await;
    let pod = ok(ns.pod("sv-a"));
    let slow = FaultRule {
        client: Some(pod.identity.clone()),
        latency: Duration::from_millis(1200),
        path: Some(format!("/leases/{}", liveness_lease_name(&pod.uid))),
        ..FaultRule::default()
    };
    ns.cluster.sim().faults.add_rule(slow.clone());
    let since = ns.cluster.history.rv.load(std::sync::atomic::Ordering::SeqCst);
    ok(ns.term_agent("sv-a").await);
    ns.cluster.sim().faults.remove_rule(&slow);
    assert_nothing_given_back(&ns, "sv-a", since, &held);
    ok(ns
        .wait_running("every listener on sv-b", &keys, LONG, |p| p == "sv-b")
        .await);
    assert_clean(&ns, true);
}
