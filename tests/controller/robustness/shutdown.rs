//! (4) Shutdown completes within a bound on SIGTERM, whatever the caches do.

use std::time::{Duration, Instant};

use baton::operator::SHUTDOWN_GRACE;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;

use super::controller::{
    all_stored, create_under_unbounded_schema, raw_listenersets, start, temp_dir, LISTENERSETS_CRD,
};
use crate::support::{manifest_v, wait_for, Env, CONTROLLER_ID, LONG, NS};

/// Bound on SIGTERM → exit: the controllers' grace period, the wait for Events being
/// published, the Lease release, and slack for a loaded machine.
fn exit_bound() -> Duration {
    SHUTDOWN_GRACE + Duration::from_secs(2) + Duration::from_secs(10)
}

/// A leader with a poisoned object in its caches (a ListenerSet with `maxPerPod: 2147483648`
/// stored under an older CRD; before, its cache never synced) gets SIGTERM. Before, it kept
/// running and kept its Lease; now it exits 0 within the bound, and the Lease is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_poisoned_leader_within_a_bound_and_releases_its_lease() {
    let env = Env::start().await;
    let dir = temp_dir("shutdown");
    let mut set = super::controller::listenerset("poisoned");
    set["spec"]["maxPerPod"] = json!(2_147_483_648_i64);
    all_stored(
        create_under_unbounded_schema(&env.client, LISTENERSETS_CRD, &raw_listenersets(&env.client), vec![set]).await,
    );
    env.apply(&manifest_v("svc", 1, "v1")).await;
    let args = ["--lease-name", "baton-controller", "--lease-namespace", NS];
    let mut c = start(&env.sim, dir.path(), "baton-term", &args).await;
    c.wait_ready().await;
    env.wait_healthy("svc", "v1", 1).await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), NS);
    let holder = |l: &Lease| l.spec.as_ref().and_then(|s| s.holder_identity.clone());
    assert_eq!(
        holder(&leases.get("baton-controller").await.expect("the leader Lease")),
        Some("baton-term".into())
    );

    let t = Instant::now();
    c.terminate();
    let status = c.wait_exit(exit_bound()).await;
    assert!(status.is_some(), "still running {:?} after SIGTERM", t.elapsed());
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    eprintln!("SIGTERM → exit in {:?}", t.elapsed());
    let lease = leases.get("baton-controller").await.expect("the leader Lease");
    assert_eq!(holder(&lease), None, "the Lease is released");
}

/// In-process: the API server holds every request of the operator (a partition) from its
/// start, so no cache ever syncs; a shutdown still returns within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_while_the_api_server_holds_every_request() {
    let env = Env::start().await;
    env.sim.faults.block(CONTROLLER_ID);
    let op = env.start_operator().await;
    // The caches' lists are held by the server before it is asked to stop.
    wait_for("the operator's lists reaching the server", LONG, || async {
        (env.sim.core.request_count(CONTROLLER_ID, "GET") >= 4).then_some(())
    })
    .await;
    let t = Instant::now();
    let stopped = tokio::time::timeout(exit_bound(), op.stop()).await;
    assert!(stopped.is_ok(), "the operator did not stop within {:?}", exit_bound());
    eprintln!("stop with every request held: {:?}", t.elapsed());
    env.sim.faults.unblock(CONTROLLER_ID);
}
