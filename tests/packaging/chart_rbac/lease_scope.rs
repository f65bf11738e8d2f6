//! Leases that are not baton's, written with the chart's own grants: the controller's
//! ServiceAccount against the cluster's leader elections (the label-in-the-same-write bypass, a
//! delete, a create in kube-system), and an application pod's ServiceAccount against another
//! component's leader Lease in its namespace. RBAC allows every one of these writes (it cannot
//! select Leases by label); the chart's admission policies refuse them. On the real control
//! plane kube-system's Leases are the live leader elections of its scheduler and controller
//! manager: the writes there are server dry runs (authorized and admitted like any write,
//! stored never).
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::harness::{Cluster, APP_SA};

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
    let admin_apps: Api<Lease> = Api::namespaced(c.admin.clone(), &c.apps);
    admin_apps
        .create(
            &PostParams::default(),
            &lease(&c.apps, "payments-leader", json!({}), "payments-0"),
        )
        .await
        .expect("another component's Lease");
}

async fn controller_client(c: &Cluster) -> kube::Client {
    c.service_account(c.release_ns(), c.fullname(), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_cannot_take_delete_or_create_the_clusters_own_leases() {
    if !super::harness::helm_available().await {
        return;
    }
    let c = Cluster::install(json!({"replicaCount": 1}), false).await;
    let real = c.w.is_real();
    let admin_system: Api<Lease> = Api::namespaced(c.admin.clone(), "kube-system");
    if !real {
        admin_system
            .create(
                &PostParams::default(),
                &lease("kube-system", "kube-scheduler", json!({}), "scheduler-1"),
            )
            .await
            .expect("the scheduler's Lease");
    }
    let scheduler = holder(&admin_system.get("kube-scheduler").await.expect("the scheduler's Lease"));
    let ctl = controller_client(&c).await;
    let system: Api<Lease> = Api::namespaced(ctl.clone(), "kube-system");
    let policy = format!("{}-controller-leases", c.fullname());
    let refused = format!("is forbidden: ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request:");
    let (patch, delete, post) = (
        PatchParams {
            dry_run: real,
            ..PatchParams::default()
        },
        DeleteParams {
            dry_run: real,
            ..DeleteParams::default()
        },
        PostParams {
            dry_run: real,
            ..PostParams::default()
        },
    );

    // The label and a new holder in one merge patch.
    let take = json!({"metadata": {"labels": {"baton.dev/listenerset": "x"}}, "spec": {"holderIdentity": "baton"}});
    // kube-apiserver enforces a new policy once its informers have it (and the release was just
    // installed): the first refusal is waited for. On the real control plane every write here is
    // a dry run; on baton-sim the policy is in force at once, and a write let through would show
    // in the holder checked below.
    let (code, msg) = crate::support::wait_for(
        "the controller-leases policy in force",
        crate::support::LONG,
        || async {
            let (code, msg) = answer(system.patch("kube-scheduler", &patch, &Patch::Merge(&take)).await);
            (code != 200).then_some((code, msg))
        },
    )
    .await;
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains(&refused), "{msg}");
    assert!(msg.ends_with("not kube-system/kube-scheduler"), "{msg}");
    let (code, msg) = answer(system.delete("kube-scheduler", &delete).await);
    assert_eq!(code, 403, "{msg}");
    assert_eq!(
        holder(&admin_system.get("kube-scheduler").await.expect("still there")),
        scheduler
    );
    // A labelled Lease under a leader election's name, created before its owner starts.
    let squat = lease(
        "kube-system",
        "kube-controller-manager",
        json!({"baton.dev/listenerset": "x"}),
        "baton",
    );
    let (code, msg) = answer(system.create(&post, &squat).await);
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.ends_with("the baton controller writes no Lease in kube-system"),
        "{msg}"
    );

    // The same in an application namespace: an unlabelled Lease is not baton's either.
    payments_leader(&c).await;
    let apps: Api<Lease> = Api::namespaced(ctl, &c.apps);
    let (code, msg) = answer(
        apps.patch("payments-leader", &PatchParams::default(), &Patch::Merge(&take))
            .await,
    );
    assert_eq!(code, 403, "{msg}");
    assert!(msg.ends_with(&format!("not {}/payments-leader", c.apps)), "{msg}");
    // What baton does there is still allowed: create a labelled Lease, renew and delete it.
    let own = lease(&c.apps, "sxt.l1", json!({"baton.dev/listenerset": "sxt"}), "pod-a");
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
async fn foreign_lease_by_an_agent(confine: bool) -> (u16, String, String) {
    let values = json!({"replicaCount": 1, "leaseGuard": {"confineAgents": confine},
        "agentRole": {"create": true, "namespace": super::harness::APPS, "serviceAccounts": [APP_SA]}});
    let c = Cluster::install(values, false).await;
    payments_leader(&c).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.admin.clone(), &c.apps);
    let p = json!({"metadata": {"name": "app-0"},
        "spec": {"serviceAccountName": APP_SA, "containers": [{"name": "c", "image": "app:v1"}]}});
    pods.create(&PostParams::default(), &serde_json::from_value(p).expect("a pod"))
        .await
        .expect("the app pod");
    let app = c.service_account(&c.apps, APP_SA, Some("app-0")).await;
    let leases: Api<Lease> = Api::namespaced(app, &c.apps);
    let take = json!({"spec": {"holderIdentity": "app-0"}});
    // On the real control plane a dry run (admission policies judge it too): kube-apiserver
    // enforces a new policy once its informers have it, so a refusal is waited for.
    let pp = PatchParams {
        dry_run: c.w.is_real(),
        ..PatchParams::default()
    };
    let (code, msg) = crate::support::wait_for("the agent-leases policy in force", crate::support::LONG, || async {
        let (code, msg) = answer(leases.patch("payments-leader", &pp, &Patch::Merge(&take)).await);
        (!confine || code != 200).then_some((code, msg))
    })
    .await;
    (code, msg, c.apps.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_service_account_writes_no_lease_but_batons() {
    if !super::harness::helm_available().await {
        return;
    }
    let (code, msg, apps) = foreign_lease_by_an_agent(true).await;
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.ends_with(&format!(
            "ServiceAccount system:serviceaccount:{apps}:{APP_SA} runs baton agents and may write only baton \
             Leases, not {apps}/payments-leader"
        )),
        "{msg}"
    );
    let (code, msg, _) = foreign_lease_by_an_agent(false).await;
    assert_eq!(code, 200, "RBAC alone lets the agent Role patch any Lease: {msg}");
}
