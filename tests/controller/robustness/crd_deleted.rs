//! (7) A CRD deleted under a running controller, with kubectl as a user deletes it: the API
//! server keeps it `Terminating` while it deletes every object of the kind; the controller says
//! so (an ERROR naming the CRD and what to do, `baton_crd_installed` 0), winds each ListenerSet
//! down so its Leases go with it, and says again when the CRD is gone.

use baton::api::listenerset::{LEASE_FINALIZER, LISTENERSET_LABEL};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};

use super::controller::{create_raw, listenerset, raw_listenersets, start, temp_dir, NO_ELECTION};
use super::controller::{LISTENERSETS_CRD, ROLLOUTS_CRD};
use crate::support::kubectl::Kubectl;
use crate::support::{manifest_v, wait_for, Env, LONG, NS};

/// The set's listener Leases that carry baton's finalizer.
async fn finalized_leases(client: &kube::Client, set: &str) -> Vec<String> {
    let lp = ListParams::default().labels(&format!("{LISTENERSET_LABEL}={set}"));
    let leases = Api::<Lease>::namespaced(client.clone(), NS)
        .list(&lp)
        .await
        .expect("listing Leases");
    leases
        .items
        .into_iter()
        .filter(|l| l.metadata.finalizers.iter().flatten().any(|f| f == LEASE_FINALIZER))
        .filter_map(|l| l.metadata.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_crd_is_reported_and_its_listenersets_leave_no_lease_behind() {
    let env = Env::start().await;
    let dir = temp_dir("crd-deleted");
    let c = start(&env.sim, dir.path(), "crd-watcher", &NO_ELECTION).await;
    c.wait_ready().await;
    // A pod for the set's listeners (no agent: its Leases expire after 2 s and the deleted set's
    // Leases go then), and the set.
    env.apply(&manifest_v("svc", 1, "v1")).await;
    env.wait_healthy("svc", "v1", 1).await;
    let mut set = listenerset("svc");
    set["spec"]["leaseDurationSeconds"] = serde_json::json!(2);
    create_raw(&raw_listenersets(&env.client), set)
        .await
        .expect("creating the ListenerSet");
    wait_for("both listener Leases, with baton's finalizer", LONG, || async {
        (finalized_leases(&env.client, "svc").await.len() == 2).then_some(())
    })
    .await;
    let installed = |crd: &str| format!("baton_crd_installed{{crd=\"{crd}\"}}");
    c.wait_metric(&installed(LISTENERSETS_CRD), 1.0).await;

    // kubectl waits until the CRD is gone: once every set has gone, which takes the controller.
    let k = Kubectl::new(&env.sim);
    let out = k.ok(&["delete", "crd", LISTENERSETS_CRD, "--timeout=90s"]).await;
    assert!(out.contains(&format!("\"{LISTENERSETS_CRD}\" deleted")), "{out}");
    let left = finalized_leases(&env.client, "svc").await;
    assert!(left.is_empty(), "Leases with {LEASE_FINALIZER} left behind: {left:?}");

    // The controller said so: while it was being deleted, and once it was gone.
    let said = |needle: &str| {
        let needle = needle.to_string();
        let c = &c;
        async move {
            c.log_lines(&needle)
                .into_iter()
                .find(|l| l["level"] == "ERROR" && l["crd"] == LISTENERSETS_CRD)
        }
    };
    let terminating = wait_for("the log says the CRD is being deleted", LONG, || {
        said(&format!("{LISTENERSETS_CRD} is being deleted"))
    })
    .await;
    let message = terminating["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("kubectl apply -f crds/") && message.contains("Leases"),
        "{message}"
    );
    wait_for("the log says the CRD is not installed", LONG, || {
        said(&format!("{LISTENERSETS_CRD} is not installed"))
    })
    .await;
    c.wait_metric(&installed(LISTENERSETS_CRD), 0.0).await;
    // The Rollout CRD is untouched.
    assert_eq!(c.metric(&installed(ROLLOUTS_CRD)).await, Some(1.0));
}

/// Installed again, the CRD is read again: the log says so and the gauge is back at 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_installed_again_is_read_again() {
    let env = Env::start().await;
    let dir = temp_dir("crd-again");
    let c = start(&env.sim, dir.path(), "crd-again", &NO_ELECTION).await;
    c.wait_ready().await;
    let installed = format!("baton_crd_installed{{crd=\"{ROLLOUTS_CRD}\"}}");
    c.wait_metric(&installed, 1.0).await;
    let k = Kubectl::new(&env.sim);
    k.ok(&["delete", "crd", ROLLOUTS_CRD, "--timeout=60s"]).await;
    c.wait_metric(&installed, 0.0).await;
    crate::support::install_crds(&env.client).await;
    c.wait_metric(&installed, 1.0).await;
    wait_for("the log says the CRD is installed again", LONG, || async {
        c.log_lines(&format!("{ROLLOUTS_CRD} is installed again"))
            .into_iter()
            .next()
    })
    .await;
    // And the Rollouts are reconciled again.
    env.apply(&manifest_v("back", 1, "v1")).await;
    env.wait_healthy("back", "v1", 1).await;
}
