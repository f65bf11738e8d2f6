//! apiextensions-apiserver's CRD finalizer: a CustomResourceDefinition being deleted (its first
//! DELETE gave it a `deletionTimestamp`, the `customresourcecleanup.apiextensions.k8s.io`
//! finalizer and `Terminating=True`) stays, still served, while every custom resource it
//! defines is deleted — each waiting for its own finalizers — and new ones are refused. Once
//! none is left, `Terminating` turns False (`InstanceDeletionCompleted`), the finalizer goes,
//! and with its last finalizer the CRD.
//!
//! kube-apiserver deletes the resources once, then polls for a minute and starts again; here
//! the store's events drive it: a custom resource that goes makes its CRD look again, and one
//! that appears while its CRD is terminating (server-side apply may still create) is deleted.
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::handlers::{Core, DeleteOpts};
use crate::resources::ResKey;
use crate::store::{Event, EventKind, Stored, Write};
use crate::strategy::crd_status::{self, CLEANUP_FINALIZER, TERMINATING};

fn crds_key() -> ResKey {
    ResKey {
        group: "apiextensions.k8s.io".into(),
        plural: "customresourcedefinitions".into(),
    }
}

/// Drive the CRD finalizer from the store's events until `shutdown`.
pub async fn run(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let mut rx = core.store.subscribe();
    resync(&core);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => on_event(&core, &ev),
                Err(broadcast::error::RecvError::Lagged(_)) => resync(&core),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

fn on_event(core: &Core, ev: &Event) {
    if ev.key == crds_key() {
        if ev.kind != EventKind::Deleted && ev.obj.deleting {
            finalize(core, &ev.obj.name);
        }
        return;
    }
    if ev.key.group.is_empty() || !matches!(ev.kind, EventKind::Added | EventKind::Deleted) {
        return;
    }
    let name = format!("{}.{}", ev.key.plural, ev.key.group);
    if terminating(core, &name).is_some() {
        finalize(core, &name);
    }
}

/// Every CRD being deleted, looked at once (at start, and after missed events).
fn resync(core: &Core) {
    let (crds, _) = core.store.list(&crds_key(), None);
    for crd in crds.iter().filter(|c| c.deleting) {
        finalize(core, &crd.name);
    }
}

/// CRD `name` when it is being deleted and still carries the cleanup finalizer.
fn terminating(core: &Core, name: &str) -> Option<Arc<Stored>> {
    core.store
        .get(&crds_key(), "", name)
        .filter(|c| c.deleting && c.finalizers.iter().any(|f| f == CLEANUP_FINALIZER))
}

/// The storage key of the custom resources CRD `crd` defines.
fn resources_of(crd: &Value) -> Option<ResKey> {
    let group = crd.pointer("/spec/group").and_then(Value::as_str)?;
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str)?;
    Some(ResKey {
        group: group.to_string(),
        plural: plural.to_string(),
    })
}

/// One pass of the finalizer over CRD `name`: report the deletion in progress, delete the
/// custom resources not being deleted yet, and finish if none is left.
fn finalize(core: &Core, name: &str) {
    let Some(crd) = terminating(core, name) else { return };
    let value = crd.value();
    let Some(key) = resources_of(&value) else {
        finish(core, name, "InstanceDeletionCompleted", "removed all instances");
        return;
    };
    if !crd_status::condition_true(&value, "Established") {
        finish(core, name, "NeverEstablished", "resource was never established");
        return;
    }
    set_terminating(
        core,
        name,
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
    );
    let (items, _) = core.store.list(&key, None);
    if items.is_empty() {
        finish(core, name, "InstanceDeletionCompleted", "removed all instances");
        return;
    }
    let Some(rt) = core.resource(&key.group, &key.plural) else {
        return;
    };
    for o in items.iter().filter(|o| !o.deleting) {
        let opts = DeleteOpts {
            precondition_uid: Some(o.uid.clone()),
            ..DeleteOpts::default()
        };
        // A failure (a conflict with a write in between) is retried on the next event.
        let _ = core.delete(&rt, &o.namespace, &o.name, &opts);
    }
}

/// Set `Terminating=True` with `reason` on CRD `name`, if it does not say so already.
fn set_terminating(core: &Core, name: &str, reason: &str, message: &str) {
    let Some(rt) = core.resource(&crds_key().group, &crds_key().plural) else {
        return;
    };
    let _ = core.write_through(&rt, "", name, |cur| {
        let Some(cur) = cur.filter(|c| c.deleting) else {
            return Ok(Write::Keep);
        };
        let mut v = cur.value();
        match crd_status::set_condition(&mut v, TERMINATING, "True", reason, message) {
            true => Ok(Write::Put(v)),
            false => Ok(Write::Keep),
        }
    });
}

/// No custom resource is left: `Terminating=False` with `reason`, the cleanup finalizer
/// removed, and the CRD gone with its last finalizer.
fn finish(core: &Core, name: &str, reason: &str, message: &str) {
    let Some(rt) = core.resource(&crds_key().group, &crds_key().plural) else {
        return;
    };
    let _ = core.write_through(&rt, "", name, |cur| {
        let Some(cur) = cur.filter(|c| c.deleting) else {
            return Ok(Write::Keep);
        };
        let mut v = cur.value();
        crd_status::set_condition(&mut v, TERMINATING, "False", reason, message);
        let rest: Vec<String> = crd_status::finalizers(&v)
            .into_iter()
            .filter(|f| f != CLEANUP_FINALIZER)
            .collect();
        crd_status::set_finalizers(&mut v, &rest);
        Ok(if rest.is_empty() {
            Write::Delete(v)
        } else {
            Write::Put(v)
        })
    });
}
