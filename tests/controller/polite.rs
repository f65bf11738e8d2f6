//! `baton controller` (the real binary) is polite to the API server, and shards.
//!
//! 1. With `--kube-api-qps` below the simulator's API Priority and Fairness limit for its user,
//!    a rollout finishes and the simulator answered the controller no 429.
//! 2. With no client-side limit, above the simulator's limit, the controller is answered 429s
//!    and still finishes the rollout: it retries after the `Retry-After` the server sent.
//! 3. Two shard controllers (`--selector`, `--shard`, leader election on) against one simulator
//!    split the Rollouts by label: each leads on its own Lease, each Rollout's pods are created
//!    and its status written by exactly one shard, and both rollouts finish.
//! 4. The controller caches only its own pods: pods of other workloads are not held (the pod
//!    watch takes the Rollouts' label), until a ListenerSet in their namespace needs them (its
//!    namespace is watched while it exists).
use crate::support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::api::rollout::Rollout;
use baton_sim::auth::AuthorizationMode;
use baton_sim::server::FlowLimit;
use baton_sim::SimConfig;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::Value;

use support::controller::{self, temp_dir, ControllerProc, NO_ELECTION};
use support::{fast_kubelet, healthy_on, manifest_v, Env, LONG, NS};

/// A simulator whose users (but system:masters) get `limit` requests a second, authorizing
/// everything (the controller runs as a plain user).
async fn throttled_env(limit: FlowLimit) -> Env {
    Env::with_config(SimConfig {
        kubelet: fast_kubelet(),
        authorization: AuthorizationMode::AlwaysAllow,
        flow_limit: Some(limit),
        ..SimConfig::default()
    })
    .await
}

/// `baton controller` as plain user `id` without leader election, with `flags`, serving.
async fn start_as_user(env: &Env, dir: &std::path::Path, id: &str, flags: &[&str]) -> ControllerProc {
    let mut all = NO_ELECTION.to_vec();
    all.extend(flags);
    let mut c = controller::spawn_as_user(&env.sim, dir, id, &all);
    c.addr = c.proc.wait_addr(LONG).await;
    assert!(c.addr.is_some(), "the controller did not start");
    c
}

/// A v1 → v2 rollout of `replicas` instances of `name`, each Healthy within `deadline`.
async fn roll(env: &Env, name: &str, replicas: i32, deadline: Duration) {
    for v in ["v1", "v2"] {
        env.apply(&manifest_v(name, replicas, v)).await;
        env.wait_rollout(name, &format!("Healthy on {v}"), deadline, |r| {
            healthy_on(r, v, replicas as usize)
        })
        .await;
    }
}

