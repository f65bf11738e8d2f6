//! A controller confined to a list of namespaces (`rbac.scope=namespace`,
//! `controller.watchNamespaces`): a Role in each and nothing cluster-wide; it reconciles the
//! Rollouts of both namespaces with no refusal, and leaves a Rollout elsewhere alone.
use std::time::Duration;

use baton::api::rollout::Rollout;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

use super::harness::{helm_available, Cluster, APPS, APPS_B};
use crate::support::{healthy_on, wait_for};

const REPLICAS: usize = 2;

fn rollout(ns: &str) -> Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "version": "v1",
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:v1"}]}
            },
            "strategy": {"batches": ["100%"]}
        }
    })
}

async fn apply(c: &Cluster, ns: &str) -> Api<Rollout> {
    let api: Api<Rollout> = Api::namespaced(c.admin.clone(), ns);
    api.patch("web", &PatchParams::apply("user").force(), &Patch::Apply(&rollout(ns)))
        .await
        .unwrap_or_else(|e| panic!("applying the Rollout in {ns}: {e}"));
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_controller_confined_to_two_namespaces_reconciles_both_and_nothing_else() {
    if !helm_available().await {
        return;
    }
    let v = super::values(
        json!({"replicaCount": 1, "rbac": {"scope": "namespace"}, "controller": {"watchNamespaces": [APPS, APPS_B]}}),
        false,
    );
    let mut c = Cluster::install(v, false).await;
    let b = c.apps_b.clone().expect("the second application namespace");
    // A Role and RoleBinding in each watched namespace; nothing bound cluster-wide.
    let controller = format!("{}-controller", c.fullname());
    for kind in ["Role", "RoleBinding"] {
        let mut placed: Vec<&str> = c
            .release
            .manifest
            .iter()
            .filter(|o| o["kind"] == kind && o["metadata"]["name"] == controller.as_str())
            .filter_map(|o| o["metadata"]["namespace"].as_str())
            .collect();
        placed.sort();
        let mut want = vec![c.apps.as_str(), b.as_str()];
        want.sort();
        assert_eq!(placed, want, "{kind}s of the controller");
    }
    assert!(!c.release.manifest.iter().any(|o| o["kind"] == "ClusterRoleBinding"));
    c.start_controller(0).await;
    let watched = [apply(&c, &c.apps).await, apply(&c, &b).await];
    // A namespace outside the list: the release's own.
    let outside = apply(&c, c.release_ns()).await;
    for (api, ns) in watched.iter().zip([c.apps.as_str(), b.as_str()]) {
        wait_for(
            &format!("the Rollout in {ns} Healthy"),
            Duration::from_secs(120),
            || async { api.get("web").await.ok().filter(|r| healthy_on(r, "v1", REPLICAS)) },
        )
        .await;
    }
    let left = outside.get("web").await.expect("the Rollout outside the list");
    assert!(
        left.status.is_none(),
        "a Rollout outside the watched namespaces was reconciled: {:?}",
        left.status
    );
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.admin.clone(), c.release_ns());
    let made = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("pods");
    assert!(made.items.is_empty(), "pods made outside the watched namespaces");
    let user = c.controller_user();
    assert_eq!(
        c.refused(&user, &[401, 403, 422]),
        Vec::<(u16, String)>::new(),
        "refusals of {user}"
    );
}
