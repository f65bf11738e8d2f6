//! Deletion: the finalizer that keeps a ListenerSet until every one of its Leases is gone, and
//! letting the set go once none is left.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::ResourceExt;
use serde_json::json;
use tracing::{debug, info};

use super::{publish, Context};
use crate::api::listenerset::{self, ListenerSet, LISTENERSET_LABEL, LISTENER_LABEL};
use crate::api::listenerset::{EVENT_FINALIZED, FINALIZER};
use crate::error::{is_status, Result};
use crate::events::Severity as EventType;

/// Add [`FINALIZER`], conditional on the `resourceVersion` read (a 409 just retries).
pub(super) async fn add_finalizer(ctx: &Context, set: &ListenerSet, ns: &str, name: &str) -> Result<()> {
    let mut finalizers = set.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": set.resource_version()}});
    let api: Api<ListenerSet> = Api::namespaced(ctx.client.clone(), ns);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    debug!(listenerset = %name, "finalizer added");
    Ok(())
}

/// No Lease of a deleted set is left in the cache: confirm with the API server, then let the set go.
pub(super) async fn finish_deletion(
    ctx: &Context,
    set: &ListenerSet,
    ns: &str,
    name: &str,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
) -> Result<Requeue> {
    // The cache may not have seen a Lease our previous reconcile created yet: ask the server. (A
    // name that is no label value cannot label a Lease, so none can exist.)
    if listenerset::is_label_value(name) {
        let lp = ListParams::default().labels(&format!("{LISTENERSET_LABEL}={name},{LISTENER_LABEL}"));
        let left = Api::<Lease>::namespaced(ctx.client.clone(), ns).list(&lp).await?;
        if !left.items.is_empty() {
            debug!(listenerset = %name, left = left.items.len(), "deleted set: Leases not cached yet");
            return Ok(Requeue::requeue(Duration::from_millis(500)));
        }
    }
    ctx.forget(ns, name);
    if let Some(uid) = set.metadata.uid.as_deref() {
        ctx.notifier.forget(uid);
    }
    if let Some(index) = set.finalizers().iter().position(|f| f == FINALIZER) {
        // Remove exactly our entry, and only if it is still where we saw it.
        let path = format!("/metadata/finalizers/{index}");
        let patch: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": path, "value": FINALIZER},
            {"op": "remove", "path": path},
        ]))?;
        let api: Api<ListenerSet> = Api::namespaced(ctx.client.clone(), ns);
        match api
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => return Ok(Requeue::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    info!(listenerset = %name, "every Lease deleted: finalizer removed");
    publish(
        ctx,
        reference,
        EventType::Normal,
        EVENT_FINALIZED,
        "every listener stopped and every Lease deleted: the ListenerSet goes",
    );
    Ok(Requeue::await_change())
}
