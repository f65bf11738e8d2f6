//! Handovers: an instance stopped with SIGTERM hands its listeners over (and moves nothing when
//! it returns), and a Rollout moves 30 listeners without duplicates.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::listener_world::*;

/// Two instances, a listener added, the first instance stopped
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
    // Let the controller see the new Ready pod: its agent registers on the pod's liveness Lease
    // (which the controller creates for it); then the set is changed, and reconciled after that.
    let leases = w.leases();
    wait_for("the returning pod's agent registered", Duration::from_secs(10), || {
        let leases = leases.clone();
        let first = first.clone();
        async move {
            let list = leases.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|l| {
                    l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(first.as_str())
                        && baton::api::listenerset::liveness::is_liveness(l)
                })
                .then_some(())
        }
    })
    .await;
    let seen = stats.reconciles.load(Ordering::Relaxed);
    let nudge = json!({"metadata": {"annotations": {"test/nudge": "1"}}});
    w.sets()
        .patch("sxt", &PatchParams::default(), &Patch::Merge(&nudge))
        .await
        .unwrap();
    wait_for("a reconcile after the pod registered", Duration::from_secs(10), || {
        let n = stats.reconciles.load(Ordering::Relaxed);
        async move { (n > seen).then_some(()) }
    })
    .await;
    assert_eq!(w.holders("sxt").await, before, "a returning instance moved nothing");
    assert_eq!(w.log.starts(), starts);
    w.log.assert_no_duplicates();
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

/// Fencing tokens rise at every handover, by 1 unless an assignment lost a race, and the
/// controller does not race its own writes. 3 instances with 30 listeners are replaced one at a
/// time with SIGTERM, 4 times: every listener starts at token 0 and each move raises its token.
/// (The controller once re-decided from a Lease cache that had not seen its own last write yet:
/// the stale write got 409, and since its token was already reserved in the status, the next
/// assignment skipped it; tokens stepped by 2 to 5 at 26 of 40 handovers.) A token is reserved
/// in the status before its Lease is written; an assignment that loses a race (409) used to burn
/// it (0-5 of the 40 handovers stepped by 2 on a loaded machine); now the next assignment takes
/// it again (`Memory::refused`). Still asserted loosely: never more skipped tokens than
/// assignment conflicts, and at least 3 in 4 handovers step by 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handovers_step_the_fencing_token_by_one() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let stats = std::sync::Arc::new(baton::listeners::controller::Stats::default());
    let (_stop, _ctl) = w.controller_counted("controller-a", stats.clone()).await;
    let mut live: Vec<String> = (0..3).map(|i| format!("tok-{i}")).collect();
    for p in &live {
        w.create_pod(p, "svc").await;
    }
    for p in &live {
        w.wait_ready(p).await;
    }
    w.create_set("sxt", "svc", listeners(30), 15).await;
    let all = ids(30);
    w.wait_running("30 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    for round in 0..4 {
        let old = live.remove(0);
        let new = format!("tok-{}", round + 3);
        w.create_pod(&new, "svc").await;
        w.wait_ready(&new).await;
        live.push(new);
        w.delete_pod(&old, None).await;
        let gone = old.clone();
        w.wait_running(
            &format!("round {round}: all off {old}"),
            &all,
            Duration::from_secs(30),
            |p| p != gone,
        )
        .await;
    }
    let mut by: std::collections::BTreeMap<String, Vec<Interval>> = Default::default();
    for i in w.log.snapshot() {
        by.entry(i.listener.clone()).or_default().push(i);
    }
    let mut steps: std::collections::BTreeMap<i32, usize> = Default::default();
    let mut first: std::collections::BTreeMap<i32, usize> = Default::default();
    for is in by.values_mut() {
        is.sort_by_key(|i| i.start);
        *first.entry(is[0].token).or_default() += 1;
        for pair in is.windows(2).filter(|p| p[0].pod != p[1].pod) {
            *steps.entry(pair[1].token - pair[0].token).or_default() += 1;
        }
    }
    let conflicts = stats.conflicts.load(Ordering::Relaxed);
    let assign_conflicts = stats.assign_conflicts.load(Ordering::Relaxed);
    println!(
        "first tokens {first:?}; token steps at handovers {steps:?}; controller conflicts {conflicts} \
         ({assign_conflicts} on assignments)"
    );
    assert!(steps.values().sum::<usize>() >= 30, "listeners moved: {steps:?}");
    assert_eq!(
        first.keys().copied().collect::<Vec<_>>(),
        vec![0],
        "first tokens {first:?}"
    );
    let handovers: usize = steps.values().sum();
    assert!(steps.keys().all(|s| *s >= 1), "a token that did not rise: {steps:?}");
    let burned: usize = steps.iter().map(|(step, n)| (*step as usize - 1) * n).sum();
    assert!(
        burned as u64 <= assign_conflicts,
        "{burned} tokens skipped at handovers but only {assign_conflicts} assignments lost a race: {steps:?}"
    );
    assert!(
        steps.get(&1).copied().unwrap_or(0) * 4 >= handovers * 3,
        "fewer than 3 in 4 handovers stepped by 1: {steps:?}"
    );
    assert_eq!(w.log.analyse().0, 0, "duplicates");
}
