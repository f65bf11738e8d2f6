//! Notifications per ListenerSet, with the real `baton controller` and `baton
//! agent` binaries and a real HTTP receiver in the test: a takeover after its holder pod died
//! arrives once per listener (by idempotency key) naming the new pod and fencing token; a
//! listener left with no pod arrives as Orphaned and the set turning Degraded as Degraded; a
//! missing Secret or a bad URL sets `NotificationsReady=False`, and what was decided meanwhile
//! arrives once the Secret is fixed.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use baton::api::listenerset::liveness::{is_leaving as is_leaving_lease, liveness_lease_name};
use baton::api::listenerset::ListenerSet;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::harness::listenersets;
use crate::harness::receiver::{Received, Receiver};
use crate::harness::{listeners, wait_for, Ns, APP};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);
/// A finalizer that keeps a pod terminating.
const HOLD: &str = "example.com/hold";

/// Secret `name` of `ns` with webhook URL `url` (created or replaced).
async fn sink_secret(ns: &Ns, name: &str, url: &str) {
    crate::harness::receiver::apply_sink_secret(&ns.client, &ns.name, name, url, None).await;
}

/// Create set `name` of `n` listeners (Leases of `lease` seconds) with `sinks` as
/// `spec.notifications`.
async fn create_notified_set(ns: &Ns, name: &str, n: usize, lease: i32, sinks: Value) -> Vec<String> {
    let (spec, keys) = listeners(name, n);
    let mut set = listenersets::set(&ns.name, name, APP, spec, lease);
    set.spec.notifications = serde_json::from_value(sinks).expect("notifications");
    ns.sets()
        .create(&PostParams::default(), &set)
        .await
        .unwrap_or_else(|e| panic!("creating set {name}: {e}"));
    keys
}

fn sink(secret: &str, format: &str, events: &[&str]) -> Value {
    json!({"sink": {"secretRef": {"name": secret}}, "format": format, "events": events})
}

/// The messages at `path`, once per idempotency key, in order of first arrival.
fn distinct(rx: &Receiver, path: &str) -> Vec<Received> {
    let mut seen = BTreeSet::new();
    rx.got(path).into_iter().filter(|r| seen.insert(r.key())).collect()
}

/// Wait until `path` got `n` distinct messages of event `event`.
async fn wait_distinct(rx: &Receiver, path: &str, event: &str, n: usize) -> Vec<Received> {
    ok(wait_for(&format!("{n} {event} at /{path}"), LONG, || async {
        let got: Vec<Received> = distinct(rx, path).into_iter().filter(|r| r.event() == event).collect();
        (got.len() >= n).then_some(got)
    })
    .await)
}

async fn get_set(ns: &Ns, name: &str) -> ListenerSet {
    ns.sets()
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("reading set {name}: {e}"))
}

