//! The demo scenario, driven by a user (the API server's admin, with the real `baton rollout`
//! CLI for undo and pin) against controllers and agents that run with the chart's RBAC: a
//! rollout in batches, listeners handed over by agents, a SIGTERM handover between the two
//! controllers mid-rollout, a broken version rolled back on its own, undo, a pin.
use std::time::Duration;

use baton::api::listenerset::ListenerSet;
use baton::api::rollout::Rollout;
use baton::demo::states;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

use super::harness::{Cluster, APP_SA, SECRET};
use crate::support::{healthy_on, wait_for, LONG};

pub const NAME: &str = "user-service";
pub const SET: &str = "sxt";
const REPLICAS: usize = 3;
const LISTENERS: i32 = 6;

/// How the ListenerSet gets its listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listeners {
    /// One listener per key of the Secret (the controller and the agents read it).
    FromSecret,
    /// Listed inline (no Secret is read).
    Inline,
}

fn rollout(ns: &str, version: &str, image: &str) -> Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": NAME, "namespace": ns},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": APP_SA}},
            "version": version,
            "template": {
                "metadata": {"labels": {"app": APP_SA}},
                "spec": {"serviceAccountName": APP_SA, "terminationGracePeriodSeconds": 20,
                         "containers": [{"name": "app", "image": image}]}
            },
            "strategy": {"batches": [1, "100%"], "pause": {"duration": "1s"}, "maxSurge": 1, "maxUnavailable": 0},
            "minReadySeconds": 0,
            "progressDeadlineSeconds": 15,
            "autoRollback": true,
            "revisionHistoryLimit": 10
        }
    })
}

fn listener_set(ns: &str, source: Listeners) -> Value {
    let spec = match source {
        Listeners::FromSecret => {
            json!({"selector": {"matchLabels": {"app": APP_SA}}, "listenersFrom": {"secretRef": {"name": SECRET}}, "leaseDurationSeconds": 10})
        }
        Listeners::Inline => {
            let listeners: Vec<Value> = (1..=LISTENERS).map(|i| json!({"id": format!("listener{i}")})).collect();
            json!({"selector": {"matchLabels": {"app": APP_SA}}, "listeners": listeners, "leaseDurationSeconds": 10})
        }
    };
    json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": SET, "namespace": ns}, "spec": spec})
}

fn rollouts(c: &Cluster) -> Api<Rollout> {
    Api::namespaced(c.admin.clone(), &c.apps)
}

async fn apply(c: &Cluster, manifest: Value) {
    rollouts(c)
        .patch(NAME, &PatchParams::apply("user").force(), &Patch::Apply(&manifest))
        .await
        .expect("applying the rollout");
}

async fn wait_rollout(c: &Cluster, what: &str, ok: impl Fn(&Rollout) -> bool) -> Rollout {
    let api = rollouts(c);
    wait_for(what, Duration::from_secs(120), || async {
        api.get(NAME).await.ok().filter(|r| ok(r))
    })
    .await
}

/// Every listener runs on a live pod, as the ListenerSet's status counts them.
pub async fn wait_listeners_running(c: &Cluster) {
    let sets: Api<ListenerSet> = Api::namespaced(c.admin.clone(), &c.apps);
    wait_for("every listener running", Duration::from_secs(120), || async {
        let st = sets.get(SET).await.ok()?.status?;
        (st.listeners == LISTENERS && st.running == LISTENERS && st.pending == 0 && st.orphaned == 0).then_some(())
    })
    .await;
}

/// `baton rollout ARGS` with `kubeconfig` in the application namespace (a user's command).
pub async fn baton(c: &Cluster, kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", &c.apps, "rollout"])
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(LONG, out)
        .await
        .unwrap_or_else(|_| panic!("baton rollout {args:?} did not finish"))
        .expect("running baton")
}

/// The whole scenario. Two controllers must be running (`c.controllers`).
pub async fn run(c: &mut Cluster, source: Listeners) {
    c.attach_agents(SET);
    // 1. v1 to every instance, and the listeners on them.
    apply(c, rollout(&c.apps, "v1", "user-service:v1")).await;
    wait_rollout(c, "v1 healthy", |r| healthy_on(r, "v1", REPLICAS)).await;
    let sets: Api<ListenerSet> = Api::namespaced(c.admin.clone(), &c.apps);
    sets.patch(
        SET,
        &PatchParams::apply("user").force(),
        &Patch::Apply(&listener_set(&c.apps, source)),
    )
    .await
    .expect("applying the ListenerSet");
    wait_listeners_running(c).await;

    // 2. v2 in batches; the leader gets SIGTERM once the first batch is out and the standby
    // finishes the rollout.
    let leader = c.leader().await;
    apply(c, rollout(&c.apps, "v2", "user-service:v2")).await;
    wait_rollout(c, "the first v2 batch", |r| {
        r.status.as_ref().is_some_and(|s| s.updated_replicas >= 1)
    })
    .await;
    let exit = c.terminate_controller(&leader).await;
    assert!(exit.success(), "the leader exits 0 on SIGTERM: {exit:?}");
    let next = c.leader().await;
    let next = if next == leader {
        wait_for("the standby to lead", LONG, || async {
            let l = c.leader().await;
            (l != leader).then_some(l)
        })
        .await
    } else {
        next
    };
    assert_ne!(next, leader);
    wait_rollout(c, "v2 healthy", |r| healthy_on(r, "v2", REPLICAS)).await;
    wait_listeners_running(c).await;

    // 3. A broken v3 fails its first batch and is rolled back on its own.
    apply(c, rollout(&c.apps, "v3", "user-service:v3-never-ready")).await;
    wait_rollout(c, "v3 rolled back", |r| states::rolled_back_to(r, "v2")).await;

    // 4. undo (the CLI copies the last healthy revision back into spec), then a pin.
    let admin_kc = c.admin_kubeconfig().to_path_buf();
    let out = baton(c, &admin_kc, &["undo", NAME]).await;
    assert!(out.status.success(), "undo: {}", String::from_utf8_lossy(&out.stderr));
    wait_rollout(c, "v2 healthy after undo", |r| healthy_on(r, "v2", REPLICAS)).await;
    let out = baton(
        c,
        &admin_kc,
        &["pin", NAME, "--instances", "user-service-2", "--version", "v1"],
    )
    .await;
    assert!(out.status.success(), "pin: {}", String::from_utf8_lossy(&out.stderr));
    wait_rollout(c, "user-service-2 pinned to v1", |r| {
        states::pinned(r, "user-service-2", "v1", "v2", REPLICAS - 1)
    })
    .await;
    wait_listeners_running(c).await;
}
