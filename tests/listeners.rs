//! ListenerSet controller + agent, end to end on the simulator.
// The serial guard is held for a whole test on that test's own runtime: intended.
#![allow(clippy::await_holding_lock)]
mod listeners_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use baton::api::listenerset::{ConfigRef, Listener, ListenerSet, SecretKeyRef};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use listeners_support::*;
use serde_json::json;
use tokio::time::Instant;

fn set_status(set: &ListenerSet) -> (i32, i32, i32, i32) {
    let st = set.status.clone().unwrap_or_default();
    (st.running, st.pending, st.orphaned, st.suspended)
}

fn condition(set: &ListenerSet, t: &str) -> Option<(String, String, String)> {
    let c = set.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The old system's local test: two instances, a listener added, the first instance stopped
/// with SIGTERM → the second runs it; the first comes back → nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_over_and_a_returning_instance_moves_nothing() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let stats = std::sync::Arc::new(baton::listeners::controller::Stats::default());
    let (_stop, ctl) = w.controller_counted("controller-a", stats.clone()).await;
    w.create_pod("inst-a", "svc").await;
    w.create_pod("inst-b", "svc").await;
    w.wait_ready("inst-a").await;
    w.wait_ready("inst-b").await;
    w.create_set("sxt", "svc", vec![], 15).await;
    // A listener is added.
    let patch = json!({"spec": {"listeners": [{"id": "listener1"}]}});
    w.sets()
        .patch("sxt", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let one = vec!["listener1".to_string()];
    w.wait_running("listener1 running", &one, Duration::from_secs(30), |_| true)
        .await;
    let first = w.log.running()["listener1"][0].clone();
    let second = if first == "inst-a" { "inst-b" } else { "inst-a" };

    // SIGTERM the first (graceful delete): the agent stops and releases at once.
    let t0 = Instant::now();
    w.delete_pod(&first, None).await;
    w.wait_running("listener1 on the second instance", &one, Duration::from_secs(5), |p| {
        p == second
    })
    .await;
    let moved_in = t0.elapsed();
    println!("handover after SIGTERM: {moved_in:?}");
    assert!(
        moved_in < Duration::from_secs(3),
        "took {moved_in:?}, far less than the 15 s lease"
    );

    // The first comes back (a new pod of the same name): nothing moves.
    let pods = w.pods();
    wait_for("old pod gone", Duration::from_secs(35), || {
        let pods = pods.clone();
        let first = first.clone();
        async move { pods.get_opt(&first).await.ok()?.is_none().then_some(()) }
    })
    .await;
    let before = w.holders("sxt").await;
    let starts = w.log.starts();
    w.create_pod(&first, "svc").await;
    w.wait_ready(&first).await;
    // Let the controller see the new Ready pod: wait for two more reconciles.
    let seen = stats.reconciles.load(Ordering::Relaxed);
    wait_for("reconciles after the pod became Ready", Duration::from_secs(10), || {
        let n = stats.reconciles.load(Ordering::Relaxed);
        async move { (n >= seen + 2).then_some(()) }
    })
    .await;
    assert_eq!(w.holders("sxt").await, before, "a returning instance moved nothing");
    assert_eq!(w.log.starts(), starts);
    let (dups, worst, _) = w.log.analyse();
    assert_eq!(dups, 0);
    println!("worst gap {worst:?}");
    drop(ctl);
}

fn rollout(version: &str) -> serde_json::Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "svc", "namespace": NS},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "svc"}},
            "version": version,
            "template": {
                "metadata": {"labels": {"app": "svc", AGENT_LABEL: "true"}},
                "spec": {"containers": [{"name": "app", "image": format!("svc:{version}")}]}
            },
            "strategy": {"batches": [1, "100%"], "maxSurge": 1, "maxUnavailable": 0},
            "minReadySeconds": 0,
            "progressDeadlineSeconds": 60
        }
    })
}

