//! The controller's own Lease writes are conditional. A Lease changed between the controller's
//! read and its write (here a hand edit with `kubectl annotate`, which gives it a new
//! resourceVersion) answers the controller's patch 409: the change is not overwritten, and the
//! controller decides again from what it then sees. A Lease deleted by hand while a controller
//! patch is on its way is being deleted (its finalizer keeps it until nobody runs its listener):
//! the patch, conditional on the version before, answers 409, never creates (a merge patch
//! never does; a PUT would: Leases allow create on update), and once its holder let it go the
//! Lease goes and stays gone.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton::api::listenerset::lease_name;
use baton_sim::FaultRule;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::harness::kubectl::Kubectl;
use crate::harness::{listeners, wait_for, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// Answered patches of Leases by `user` (from the audit), by HTTP code.
fn answered(ns: &Ns, user: &str) -> BTreeMap<u16, u64> {
    ns.sim_counts(|k| (k.user == user && k.resource == "leases" && k.verb == "patch").then_some(k.code))
}

/// Suspend the listeners `suspended` of set `set` (the controller then asks their holders to
/// release them); the other `ids` run.
async fn suspend(ns: &Ns, set: &str, ids: &[String], suspended: &[String]) {
    let listeners: Vec<_> = ids
        .iter()
        .map(|id| json!({"id": id, "suspend": suspended.contains(id)}))
        .collect();
    let patch = json!({"spec": {"listeners": listeners}});
    ns.sets()
        .patch(set, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("suspending listeners");
}

/// Wait until `user` has a patch of `path` on its way (arrived after `t0`, not answered yet).
async fn in_flight(ns: &Ns, user: &str, path: &str, t0: Instant) {
    ok(wait_for("the controller's patch on its way", LONG, || async {
        let writes = ns.cluster.sim().core.writes();
        writes
            .iter()
            .any(|w| w.at > t0 && w.identity.contains(user) && w.method == "PATCH" && w.path.ends_with(path))
            .then_some(())
    })
    .await);
}

/// Hold `user`'s requests of `path` for `latency` (a rule now in force): the rule, to remove.
fn slow_down(ns: &Ns, user: &str, path: &str, latency: Duration) -> FaultRule {
    let rule = FaultRule {
        client: Some(user.to_string()),
        latency,
        path: Some(path.to_string()),
        ..FaultRule::default()
    };
    ns.cluster.sim().faults.add_rule(rule.clone());
    rule
}

/// Wait until `user`'s patches answered with `code` outnumber `before`'s.
async fn answered_with(ns: &Ns, user: &str, before: &BTreeMap<u16, u64>, code: u16) {
    let had = before.get(&code).copied().unwrap_or(0);
    ok(wait_for(&format!("a patch answered {code}"), LONG, || async {
        (answered(ns, user).get(&code).copied().unwrap_or(0) > had).then_some(())
    })
    .await);
}

/// The test's namespace, kubectl, controller and the set `sxt`'s listener ids.
struct Scene<'a> {
    ns: &'a Ns,
    kubectl: Kubectl,
    ctl: String,
    ids: Vec<String>,
}

impl Scene<'_> {
    /// With the controller's patches of Lease `lease` slowed by 1 s, suspend `suspended`; once
    /// the release patch is on its way run `kubectl args` (a hand change), and wait until a
    /// patch of the controller is answered `code`. The audit counts from before.
    async fn hand_change_while_releasing(
        &self,
        suspended: &[String],
        lease: &str,
        args: &[&str],
        code: u16,
    ) -> BTreeMap<u16, u64> {
        let (ns, ctl) = (self.ns, self.ctl.as_str());
        let path = format!("/leases/{lease}");
        let slow = slow_down(ns, ctl, &path, Duration::from_secs(1));
        let before = answered(ns, ctl);
        let t0 = Instant::now();
        suspend(ns, "sxt", &self.ids, suspended).await;
        in_flight(ns, ctl, &path, t0).await;
        self.kubectl.ok(args).await;
        answered_with(ns, ctl, &before, code).await;
        ns.cluster.sim().faults.remove_rule(&slow);
        before
    }
}