fn condition(set: &ListenerSet, t: &str) -> Option<(String, String, String)> {
    let c = set.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The messages of the set's LeaseRecreated Events. kube-controller-manager's garbage
/// collector (before Kubernetes 1.34: its delete of a dependent has only a uid precondition) can
/// delete a taken-over Lease when it judged the Lease's dead owner before the takeover's write
/// and deletes after it; the holder stops on the deletion and the controller gives the listener
/// a new Lease with the next token. baton-sim's collector judges and deletes at once.
async fn recreated_after_takeover(ns: &Ns) -> Vec<String> {
    let events: kube::Api<k8s_openapi::api::core::v1::Event> = kube::Api::namespaced(ns.client.clone(), &ns.name);
    let listed = events
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    listed
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("LeaseRecreated"))
        .filter_map(|e| e.message)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_after_the_holder_pod_died_arrives_once_per_listener() {
    let ns = Ns::plain("notify-takeover").await;
    let rx = Receiver::start().await;
    sink_secret(&ns, "hook", &rx.url("json")).await;
    sink_secret(&ns, "hook-ce", &rx.url("ce")).await;
    ok(ns.start_controller().await);
    for p in ["nt-a", "nt-b"] {
        ok(ns.create_pod(p).await);
    }
    let sinks = json!([
        sink("hook", "json", &["Takeover"]),
        sink("hook-ce", "cloudevents-binary", &["Takeover"]),
    ]);
    create_notified_set(&ns, "sxt", 4, 3, sinks).await;
    let before = ok(ns.settled("sxt", 4, "4 listeners running", LONG).await);
    let set = get_set(&ns, "sxt").await;
    assert_eq!(
        condition(&set, "NotificationsReady").map(|c| (c.0, c.1)),
        Some(("True".into(), "SinksReady".into()))
    );
    let uid = set.metadata.uid.clone().expect("uid");

    // nt-a's containers die (agent and app), then it is deleted: its agent cannot release its
    // Leases; the kubelet reports the containers stopped, so they are taken over at once.
    let victim = "nt-a";
    let moved: BTreeMap<String, i32> = before
        .iter()
        .filter(|(_, (h, _))| h.as_deref() == Some(victim))
        .map(|(id, (_, t))| (id.clone(), *t))
        .collect();
    assert!(!moved.is_empty(), "{victim} holds a listener: {before:?}");
    ok(ns.kill_containers(victim).await);
    ok(ns.mark_dead(victim).await);
    ok(ns.delete_pod(victim, 30).await);
    ok(wait_for("every listener held by nt-b", LONG, || async {
        let held = ns.holders("sxt").await.ok()?;
        let all = held.len() == 4 && held.values().all(|(h, _)| h.as_deref() == Some("nt-b"));
        all.then_some(())
    })
    .await);
    let after = ok(ns.settled("sxt", 4, "4 listeners running on nt-b", LONG).await);

    let got = wait_distinct(&rx, "json", "Takeover", moved.len()).await;
    let recreated = recreated_after_takeover(&ns).await;
    // The set is settled: a late report would only repeat a key.
    assert_eq!(got.len(), moved.len(), "one Takeover per listener: {got:#?}");
    for m in &got {
        let id = m.body["listener"].as_str().unwrap_or_default().to_string();
        assert!(
            moved.contains_key(&id),
            "a Takeover of {id}, which {victim} did not hold"
        );
        let token = after[&id].1;
        assert!(token > moved[&id], "{id}: token {token} after {}", moved[&id]);
        let notified = m.body["fencingToken"].as_i64().unwrap_or_default();
        if notified != i64::from(token) {
            // Only a Lease deleted after the takeover (see `recreated_after_takeover`) moves on.
            assert!(
                notified > i64::from(moved[&id]) && notified < i64::from(token),
                "{id}: notified {notified}"
            );
            assert!(
                recreated
                    .iter()
                    .any(|e| e.contains(&format!("{id} → nt-b (token {token})"))),
                "{id}: token {notified} notified, {token} now, and no LeaseRecreated: {recreated:?}"
            );
        }
        assert_eq!(m.body["pod"], "nt-b");
        assert_eq!(m.body["previousPod"], victim);
        assert_eq!(m.body["listenerSet"], "sxt");
        assert_eq!(m.body["namespace"], ns.name.as_str());
        assert_eq!(m.body["id"].as_str(), Some(m.key().as_str()));
        assert!(m.key().starts_with(&format!("{uid}-")), "{}", m.key());
        let message = m.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("taken over by pod nt-b"), "{message}");
    }
    let listeners: BTreeSet<&str> = got.iter().filter_map(|m| m.body["listener"].as_str()).collect();
    assert_eq!(listeners.len(), moved.len(), "each listener once: {got:#?}");

    // CloudEvents binary mode: the same keys, the ListenerSet's type and source.
    let ce = wait_distinct(&rx, "ce", "Takeover", moved.len()).await;
    let keys = |v: &[Received]| v.iter().map(Received::key).collect::<BTreeSet<_>>();
    assert_eq!(keys(&ce), keys(&got));
    assert_eq!(ce[0].header("ce-type"), Some("dev.baton.listenerset.Takeover"));
    let source = format!("/apis/baton.dev/v1alpha1/namespaces/{}/listenersets/sxt", ns.name);
    assert_eq!(ce[0].header("ce-source"), Some(source.as_str()));
    assert_eq!(ce[0].header("ce-id").map(str::to_string), Some(ce[0].key()));
    assert_clean(&ns, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_left_without_a_pod_arrives_as_orphaned_and_the_set_as_degraded() {
    let ns = Ns::plain("notify-orphan").await;
    let rx = Receiver::start().await;
    sink_secret(&ns, "hook", &rx.url("json")).await;
    ok(ns.start_controller().await);
    // Ready before the set exists (create_pod waits): the set is not Degraded before it goes.
    ok(ns.create_pod("no-a").await);
    let sinks = json!([sink("hook", "json", &["Orphaned", "Degraded"])]);
    create_notified_set(&ns, "solo", 2, 3, sinks).await;
    let before = ok(ns.settled("solo", 2, "2 listeners running on no-a", LONG).await);
    // Running: nothing to notify.
    let early: Vec<String> = distinct(&rx, "json").iter().map(Received::event).collect();
    assert!(early.is_empty(), "{early:?}");

    // The only pod goes (gracefully: its agent releases both Leases) and none replaces it. A
    // finalizer keeps it terminating after its containers stopped, as a slow node or a finalizer
    // of some controller would.
    let hold = json!({"metadata": {"finalizers": [HOLD]}});
    ok(ns
        .pods_api()
        .patch("no-a", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .map_err(|e| e.to_string()));
    let live = liveness_lease_name(&ok(ns.pod("no-a")).uid);
    ok(ns.delete_pod("no-a", 30).await);
    let orphans = wait_distinct(&rx, "json", "Orphaned", 2).await;
    let by_listener: BTreeMap<String, i64> = orphans
        .iter()
        .map(|m| {
            let id = m.body["listener"].as_str().unwrap_or_default().to_string();
            (id, m.body["fencingToken"].as_i64().unwrap_or_default())
        })
        .collect();
    let want: BTreeMap<String, i64> = before.iter().map(|(id, (_, t))| (id.clone(), i64::from(*t))).collect();
    assert_eq!(by_listener, want, "each listener once, with the token it last ran with");
    for m in &orphans {
        let message = m.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("nothing runs it"), "{message}");
        assert!(message.contains("no listener can move: no eligible pod ("), "{message}");
    }
    let degraded = wait_distinct(&rx, "json", "Degraded", 1).await;
    assert_eq!(degraded[0].body["reason"], "NoEligiblePods", "{:?}", degraded[0].body);
    // Its agent left (it marked its pod leaving) and renews nothing: long past the time it
    // would have been said to have stopped, the set says the same and no new Degraded went out.
    ok(
        wait_for("no-a's agent silent for three lease durations", LONG, || async {
            let l = ns.leases().get(&live).await.ok()?;
            let renewed = l.spec.as_ref()?.renew_time.as_ref()?.0;
            let silent = jiff::Timestamp::now().duration_since(renewed);
            (is_leaving_lease(&l) && silent > jiff::SignedDuration::from_secs(9)).then_some(())
        })
        .await,
    );
    let set = get_set(&ns, "solo").await;
    assert_eq!(
        condition(&set, "Degraded").map(|c| (c.0, c.1)),
        Some(("True".into(), "NoEligiblePods".into())),
        "{:?}",
        set.status
    );
    let unhold = json!({"metadata": {"finalizers": null}});
    ok(ns
        .pods_api()
        .patch("no-a", &PatchParams::default(), &Patch::Merge(&unhold))
        .await
        .map_err(|e| e.to_string()));

    // A new pod takes them: nothing more is orphaned (each occurrence arrived once).
    ok(ns.create_pod("no-b").await);
    ok(wait_for("both on no-b", LONG, || async {
        let held = ns.holders("solo").await.ok()?;
        held.values().all(|(h, _)| h.as_deref() == Some("no-b")).then_some(())
    })
    .await);
    ok(ns.settled("solo", 2, "2 listeners running on no-b", LONG).await);
    let all = distinct(&rx, "json");
    let count = |e: &str| all.iter().filter(|m| m.event() == e).count();
    assert_eq!((count("Orphaned"), count("Degraded")), (2, 1), "{all:#?}");
    assert_clean(&ns, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_or_a_bad_url_sets_notifications_ready_false() {
    let ns = Ns::plain("notify-bad").await;
    let rx = Receiver::start().await;
    ok(ns.start_controller().await);
    // No pod: the set is Degraded (NoEligiblePods) from the start, while its sink is broken.
    create_notified_set(&ns, "lonely", 1, 3, json!([sink("hook", "json", &["Degraded"])])).await;
    let not_ready = |needle: &'static str| {
        let ns = &ns;
        move || async move {
            let set = ns.sets().get("lonely").await.ok()?;
            let c = condition(&set, "NotificationsReady")?;
            (c.0 == "False" && c.2.contains(needle)).then_some(c)
        }
    };
    let c = ok(wait_for(
        "NotificationsReady=False (no Secret)",
        LONG,
        not_ready("does not exist"),
    )
    .await);
    assert_eq!(c.1, "SinkInvalid");
    assert!(
        c.2.contains(&format!("Secret {}/hook does not exist", ns.name)),
        "{c:?}"
    );

    sink_secret(&ns, "hook", "not a url").await;
    let c = ok(wait_for("NotificationsReady=False (bad URL)", LONG, not_ready("is not a URL")).await);
    assert!(c.2.contains("key url \"not a url\" is not a URL"), "{c:?}");

    // Fixed within the retry bound: the Degraded decided meanwhile arrives.
    sink_secret(&ns, "hook", &rx.url("json")).await;
    ok(wait_for("NotificationsReady=True", LONG, || async {
        let set = ns.sets().get("lonely").await.ok()?;
        let c = condition(&set, "NotificationsReady")?;
        (c.0 == "True" && c.1 == "SinksReady").then_some(())
    })
    .await);
    let degraded = wait_distinct(&rx, "json", "Degraded", 1).await;
    assert_eq!(degraded[0].body["reason"], "NoEligiblePods");
}

/// sim-only (a fault rule holds the controller's status writes): a set turning Degraded is
/// notified once the status write saying so has landed, so a receiver that reads the set on the
/// notice finds the condition it names, however slow the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_a_degraded_notice_arrives_once_the_status_says_so() {
    let ns = Ns::plain("notify-landed").await;
    let rx = Receiver::start().await;
    sink_secret(&ns, "hook", &rx.url("json")).await;
    let ctl = ok(ns.start_controller().await);
    ok(ns.create_pod("nl-a").await);
    create_notified_set(&ns, "late", 1, 3, json!([sink("hook", "json", &["Degraded"])])).await;
    ok(ns.settled("late", 1, "1 listener running on nl-a", LONG).await);
    let rule = baton_sim::FaultRule {
        client: Some(ctl),
        latency: Duration::from_secs(3),
        path: Some("/listenersets/late/status".into()),
        ..baton_sim::FaultRule::default()
    };
    ns.cluster.sim().faults.add_rule(rule.clone());
    ok(ns.delete_pod("nl-a", 30).await);
    let degraded = wait_distinct(&rx, "json", "Degraded", 1).await;
    assert_eq!(degraded[0].body["reason"], "NoEligiblePods", "{:?}", degraded[0].body);
    let set = get_set(&ns, "late").await;
    ns.cluster.sim().faults.remove_rule(&rule);
    assert_eq!(
        condition(&set, "Degraded").map(|c| (c.0, c.1)),
        Some(("True".into(), "NoEligiblePods".into())),
        "the notice arrived before the status said so: {:?}",
        set.status
    );
    assert_clean(&ns, false);
}