/// A 3-instance Rollout v1 → v2 with 30 listeners: 0 duplicates, everything running at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_hands_over_30_listeners_without_duplicates() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let client = w.sim.client_as("controller-op").await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = baton::operator::OperatorConfig {
        namespace: Some(NS.into()),
        drain_timeout: Duration::from_secs(20),
        instance: "test".into(),
        ..Default::default()
    };
    let op = tokio::spawn(baton::operator::run(client, cfg, async move {
        let _ = stop_rx.await;
    }));
    let rollouts: Api<baton::api::rollout::Rollout> = Api::namespaced(w.client.clone(), NS);
    let pp = PatchParams::apply("test").force();
    rollouts.patch("svc", &pp, &Patch::Apply(rollout("v1"))).await.unwrap();
    w.create_set("sxt", "svc", listeners(30), 10).await;
    let all = ids(30);
    let pods = w.pods();
    let version_of = |pods: &[k8s_openapi::api::core::v1::Pod], name: &str| -> Option<String> {
        pods.iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .and_then(|p| p.metadata.labels.as_ref()?.get("app.kubernetes.io/version").cloned())
    };
    w.wait_running("30 listeners on v1", &all, Duration::from_secs(30), |_| true)
        .await;
    let on_v1 = pods.list(&Default::default()).await.unwrap().items;
    assert!(w
        .log
        .running()
        .values()
        .all(|p| version_of(&on_v1, &p[0]).as_deref() == Some("v1")));
    let spread: std::collections::BTreeMap<String, usize> =
        w.log.running().values().fold(Default::default(), |mut m, p| {
            *m.entry(p[0].clone()).or_default() += 1;
            m
        });
    println!("v1 spread: {spread:?}");

    {
        let (c, log) = (w.client.clone(), w.log.clone());
        *DUMP.lock().unwrap() = Some(Box::new(move || {
            let (c, log) = (c.clone(), log.clone());
            async move {
                let r: Api<baton::api::rollout::Rollout> = Api::namespaced(c.clone(), NS);
                if let Ok(r) = r.get("svc").await {
                    eprintln!(
                        "ROLLOUT STATUS {}",
                        serde_json::to_string(&r.status).unwrap_or_default()
                    );
                }
                let p: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.clone(), NS);
                for pod in p.list(&Default::default()).await.map(|l| l.items).unwrap_or_default() {
                    eprintln!(
                        "POD {:?} ann={:?} del={:?} ready={:?}",
                        pod.metadata.name,
                        pod.metadata.annotations,
                        pod.metadata.deletion_timestamp,
                        pod.status.and_then(|s| s.conditions).map(|c| c
                            .iter()
                            .map(|c| format!("{}={}", c.type_, c.status))
                            .collect::<Vec<_>>())
                    );
                }
                let l: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(c.clone(), NS);
                for lease in l.list(&Default::default()).await.map(|l| l.items).unwrap_or_default() {
                    eprintln!(
                        "LEASE {:?} holder={:?} ann={:?} owner={:?}",
                        lease.metadata.name,
                        lease.spec.as_ref().and_then(|s| s.holder_identity.clone()),
                        lease.metadata.annotations,
                        lease
                            .metadata
                            .owner_references
                            .map(|o| o.iter().map(|o| o.name.clone()).collect::<Vec<_>>())
                    );
                }
                eprintln!("LOG RUNNING {:?}", log.running());
            }
            .boxed()
        }));
    }
    let t0 = Instant::now();
    rollouts.patch("svc", &pp, &Patch::Apply(rollout("v2"))).await.unwrap();
    wait_for(
        "Rollout healthy on v2 and 30 listeners on v2 pods",
        Duration::from_secs(90),
        || {
            let (pods, rollouts, log) = (pods.clone(), rollouts.clone(), w.log.clone());
            async move {
                let r = rollouts.get("svc").await.ok()?;
                let st = r.status?;
                let healthy = st.instances.len() == 3
                    && st
                        .instances
                        .iter()
                        .all(|i| i.ready && i.version.as_deref() == Some("v2"))
                    && st.phase == Some(baton::api::rollout::RolloutPhase::Healthy);
                let list = pods.list(&Default::default()).await.ok()?.items;
                let running = log.running();
                let on_v2 = ids(30).iter().all(|id| {
                    running
                        .get(id)
                        .is_some_and(|p| p.len() == 1 && version_of(&list, &p[0]).as_deref() == Some("v2"))
                });
                (healthy && on_v2 && list.len() == 3).then_some(())
            }
        },
    )
    .await;
    let took = t0.elapsed();
    let (dups, worst, gaps) = w.log.analyse();
    let mut sorted = gaps.clone();
    sorted.sort();
    let p50 = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    println!(
        "rollout v1→v2 with 30 listeners: {took:?}; handovers {}; duplicates {dups}; gap p50 {p50:?}, worst {worst:?}",
        gaps.len()
    );
    assert_eq!(dups, 0, "no listener ran twice at once");
    assert!(gaps.len() >= 30, "every listener moved at least once ({})", gaps.len());
    assert!(worst < Duration::from_secs(5), "worst gap {worst:?}");
    let _ = stop_tx.send(());
    let _ = op.await;
}

