//! Two releases of the chart in one cluster, each confined to its own namespace (two teams
//! installing baton side by side with `rbac.scope=namespace`): each release's Lease guard
//! covers the namespaces its controller works in, so neither refuses the other's controller.
use std::collections::BTreeSet;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use super::harness::{helm_available, install_release, Cluster, APPS};
use crate::support::wait::{poll_until, POLL};
use crate::support::LONG;

const SET: &str = "team-b-set";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_namespace_scoped_releases_do_not_refuse_each_others_controller() {
    if !helm_available().await {
        return;
    }
    // Team A: the test's usual release, watching the application namespace.
    let a = json!({"replicaCount": 1, "rbac": {"scope": "namespace"}, "controller": {"watchNamespace": APPS}});
    let c = Cluster::install(a, false).await;
    // Team B: a release in a namespace of its own, which it watches.
    let team_b = c.w.namespace("team-b").await;
    let b = install_release(
        &c.w,
        "baton-team-b",
        &team_b,
        &json!({"replicaCount": 1, "rbac": {"scope": "namespace"}}),
    )
    .await;
    let b_controller = c.start_controller_of(&b, "baton-team-b-0").await;

    // Two ready pods in team B's namespace and a set of three listeners over them: B's
    // controller creates a Lease per listener, holder one of the pods.
    let pods: Api<Pod> = Api::namespaced(c.admin.clone(), &team_b);
    for i in 0..2 {
        let p = json!({"metadata": {"name": format!("app-{i}"), "labels": {"app": "team-b"}},
            "spec": {"containers": [{"name": "app", "image": "app:v1"}]}});
        pods.create(&PostParams::default(), &serde_json::from_value(p).expect("a pod"))
            .await
            .expect("an application pod of team B");
    }
    let sets: Api<baton::api::listenerset::ListenerSet> = Api::namespaced(c.admin.clone(), &team_b);
    let set = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": SET},
        "spec": {"selector": {"matchLabels": {"app": "team-b"}}, "listeners": [{"id": "l1"}, {"id": "l2"}, {"id": "l3"}]}});
    sets.create(&PostParams::default(), &serde_json::from_value(set).expect("a set"))
        .await
        .expect("team B's ListenerSet");
    let leases: Api<Lease> = Api::namespaced(c.admin.clone(), &team_b);
    let selector = ListParams::default().labels(&format!("baton.dev/listenerset={SET}"));
    let made = poll_until("team B's listener Leases", LONG, POLL, || async {
        let n = leases.list(&selector).await.ok()?.items.len();
        (n == 3).then_some(n)
    })
    .await;
    let refused: BTreeSet<String> = c
        .refused(&b.controller_user(), &[403])
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(refused, BTreeSet::new(), "what team B's controller was refused");
    assert_eq!(
        made.ok(),
        Some(3),
        "team B's controller made its Leases\n{}",
        b_controller.child.log_text()
    );
    // Release A's guard covers its namespaces only.
    let guard = format!("{}-lease-guard", c.fullname());
    assert_eq!(
        c.object("ValidatingAdmissionPolicyBinding", &guard)["spec"]["matchResources"],
        json!({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
            "values": [c.apps, c.release_ns()]}]}})
    );
}
