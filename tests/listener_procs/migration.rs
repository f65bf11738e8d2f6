//! docs/rollouts.md "Migrating from a Deployment", step by step with real kubectl, on a
//! Deployment whose pods run listeners (real `baton agent` sidecars, apps that take 500 ms to
//! stop): a Rollout with `workloadRef` comes up beside the Deployment, which is scaled down as
//! its instances become available; then the template moves into the Rollout and the Deployment
//! is deleted. Throughout, the Ready pods serving the app never fall below the Deployment's 3,
//! every listener runs in exactly one app at every moment, and in the end every listener runs
//! on the Rollout's pods, none of which was replaced by the last step.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use serde_json::json;

use crate::harness::app::{AbortOnDrop, AppConfig};
use crate::harness::workloads::{expect_ok, manifest, on_live_pods, Case};
use crate::harness::{listeners, AgentFlags, AppKind, Cluster, Ns, APP, APP_LABEL};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(180);
const LISTENERS: usize = 30;

/// Ready, not terminating pods of the app, by name → uid; Rollout pods only with `rollout`.
async fn ready_pods(ns: &Ns, rollout: bool) -> BTreeMap<String, String> {
    let selector = if rollout {
        format!("{APP_LABEL}={APP},baton.dev/rollout=web")
    } else {
        format!("{APP_LABEL}={APP}")
    };
    let list = ns.pods_api().list(&ListParams::default().labels(&selector)).await;
    list.map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && baton::api::pod::is_ready(p))
        .filter_map(|p| Some((p.metadata.name?, p.metadata.uid?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_guide_keeps_every_pod_serving_and_every_listener_once() {
    let app = AppConfig {
        stop_delay: Duration::from_millis(500),
        ..AppConfig::default()
    };
    let ns = Arc::new(ok(
        Ns::new(Cluster::shared(), "migrate", app, AgentFlags::default()).await
    ));
    let kubectl = ns.cluster.kubectl();
    let n = &ns.name;
    ok(ns.start_controller().await);
    let _node = AbortOnDrop(ns.run_declared_sidecars("baton-agent", AppKind::Model));
    let set = "accounts";
    let deployment = kubectl.file("migrate-deployment.json", &manifest(Case::SurgeRestart, set));
    ok(expect_ok(&kubectl, &["apply", "-n", n, "-f", &deployment]).await);
    ok(expect_ok(
        &kubectl,
        &["rollout", "status", "-n", n, "deployment/web", "--timeout=150s"],
    )
    .await);
    let (spec, keys) = listeners(set, LISTENERS);
    ok(ns.create_set(set, spec, 5).await);
    ok(ns
        .settled(set, LISTENERS, "every listener running on the Deployment's pods", LONG)
        .await);

    // Sample the serving pods from here to the end.
    let fewest = Arc::new(AtomicUsize::new(usize::MAX));
    let sampler = {
        let (ns, fewest) = (ns.clone(), fewest.clone());
        tokio::spawn(async move {
            loop {
                fewest.fetch_min(ready_pods(&ns, false).await.len(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let sampler = AbortOnDrop(sampler);

    // Step 1: the guide's Rollout, with the harness's labels.
    let rollout = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {APP_LABEL: APP}}, "version": "v1",
                 "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "scaleDown": "progressively"},
                 "strategy": {"batches": [1, "50%", "100%"]}}});
    let file = kubectl.file("migrate-rollout.json", &rollout);
    ok(expect_ok(&kubectl, &["apply", "-n", n, "-f", &file]).await);
    // Step 2: wait for both ends.
    ok(expect_ok(
        &kubectl,
        &[
            "wait",
            "-n",
            n,
            "rollout/web",
            "--for=condition=Ready",
            "--timeout=150s",
        ],
    )
    .await);
    let replicas = "--for=jsonpath={.spec.replicas}=0";
    ok(expect_ok(
        &kubectl,
        &["wait", "-n", n, "deployment/web", replicas, "--timeout=150s"],
    )
    .await);
    let recorded = ok(expect_ok(
        &kubectl,
        &["get", "-n", n, "rollout", "web", "-o", "jsonpath={.status.workloadRef}"],
    )
    .await);
    assert!(recorded.contains("\"originalReplicas\":3"), "{recorded}");
    ok(on_live_pods(&ns, &keys, 3).await);
    let before = ready_pods(&ns, true).await;
    assert_eq!(before.len(), 3, "{before:?}");

    // Step 3: the template into the Rollout, the Deployment deleted.
    let patch = format!(
        "kubectl patch -n {n} rollout web --type merge -p \"{{\\\"spec\\\":{{\\\"workloadRef\\\":null,\\\"template\\\":$(kubectl get -n {n} deployment web -o jsonpath='{{.spec.template}}')}}}}\""
    );
    let r = kubectl.sh(&patch).await;
    assert_eq!(r.code, 0, "{patch}: {r}");
    ok(expect_ok(&kubectl, &["delete", "-n", n, "deployment", "web"]).await);
    ok(expect_ok(
        &kubectl,
        &[
            "wait",
            "-n",
            n,
            "rollout/web",
            "--for=condition=Ready",
            "--timeout=150s",
        ],
    )
    .await);
    ok(on_live_pods(&ns, &keys, 3).await);
    drop(sampler);
    let after = ready_pods(&ns, true).await;
    assert_eq!(after, before, "moving the template into the Rollout replaced pods");
    let fewest = fewest.load(Ordering::Relaxed);
    println!(
        "fewest Ready pods serving: {fewest}; listener starts: {}",
        ns.log.starts()
    );
    assert!(fewest >= 3, "only {fewest} Ready pods served at one moment");
    assert_clean(&ns, true);
}
