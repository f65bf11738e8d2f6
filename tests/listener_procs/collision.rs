//! A listener whose Lease name is taken by another component's Lease: the controller never
//! writes that Lease, runs every other listener, says which Lease is in the way in the set's
//! Degraded condition and a Warning Event, and starts the listener once the Lease is gone.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::harness::{listeners, wait_for, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_lease_name_is_reported_and_never_written() {
    let ns = Ns::plain("collide").await;
    let taken = baton::api::listenerset::lease::lease_name("sxc", "l001");
    let foreign: Lease = serde_json::from_value(json!({"metadata": {"name": taken},
        "spec": {"holderIdentity": "payments-0", "leaseDurationSeconds": 15}}))
    .expect("a Lease");
    let created = ns
        .leases()
        .create(&PostParams::default(), &foreign)
        .await
        .expect("another component's Lease");
    ok(ns.start_controller().await);
    for p in ["co-a", "co-b"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("sxc", 3);
    ok(ns.create_set("sxc", spec, 3).await);
    let others: Vec<String> = keys.iter().filter(|k| !k.ends_with("l001")).cloned().collect();
    ok(ns.wait_running("the other listeners", &others, LONG, |_| true).await);

    let message = ok(wait_for("Degraded=LeaseNameTaken", LONG, || async {
        let status = ns.sets().get("sxc").await.ok()?.status?;
        let c = status.conditions.into_iter().find(|c| c.type_ == "Degraded")?;
        (c.status == "True" && c.reason == "LeaseNameTaken").then_some(c.message)
    })
    .await);
    assert!(
        message.contains(&format!(
            "listener l001 cannot run: Lease collide/{taken} exists and is not this set's"
        )),
        "{message}"
    );
    let events: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    ok(wait_for("the LeaseNameTaken Event", LONG, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("LeaseNameTaken") && e.type_.as_deref() == Some("Warning"))
            .then_some(())
    })
    .await);
    let now = ns.leases().get(&taken).await.expect("the foreign Lease");
    assert_eq!(
        now.metadata.resource_version, created.metadata.resource_version,
        "the controller never wrote the foreign Lease"
    );
    assert!(!ns.log.running().contains_key("sxc/l001"), "l001 runs nowhere");

    // Once it is gone, the listener gets a Lease of its own and runs; the condition clears.
    ns.leases()
        .delete(&taken, &DeleteParams::default())
        .await
        .expect("deleting the foreign Lease");
    ok(ns
        .wait_running("l001 once its name is free", &keys, LONG, |_| true)
        .await);
    ok(wait_for("Degraded clears", LONG, || async {
        let status = ns.sets().get("sxc").await.ok()?.status?;
        let c = status.conditions.into_iter().find(|c| c.type_ == "Degraded")?;
        (c.reason != "LeaseNameTaken").then_some(())
    })
    .await);
    assert_clean(&ns, false);
}