/// kill -9 of an agent, and a pod deleted with grace 0: the listeners run again within lease
/// duration + 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_agents_listeners_are_taken_over_in_time() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    for p in ["crash-a", "crash-b", "crash-c"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["crash-a", "crash-b", "crash-c"] {
        w.wait_ready(p).await;
    }
    let lease = 3;
    w.create_set("sxt", "svc", listeners(9), lease).await;
    let all = ids(9);
    w.wait_running("9 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    let limit = Duration::from_secs(lease as u64 + 1);

    // kill -9: the process dies (and the kubelet restarts it).
    let victim = w.log.running()["l000"][0].clone();
    let t0 = Instant::now();
    assert!(w.sim.kubelet.crash(NS, &victim));
    wait_for("crashed process recorded", Duration::from_secs(2), || {
        let open = w.log.running().values().any(|p| p.contains(&victim));
        async move { (!open).then_some(()) }
    })
    .await;
    w.wait_running("all running after kill -9", &all, limit, |_| true).await;
    println!(
        "after kill -9 of {victim}: all listeners running again in {:?}",
        t0.elapsed()
    );

    // Grace 0: the pod is gone at once; its listeners are orphans, taken over at once.
    let victim = w.log.running()["l001"][0].clone();
    let t0 = Instant::now();
    w.delete_pod(&victim, Some(0)).await;
    w.wait_running("all running after a grace-0 delete", &all, limit, |p| p != victim)
        .await;
    let took = t0.elapsed();
    println!("after grace-0 delete of {victim}: all listeners running elsewhere in {took:?}");
    let (dups, worst, _) = w.log.analyse();
    println!("duplicates {dups}, worst gap {worst:?}");
    assert_eq!(dups, 0);
}