/// `baton_kubernetes_api_requests_total` answered `code`, summed over verbs.
async fn requests_answered(c: &ControllerProc, code: &str) -> f64 {
    let text = c.scrape().await.expect("/metrics");
    text.lines()
        .filter(|l| l.starts_with("baton_kubernetes_api_requests_total{") && l.contains(&format!("code=\"{code}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_servers_limit_no_request_is_refused() {
    let env = throttled_env(FlowLimit { qps: 20.0, burst: 20 }).await;
    let dir = temp_dir("polite-below");
    let id = "baton-polite";
    let c = start_as_user(
        &env,
        dir.path(),
        id,
        &["--kube-api-qps", "10", "--kube-api-burst", "10"],
    )
    .await;
    roll(&env, "web", 4, LONG).await;
    let audit = &env.sim.core.auth.audit;
    assert_eq!(
        audit.count_code(id, 429),
        0,
        "the controller was throttled by the server"
    );
    assert!(
        audit.count_code(id, 201) > 0,
        "the controller created nothing: the test shows nothing"
    );
    assert_eq!(requests_answered(&c, "429").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_the_servers_limit_it_waits_retry_after_and_finishes() {
    let env = throttled_env(FlowLimit { qps: 5.0, burst: 5 }).await;
    let dir = temp_dir("polite-above");
    let id = "baton-rude";
    let c = start_as_user(&env, dir.path(), id, &["--kube-api-qps", "-1"]).await;
    roll(&env, "web", 4, Duration::from_secs(120)).await;
    let refused = env.sim.core.auth.audit.count_code(id, 429);
    assert!(
        refused > 0,
        "the server never refused the controller: the test shows nothing"
    );
    // Every refusal reached the controller's client (and was retried there, not dropped). The
    // controller keeps its watches going after the rollout, so the server may refuse one more
    // between two reads: compare the two once they are read at a quiet moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut answered, mut audited) = (0.0, 0);
    while tokio::time::Instant::now() < deadline {
        audited = env.sim.core.auth.audit.count_code(id, 429);
        answered = requests_answered(&c, "429").await;
        if answered == audited as f64 && env.sim.core.auth.audit.count_code(id, 429) == audited {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(answered, audited as f64, "refusals the client counted vs the server's");
    eprintln!("429s answered to an unlimited controller at a 5/s server limit: {audited}");
}

/// The Rollout manifest `name` in shard `shard` (label `baton.dev/shard`).
fn in_shard(mut m: Value, shard: &str) -> Value {
    m["metadata"]["labels"] = serde_json::json!({ "baton.dev/shard": shard });
    m
}

/// Which Rollout owns each pod ever created in the namespace (by uid), as a watch sees them.
fn record_pod_owners(client: kube::Client) -> Arc<Mutex<BTreeMap<String, String>>> {
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let out = seen.clone();
    let pods: Api<Pod> = Api::namespaced(client, NS);
    tokio::spawn(async move {
        let mut s = std::pin::pin!(watcher(pods, watcher::Config::default())
            .default_backoff()
            .applied_objects());
        while let Some(p) = s.next().await {
            let Ok(p) = p else { continue };
            let owner = p
                .metadata
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .find(|o| o.kind == "Rollout")
                .map(|o| o.name);
            if let (Some(uid), Some(owner)) = (p.metadata.uid, owner) {
                out.lock().expect("lock").insert(uid, owner);
            }
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_split_the_rollouts_by_label() {
    let env = Env::start().await;
    let owners = record_pod_owners(env.client.clone());
    let dir = temp_dir("shards");
    let shard = |name: &'static str, selector: &'static str| {
        let mut f = vec![
            "--leader-elect",
            "true",
            "--lease-namespace",
            NS,
            "--shard",
            name,
            "--selector",
            selector,
        ];
        f.extend(controller::ELECTION_TIMINGS);
        f
    };
    let (a, b) = ("shard-a", "shard-b");
    let ca = controller::start(&env.sim, dir.path(), a, &shard("a", "baton.dev/shard=a")).await;
    let cb = controller::start(&env.sim, dir.path(), b, &shard("b", "baton.dev/shard=b")).await;
    // Both lead, each on its own Lease.
    ca.wait_metric("baton_leader", 1.0).await;
    cb.wait_metric("baton_leader", 1.0).await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), NS);
    for (lease, holder) in [("baton-controller-a", a), ("baton-controller-b", b)] {
        let l = leases.get(lease).await.unwrap_or_else(|e| panic!("Lease {lease}: {e}"));
        assert_eq!(l.spec.and_then(|s| s.holder_identity).as_deref(), Some(holder));
    }
    // web-a (2 instances) in shard a, web-b (3) in shard b, rolled at the same time.
    let (ra, rb) = (("web-a", 2, "a"), ("web-b", 3, "b"));
    for v in ["v1", "v2"] {
        for (name, n, s) in [ra, rb] {
            env.apply(&in_shard(manifest_v(name, n, v), s)).await;
        }
        for (name, n, _) in [ra, rb] {
            env.wait_rollout(name, &format!("Healthy on {v}"), LONG, |r: &Rollout| {
                healthy_on(r, v, n as usize)
            })
            .await;
        }
    }
    // Each Rollout's status was written by its shard alone.
    let recent = env.sim.core.auth.audit.recent();
    for (name, _, _) in [ra, rb] {
        let writers: std::collections::BTreeSet<String> = recent
            .iter()
            .filter(|e| e.key.resource == "rollouts" && e.name == name && e.key.verb != "get")
            .filter(|e| [a, b].contains(&e.key.user.as_str()))
            .map(|e| e.key.user.clone())
            .collect();
        let shard = if name == "web-a" { a } else { b };
        assert_eq!(writers, [shard.to_string()].into(), "writers of {name}");
    }
    // Each shard created exactly as many pods as its Rollout ever had: none of the other's.
    let owners = owners.lock().expect("lock").clone();
    let ever = |rollout: &str| owners.values().filter(|o| *o == rollout).count() as u64;
    let created = |user: &str| {
        recent
            .iter()
            .filter(|e| e.key.user == user && e.key.resource == "pods" && e.key.verb == "create" && e.key.code == 201)
            .count() as u64
    };
    assert!(ever("web-a") >= 4 && ever("web-b") >= 6, "pods seen: {owners:?}");
    assert_eq!(created(a), ever("web-a"), "pods created by shard a vs pods of web-a");
    assert_eq!(created(b), ever("web-b"), "pods created by shard b vs pods of web-b");
    // Pods deleted by each shard are its Rollout's.
    for (user, prefix) in [(a, "web-a-"), (b, "web-b-")] {
        let stray: Vec<&str> = recent
            .iter()
            .filter(|e| e.key.user == user && e.key.resource == "pods" && e.key.verb == "delete")
            .map(|e| e.name.as_str())
            .filter(|n| !n.starts_with(prefix))
            .collect();
        assert!(stray.is_empty(), "{user} deleted pods of another shard: {stray:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_without_a_shard_or_a_bad_selector_is_refused() {
    let env = Env::start().await;
    let dir = temp_dir("shard-flags");
    let mut c = controller::spawn(&env.sim, dir.path(), "no-shard", &["--selector", "baton.dev/shard=a"]);
    let status = c.exited(LONG).await;
    assert!(!status.success());
    assert!(
        c.proc.log_text().contains("--selector needs --shard NAME"),
        "{}",
        c.proc.log_text()
    );
    let mut flags = NO_ELECTION.to_vec();
    flags.extend(["--selector", "baton.dev/shard in a"]);
    let mut c = controller::spawn(&env.sim, dir.path(), "bad-selector", &flags);
    let status = c.exited(LONG).await;
    assert!(!status.success());
    let log = c.proc.log_text();
    assert!(log.contains("--selector \"baton.dev/shard in a\": "), "{log}");
}

/// Leader election has a token bucket of its own: a leader whose controllers queue behind a low
/// `--kube-api-qps` for longer than the renew deadline still renews, and keeps leading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_qps_never_costs_the_leader_its_lease() {
    let env = Env::start().await;
    let dir = temp_dir("polite-lease");
    let mut flags = vec![
        "--leader-elect",
        "true",
        "--lease-name",
        "baton-controller",
        "--lease-namespace",
        NS,
    ];
    flags.extend(controller::ELECTION_TIMINGS);
    flags.extend(["--kube-api-qps", "2", "--kube-api-burst", "1"]);
    let mut c = controller::start(&env.sim, dir.path(), "baton-slow", &flags).await;
    c.wait_metric("baton_leader", 1.0).await;
    // Tens of writes at 2 a second: the controllers' requests wait far longer than 2 s.
    env.apply(&manifest_v("web", 6, "v1")).await;
    env.wait_rollout("web", "Healthy on v1", Duration::from_secs(180), |r| {
        assert!(!c.proc.log_closed(), "the controller exited:\n{}", c.log_text());
        healthy_on(r, "v1", 6)
    })
    .await;
    assert!(c.wait_exit(Duration::ZERO).await.is_none(), "the controller exited");
    assert_eq!(c.metric("baton_leader").await, Some(1.0));
    assert_eq!(c.metric("baton_leader_transitions_total").await, Some(1.0));
}

/// `n` pods of another workload (no baton label) in [`NS`].
async fn strangers(env: &Env, n: usize, labels: Value) {
    for i in 0..n {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("stranger-{i}"), "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "other:1"}]},
        }))
        .expect("pod");
        env.pods_api()
            .create(&kube::api::PostParams::default(), &pod)
            .await
            .expect("create pod");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_baton_pods_are_cached_until_a_listenerset_needs_its_namespace() {
    let env = Env::start().await;
    strangers(&env, 30, serde_json::json!({"app": "other"})).await;
    let dir = temp_dir("cached-pods");
    let c = controller::start(&env.sim, dir.path(), "cacher", &NO_ELECTION).await;
    env.apply(&manifest_v("web", 2, "v1")).await;
    env.wait_healthy("web", "v1", 2).await;
    // The Rollout's 2 pods, not the 30 others.
    c.wait_metric("baton_cached_pods", 2.0).await;
    // A ListenerSet in the namespace: its pods (all of the namespace's: a holder that no
    // longer matches the selector must still be seen) are watched while it exists.
    let sets: Api<baton::api::listenerset::ListenerSet> = Api::namespaced(env.client.clone(), NS);
    let set: baton::api::listenerset::ListenerSet = serde_json::from_value(serde_json::json!({
        "apiVersion": baton::api::API_VERSION, "kind": "ListenerSet",
        "metadata": {"name": "jobs"},
        "spec": {"selector": {"matchLabels": {"app": "other"}}, "listeners": [{"id": "l1"}], "leaseDurationSeconds": 5},
    }))
    .expect("ListenerSet");
    sets.create(&kube::api::PostParams::default(), &set)
        .await
        .expect("create ListenerSet");
    // 2 Rollout pods + the namespace's 32 pods.
    c.wait_metric("baton_cached_pods", 34.0).await;
    // It works from that cache: its listener is assigned to one of the selected pods.
    support::wait_for("listener l1 assigned to a stranger pod", LONG, || async {
        let leases: Api<Lease> = Api::namespaced(env.client.clone(), NS);
        let held = leases.list(&Default::default()).await.ok()?.items.into_iter().any(|l| {
            let holder = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
            holder.starts_with("stranger-")
        });
        held.then_some(())
    })
    .await;
    sets.delete("jobs", &Default::default())
        .await
        .expect("delete ListenerSet");
    // Gone (its finalizer done): the namespace's watch stops, the Rollout's pods stay.
    c.wait_metric("baton_cached_pods", 2.0).await;
}