/// sim-only: it holds one request of the controller in flight (baton-sim's fault rules delay one
/// path of one identity), which no proxy in front of kube-apiserver can single out under TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_the_controllers_stale_patches_neither_overwrite_nor_recreate() {
    let ns = Ns::plain("ctlwrites").await;
    let ctl = ok(ns.start_controller().await);
    ok(ns.create_pod("cw-a").await);
    let (spec, keys) = listeners("sxt", 2);
    let ids: Vec<String> = spec.iter().map(|l| l.id.clone()).collect();
    ok(ns.create_set("sxt", spec, 8).await);
    ok(ns.settled("sxt", 2, "both listeners running", LONG).await);
    let scene = Scene {
        ns: &ns,
        ctl: ctl.clone(),
        kubectl: ns.cluster.kubectl(),
        ids: ids.clone(),
    };

    // 1. A hand edit lands while the controller's release request is on its way.
    let lease = lease_name("sxt", &ids[0]);
    let annotate = ["annotate", "lease", &lease, "-n", &ns.name, "example.com/note=by-hand"];
    scene
        .hand_change_while_releasing(&ids[..1], &lease, &annotate, 409)
        .await;
    // The controller asks again from the Lease it now sees; the hand edit stays.
    ok(wait_for("l000 released and stopped", LONG, || async {
        (!ns.log.running().contains_key(&keys[0])).then_some(())
    })
    .await);
    let found = ns.leases().get(&lease).await.expect("reading the Lease");
    let note = found
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("example.com/note"))
        .cloned();
    assert_eq!(note.as_deref(), Some("by-hand"), "{found:?}");

    // 2. The Lease is deleted by hand while the controller's release request is on its way.
    let lease = lease_name("sxt", &ids[1]);
    let delete = ["delete", "lease", &lease, "-n", &ns.name, "--wait=false"];
    let before = scene.hand_change_while_releasing(&ids, &lease, &delete, 409).await;
    let after = answered(&ns, &ctl);
    assert_eq!(
        after.get(&201).copied().unwrap_or(0),
        before.get(&201).copied().unwrap_or(0),
        "a controller patch created a Lease: {after:?}"
    );
    // The agent stops the listener whose Lease is gone; the set reports both suspended, and the
    // Lease stays gone.
    ok(wait_for("l001 stopped", LONG, || async {
        (!ns.log.running().contains_key(&keys[1])).then_some(())
    })
    .await);
    ok(wait_for("status: 2 suspended", LONG, || async {
        let set = ns.sets().get("sxt").await.ok()?;
        (set.status?.suspended == 2).then_some(())
    })
    .await);
    ok(
        wait_for("the Lease deleted by hand gone once released", LONG, || async {
            ns.leases().get_opt(&lease).await.ok()?.is_none().then_some(())
        })
        .await,
    );
    ok(wait_for("status: 2 suspended", LONG, || async {
        let set = ns.sets().get("sxt").await.ok()?;
        (set.status?.suspended == 2).then_some(())
    })
    .await);
    assert!(
        ns.leases().get_opt(&lease).await.expect("reading").is_none(),
        "the Lease deleted by hand is back"
    );
    assert_clean(&ns, true);
}

/// sim-only, as above: one release request of the controller is held on its way.
///
/// A drain asks for every listener of the pod at once. A listener whose holder has let it go
/// moves on while another's request is still on its way: no handover waits until the slowest
/// request is answered (the holder's agent hands each listener to the successor its request
/// names; a request that names none goes out without the pass waiting for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_a_slow_release_request_holds_back_no_other_handover() {
    const SLOW: Duration = Duration::from_secs(20);
    let ns = Ns::plain("slowreq").await;
    let ctl = ok(ns.start_controller().await);
    ok(ns.create_pod("sr-a").await);
    ok(ns.create_pod("sr-b").await);
    let (spec, keys) = listeners("srq", 4);
    ok(ns.create_set("srq", spec, 8).await);
    ok(ns.settled("srq", 4, "all four running", LONG).await);
    let on_a: Vec<String> = keys
        .iter()
        .filter(|k| ns.running_on().get(*k).map(String::as_str) == Some("sr-a"))
        .cloned()
        .collect();
    assert!(on_a.len() >= 2, "sr-a runs {on_a:?}: two are needed");
    let id = |key: &str| key.rsplit('/').next().unwrap_or_default().to_string();
    let (slow, other) = (id(&on_a[0]), on_a[1].clone());
    let lease = lease_name("srq", &slow);
    let path = format!("/leases/{lease}");
    let rule = slow_down(&ns, &ctl, &path, SLOW);
    let t0 = Instant::now();
    ok(ns.drain("sr-a", true).await);
    in_flight(&ns, &ctl, &path, t0).await;
    ns.cluster.sim().faults.remove_rule(&rule);
    // Well within the slow request's delay, the other listener runs on sr-b...
    ok(ns
        .wait_running("the other listener on sr-b", &[other], SLOW / 2, |pod| pod == "sr-b")
        .await);
    // ... while the slow request has not reached the Lease: its listener still runs on sr-a.
    let held = ns
        .leases()
        .get(&lease)
        .await
        .expect("reading the slow listener's Lease");
    let requested = held
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(baton::api::listenerset::RELEASE_REQUESTED_ANNOTATION));
    assert!(requested.is_none(), "the slow request was answered already: {held:?}");
    assert_eq!(
        ns.running_on().get(&on_a[0]).map(String::as_str),
        Some("sr-a"),
        "{}",
        ns.api_state().await
    );
    // Once it is answered, that listener moves too.
    ok(ns
        .wait_running("all four on sr-b", &keys, LONG, |pod| pod == "sr-b")
        .await);
    assert_clean(&ns, true);
}