/// A partitioned agent stops its listeners before the controller reassigns them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_agent_stops_before_takeover() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    w.create_pod("part-a", "svc").await;
    w.create_pod("part-b", "svc").await;
    w.wait_ready("part-a").await;
    w.wait_ready("part-b").await;
    let lease = 3;
    w.create_set("sxt", "svc", listeners(8), lease).await;
    let all = ids(8);
    w.wait_running("8 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    let on_a: Vec<String> = w
        .log
        .running()
        .into_iter()
        .filter(|(_, p)| p[0] == "part-a")
        .map(|(l, _)| l)
        .collect();
    assert!(!on_a.is_empty());

    let t0 = Instant::now();
    w.sim.faults.block("token=agent-part-a");
    w.wait_running(
        "part-a's listeners on part-b",
        &all,
        Duration::from_secs(lease as u64 + 2),
        |p| p == "part-b",
    )
    .await;
    println!(
        "partition: {} listeners moved to part-b in {:?}",
        on_a.len(),
        t0.elapsed()
    );
    let log = w.log.snapshot();
    for l in &on_a {
        let a_end = log
            .iter()
            .filter(|i| &i.listener == l && i.pod == "part-a")
            .filter_map(|i| i.end)
            .max();
        let b_start = log
            .iter()
            .filter(|i| &i.listener == l && i.pod == "part-b")
            .map(|i| i.start)
            .max();
        let (a_end, b_start) = (a_end.expect("a stopped"), b_start.expect("b started"));
        assert!(a_end <= b_start, "{l}: part-a stopped before part-b started");
        println!("{l}: stopped on part-a {:?} before part-b started", b_start - a_end);
    }
    // Heal: the old holder finds its Leases gone and starts nothing.
    let starts = w.log.starts();
    w.sim.faults.unblock("token=agent-part-a");
    let leases = w.leases();
    wait_for("part-a's agent talks again", Duration::from_secs(20), || {
        let leases = leases.clone();
        async move { leases.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
    assert!(w.log.running().values().all(|p| p.len() == 1 && p[0] == "part-b"));
    assert_eq!(w.log.starts(), starts);
    let (dups, worst, _) = w.log.analyse();
    println!("duplicates {dups}, worst gap {worst:?}");
    assert_eq!(dups, 0);
}

/// The controller is replaced in the middle of handovers: no overlap, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_failover_mid_handover() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (stop1, ctl1) = w.controller("controller-1").await;
    for p in ["fo-a", "fo-b", "fo-c"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["fo-a", "fo-b", "fo-c"] {
        w.wait_ready(p).await;
    }
    w.create_set("sxt", "svc", listeners(30), 5).await;
    let all = ids(30);
    w.wait_running("30 listeners", &all, Duration::from_secs(15), |_| true)
        .await;
    // Drain fo-a: its listeners start moving...
    let patch = json!({"metadata": {"annotations": {"baton.dev/drain": "now"}}});
    w.pods()
        .patch("fo-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let starts = w.log.starts();
    wait_for("first handover", Duration::from_secs(20), || {
        let n = w.log.starts();
        async move { (n > starts).then_some(()) }
    })
    .await;
    // ...and the controller goes away mid-way; another takes over.
    let _ = stop1.send(());
    let _ = ctl1.await;
    let (_stop2, _ctl2) = w.controller("controller-2").await;
    w.wait_running("30 listeners off fo-a", &all, Duration::from_secs(20), |p| p != "fo-a")
        .await;
    let (dups, worst, gaps) = w.log.analyse();
    println!(
        "failover: {} handovers, duplicates {dups}, worst gap {worst:?}",
        gaps.len()
    );
    assert_eq!(dups, 0);
}

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
    ls.push(Listener {
        id: "tokened".into(),
        config_ref: Some(ConfigRef {
            secret_key_ref: SecretKeyRef {
                name: "tokens".into(),
                key: "tokened".into(),
            },
        }),
        suspend: false,
    });
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

    // The Secret appears: the listener starts with its config.
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "tokens", "namespace": NS},
        "stringData": {"tokened": "s3cr3t"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(w.client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
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
            (condition(&s, "Ready")?.0 == "True" && condition(&s, "Degraded")?.0 == "False").then_some(())
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
            (st.listeners == 3 && st.running == 3 && !st.assignments.iter().any(|a| a.listener == "l002")).then_some(s)
        }
    })
    .await;
    print!("{}", baton::cli::listeners::render(&set));
    let (dups, _, _) = w.log.analyse();
    assert_eq!(dups, 0);
}

/// `recover` reassigns orphans now (a holder stuck terminating, its agent cut off), and only them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_reassigns_only_orphans() {
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
    let before = w.holders("sxt").await;
    // rc-a gets stuck: cut off from the API, then deleted (a finalizer keeps it terminating).
    let patch = json!({"metadata": {"finalizers": ["test/hold"]}});
    w.pods()
        .patch("rc-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    w.sim.faults.block("token=agent-rc-a");
    w.delete_pod("rc-a", Some(30)).await;
    // SIGTERM: the agent stops its listeners but cannot release (it is cut off).
    wait_for("rc-a stopped its listeners", Duration::from_secs(20), || {
        let open = w.log.running().values().any(|p| p.contains(&"rc-a".to_string()));
        async move { (!open).then_some(()) }
    })
    .await;
    let t0 = Instant::now();
    let sets = w.sets();
    baton::cli::listeners::recover(&sets, "sxt", Duration::from_secs(10))
        .await
        .unwrap();
    w.wait_running("all running off rc-a", &all, Duration::from_secs(20), |p| p != "rc-a")
        .await;
    println!(
        "recover: orphans reassigned in {:?} (lease duration 60 s)",
        t0.elapsed()
    );
    let after = w.holders("sxt").await;
    for (id, (holder, token)) in &before {
        if holder.as_deref() != Some("rc-a") {
            assert_eq!(
                after.get(id),
                Some(&(holder.clone(), *token)),
                "{id} on a Ready pod did not move"
            );
        }
    }
    let (dups, _, _) = w.log.analyse();
    assert_eq!(dups, 0);
    w.sim.faults.unblock("token=agent-rc-a");
    let patch = json!({"metadata": {"finalizers": null}});
    let _ = w
        .pods()
        .patch("rc-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}

/// The listeners of `set`, per the agents' log: (id, end of its last interval; None = running).
fn last_ends(w: &World, ids: &[String]) -> std::collections::BTreeMap<String, Option<Instant>> {
    let log = w.log.snapshot();
    ids.iter()
        .map(|id| {
            let last = log.iter().filter(|i| &i.listener == id).max_by_key(|i| i.start);
            (id.clone(), last.and_then(|i| i.end))
        })
        .collect()
}

async fn wait_set_gone(w: &World, set: &str, deadline: Duration) {
    let sets = w.sets();
    wait_for(&format!("ListenerSet {set} gone"), deadline, || {
        let sets = sets.clone();
        async move { sets.get_opt(set).await.ok()?.is_none().then_some(()) }
    })
    .await;
}

fn has_finalizer(set: &ListenerSet) -> bool {
    set.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == baton::listeners::FINALIZER)
}

/// Deleting a ListenerSet: its holders stop and release, every Lease is deleted, then the set goes;
/// another set on the same pods is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_set_stops_its_listeners_and_deletes_its_leases() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    for p in ["del-a", "del-b"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["del-a", "del-b"] {
        w.wait_ready(p).await;
    }
    // A 30 s lease: deletion finishing far sooner proves holders released, nothing expired.
    let lease = 30;
    w.create_set("gone", "svc", listeners(6), lease).await;
    let keep: Vec<Listener> = (0..3)
        .map(|i| Listener {
            id: format!("k{i}"),
            ..Default::default()
        })
        .collect();
    let keep_ids: Vec<String> = keep.iter().map(|l| l.id.clone()).collect();
    w.create_set("stays", "svc", keep, lease).await;
    let gone = ids(6);
    let all: Vec<String> = gone.iter().chain(&keep_ids).cloned().collect();
    w.wait_running("9 listeners of two sets", &all, Duration::from_secs(30), |_| true)
        .await;
    let sets = w.sets();
    assert!(
        has_finalizer(&sets.get("gone").await.unwrap()),
        "the controller put its finalizer on"
    );
    assert_eq!(w.holders("gone").await.len(), 6);
    let kept_before = w.holders("stays").await;
    let (deleted_at, _watch) = w.watch_lease_deletions("gone").await;

    let t0 = Instant::now();
    sets.delete("gone", &Default::default()).await.unwrap();
    wait_set_gone(&w, "gone", Duration::from_secs(15)).await;
    let took = t0.elapsed();
    println!("ListenerSet with 6 running listeners deleted in {took:?}");
    assert!(
        took < Duration::from_secs(lease as u64 / 2),
        "took {took:?}: holders must release, not let the {lease} s Leases expire"
    );
    assert!(
        w.holders("gone").await.is_empty(),
        "no Lease of the deleted set remains"
    );
    let running = w.log.running();
    for id in &gone {
        assert!(!running.contains_key(id), "{id} still runs on {:?}", running.get(id));
    }
    // A Lease went only after its listener had stopped.
    let ends = last_ends(&w, &gone);
    wait_for("every Lease deletion watched", Duration::from_secs(5), || {
        let n = deleted_at.lock().unwrap().len();
        async move { (n == 6).then_some(()) }
    })
    .await;
    for (id, at) in deleted_at.lock().unwrap().iter() {
        let end = ends.get(id).copied().flatten().expect("stopped");
        assert!(end <= *at, "{id}: its Lease was deleted before its holder stopped");
    }
    // The other set on the same pods did not notice.
    assert_eq!(w.holders("stays").await, kept_before);
    w.wait_running("the other set still running", &keep_ids, Duration::from_secs(1), |_| {
        true
    })
    .await;
    assert_eq!(
        w.log.snapshot().iter().filter(|i| i.listener.starts_with('k')).count(),
        3,
        "the other set's listeners never restarted"
    );
    wait_for("Terminating and Finalized events", Duration::from_secs(5), || async {
        let reasons = w.set_event_reasons("gone").await;
        (reasons.iter().any(|r| r == "Terminating") && reasons.iter().any(|r| r == "Finalized")).then_some(())
    })
    .await;
    let (dups, _, _) = w.log.analyse();
    assert_eq!(dups, 0);
}

