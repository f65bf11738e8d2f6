//! Leases that are not baton's, written with the chart's own grants: the controller's
//! ServiceAccount against the cluster's leader elections (the label-in-the-same-write bypass, a
//! delete, a create in kube-system), and an application pod's ServiceAccount against another
//! component's leader Lease in its namespace. RBAC allows every one of these writes (it cannot
//! select Leases by label); the chart's admission policies refuse them.
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::harness::{Cluster, APPS, APP_SA, RELEASE_NS};

fn lease(ns: &str, name: &str, labels: serde_json::Value, holder: &str) -> Lease {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}}))
    .expect("a Lease")
}

/// (code, message) of a write's answer.
fn answer<T>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Ok(_) => (200, String::new()),
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Err(e) => panic!("{e}"),
    }
}

fn holder(l: &Lease) -> String {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

/// Another component's leader Lease in the application namespace (unlabelled), made by the admin.
async fn payments_leader(c: &Cluster) {
    let admin_apps: Api<Lease> = Api::namespaced(c.admin.clone(), APPS);
    admin_apps
        .create(
            &PostParams::default(),
            &lease(APPS, "payments-leader", json!({}), "payments-0"),
        )
        .await
        .expect("another component's Lease");
}

async fn controller_client(c: &Cluster) -> kube::Client {
    c.sim
        .client_for_service_account(RELEASE_NS, "baton", None)
        .await
        .expect("the controller's client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_cannot_take_delete_or_create_the_clusters_own_leases() {
    if !crate::harness::helm_available().await {
        return;
    }
    let c = Cluster::install(json!({"replicaCount": 1}), false).await;
    let admin_system: Api<Lease> = Api::namespaced(c.admin.clone(), "kube-system");
    admin_system
        .create(
            &PostParams::default(),
            &lease("kube-system", "kube-scheduler", json!({}), "scheduler-1"),
        )
        .await
        .expect("the scheduler's Lease");
    let ctl = controller_client(&c).await;
    let system: Api<Lease> = Api::namespaced(ctl.clone(), "kube-system");
    let refused = "is forbidden: ValidatingAdmissionPolicy 'baton-controller-leases' with binding \
                   'baton-controller-leases' denied request:";

    // The label and a new holder in one merge patch.
    let take = json!({"metadata": {"labels": {"baton.dev/listenerset": "x"}}, "spec": {"holderIdentity": "baton"}});
    let (code, msg) = answer(
        system
            .patch("kube-scheduler", &PatchParams::default(), &Patch::Merge(&take))
            .await,
    );
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains(refused), "{msg}");
    assert!(msg.ends_with("not kube-system/kube-scheduler"), "{msg}");
    let (code, msg) = answer(system.delete("kube-scheduler", &DeleteParams::default()).await);
    assert_eq!(code, 403, "{msg}");
    assert_eq!(
        holder(&admin_system.get("kube-scheduler").await.expect("still there")),
        "scheduler-1"
    );
    // A labelled Lease under a leader election's name, created before its owner starts.
    let squat = lease(
        "kube-system",
        "kube-controller-manager",
        json!({"baton.dev/listenerset": "x"}),
        "baton",
    );
    let (code, msg) = answer(system.create(&PostParams::default(), &squat).await);
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.ends_with("the baton controller writes no Lease in kube-system"),
        "{msg}"
    );

    // The same in an application namespace: an unlabelled Lease is not baton's either.
    payments_leader(&c).await;
    let apps: Api<Lease> = Api::namespaced(ctl, APPS);
    let (code, msg) = answer(
        apps.patch("payments-leader", &PatchParams::default(), &Patch::Merge(&take))
            .await,
    );
    assert_eq!(code, 403, "{msg}");
    assert!(msg.ends_with("not apps/payments-leader"), "{msg}");
    // What baton does there is still allowed: create a labelled Lease, renew and delete it.
    let own = lease(APPS, "sxt.l1", json!({"baton.dev/listenerset": "sxt"}), "pod-a");
    assert_eq!(answer(apps.create(&PostParams::default(), &own).await).0, 200);
    let renew = json!({"spec": {"holderIdentity": "pod-b"}});
    assert_eq!(
        answer(
            apps.patch("sxt.l1", &PatchParams::default(), &Patch::Merge(&renew))
                .await
        )
        .0,
        200
    );
    assert_eq!(answer(apps.delete("sxt.l1", &DeleteParams::default()).await).0, 200);
}

/// An application pod's ServiceAccount (the agent Role's) patches another component's leader
/// Lease in its namespace: refused with `leaseGuard.confineAgents` (the default), allowed
/// without it — RBAC alone lets it.
async fn foreign_lease_by_an_agent(confine: bool) -> (u16, String) {
    let values = json!({"replicaCount": 1, "leaseGuard": {"confineAgents": confine},
        "agentRole": {"create": true, "namespace": APPS, "serviceAccounts": [APP_SA]}});
    let c = Cluster::install(values, false).await;
    payments_leader(&c).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.admin.clone(), APPS);
    let p = json!({"metadata": {"name": "app-0"},
        "spec": {"serviceAccountName": APP_SA, "containers": [{"name": "c", "image": "app:v1"}]}});
    pods.create(&PostParams::default(), &serde_json::from_value(p).expect("a pod"))
        .await
        .expect("the app pod");
    let app = c
        .sim
        .client_for_service_account(APPS, APP_SA, Some("app-0"))
        .await
        .expect("the app pod's client");
    let leases: Api<Lease> = Api::namespaced(app, APPS);
    let take = json!({"spec": {"holderIdentity": "app-0"}});
    answer(
        leases
            .patch("payments-leader", &PatchParams::default(), &Patch::Merge(&take))
            .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_service_account_writes_no_lease_but_batons() {
    if !crate::harness::helm_available().await {
        return;
    }
    let (code, msg) = foreign_lease_by_an_agent(true).await;
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.ends_with(&format!(
            "ServiceAccount system:serviceaccount:{APPS}:{APP_SA} runs baton agents and may write only baton \
             Leases, not {APPS}/payments-leader"
        )),
        "{msg}"
    );
    let (code, msg) = foreign_lease_by_an_agent(false).await;
    assert_eq!(code, 200, "RBAC alone lets the agent Role patch any Lease: {msg}");
}