/// sim-only, as above: the controller's status writes of one set are held on their way.
///
/// A pass hands its status write off and goes on: a slow status write (a large set's takes
/// kube-apiserver over a second) holds back no decision of the set. Here every status write of
/// the set takes 20 s; a pod deleted meanwhile has its listeners running elsewhere well before
/// the first of them lands, and the status tells the truth once they land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_a_slow_status_write_holds_back_no_decision() {
    const SLOW: Duration = Duration::from_secs(20);
    let ns = Ns::plain("slowstatus").await;
    let ctl = ok(ns.start_controller().await);
    for pod in ["ss-a", "ss-b", "ss-c"] {
        ok(ns.create_pod(pod).await);
    }
    let (spec, keys) = listeners("sst", 6);
    ok(ns.create_set("sst", spec, 8).await);
    ok(ns.settled("sst", 6, "all six running", LONG).await);
    let on = ns.running_on();
    let on_a: Vec<String> = keys
        .iter()
        .filter(|k| on.get(*k).map(String::as_str) == Some("ss-a"))
        .cloned()
        .collect();
    let elsewhere = keys.iter().find(|k| !on_a.contains(k)).cloned();
    let (false, Some(suspended)) = (on_a.is_empty(), elsewhere) else {
        panic!("ss-a runs {on_a:?} of {keys:?}: it must run some, not all");
    };
    let ids: Vec<String> = keys
        .iter()
        .map(|k| k.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    let suspended_id = suspended.rsplit('/').next().unwrap_or_default().to_string();
    let path = "/listenersets/sst/status".to_string();
    let rule = slow_down(&ns, &ctl, &path, SLOW);
    // A spec change: the pass that asks the suspended listener's holder to let it go writes the
    // status (its observed generation) too.
    let t0 = Instant::now();
    suspend(&ns, "sst", &ids, std::slice::from_ref(&suspended_id)).await;
    in_flight(&ns, &ctl, &path, t0).await;
    // Deleted, ss-a's agent lets its listeners go; only a pass of the controller places them.
    ok(ns.delete_pod("ss-a", 5).await);
    ok(ns
        .wait_running("ss-a's listeners elsewhere", &on_a, SLOW / 2, |pod| pod != "ss-a")
        .await);
    ns.cluster.sim().faults.remove_rule(&rule);
    let generation = ns.sets().get("sst").await.expect("reading the set").metadata.generation;
    ok(
        wait_for("status: 5 running, 1 suspended, the spec observed", LONG, || async {
            let status = ns.sets().get("sst").await.ok()?.status?;
            (status.running == 5 && status.suspended == 1 && status.observed_generation == generation).then_some(())
        })
        .await,
    );
    let held = ok(ns.holders("sst").await);
    let highest = held.values().map(|(_, token)| *token).max().unwrap_or(0);
    let status = ns
        .sets()
        .get("sst")
        .await
        .expect("reading the set")
        .status
        .unwrap_or_default();
    assert!(
        status.fencing_token_ceiling.unwrap_or(0) >= highest,
        "the ceiling {:?} is below a token handed out ({highest}): {held:?}",
        status.fencing_token_ceiling
    );
    assert_clean(&ns, true);
}