/// A set that never had a pod is deleted at once (its finalizer does not hold it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_without_pods_is_deleted_at_once() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    w.create_set("lonely", "nobody", listeners(3), 15).await;
    let sets = w.sets();
    wait_for("finalizer and status", Duration::from_secs(10), || {
        let sets = sets.clone();
        async move {
            let s = sets.get("lonely").await.ok()?;
            (has_finalizer(&s) && condition(&s, "Ready")?.1 == "NoEligiblePods").then_some(())
        }
    })
    .await;
    let t0 = Instant::now();
    sets.delete("lonely", &Default::default()).await.unwrap();
    wait_set_gone(&w, "lonely", Duration::from_secs(5)).await;
    println!("ListenerSet without pods deleted in {:?}", t0.elapsed());
    assert!(w.holders("lonely").await.is_empty());
}

/// A deleted set whose holder is cut off (cannot release) keeps its Lease until it expired, which
/// is after that holder stopped its listeners on its own; then the set goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_sets_lease_outlives_a_cut_off_holder() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    w.create_pod("cut-a", "svc").await;
    w.wait_ready("cut-a").await;
    let lease = 4;
    w.create_set("cut", "svc", listeners(3), lease).await;
    let all = ids(3);
    w.wait_running("3 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    let (deleted_at, _watch) = w.watch_lease_deletions("cut").await;
    w.sim.faults.block("token=agent-cut-a");
    let t0 = Instant::now();
    let sets = w.sets();
    sets.delete("cut", &Default::default()).await.unwrap();
    // The holder cannot hear the release request: the set waits, and says why.
    let set = wait_for("set Terminating", Duration::from_secs(5), || {
        let sets = sets.clone();
        async move {
            let s = sets.get_opt("cut").await.ok()??;
            (condition(&s, "Ready")?.1 == "Terminating").then_some(s)
        }
    })
    .await;
    let (status, _, message) = condition(&set, "Ready").unwrap();
    println!("Ready={status} Terminating: {message}");
    assert_eq!(status, "False");
    assert_eq!(
        w.holders("cut").await.len(),
        3,
        "no Lease deleted while its holder may run it"
    );
    wait_set_gone(&w, "cut", Duration::from_secs(lease as u64 + 5)).await;
    println!(
        "deleted in {:?} with the holder cut off ({lease} s Leases)",
        t0.elapsed()
    );
    assert!(w.holders("cut").await.is_empty());
    wait_for("every Lease deletion watched", Duration::from_secs(5), || {
        let n = deleted_at.lock().unwrap().len();
        async move { (n == 3).then_some(()) }
    })
    .await;
    let ends = last_ends(&w, &all);
    for (id, at) in deleted_at.lock().unwrap().iter() {
        let end = ends
            .get(id)
            .copied()
            .flatten()
            .expect("the cut-off holder stopped on its own");
        assert!(end <= *at, "{id}: its Lease was deleted before its holder stopped");
        assert!(
            *at - t0 >= Duration::from_secs(2),
            "{id}: deleted before the Lease could expire"
        );
    }
    assert!(w.log.running().is_empty());
    w.sim.faults.unblock("token=agent-cut-a");
    let (dups, _, _) = w.log.analyse();
    assert_eq!(dups, 0);
}

#[test]
fn stats_are_counted() {
    let s = baton::listeners::controller::Stats::default();
    s.lease_updates.fetch_add(2, Ordering::Relaxed);
    assert_eq!(s.writes(), 2);
}
