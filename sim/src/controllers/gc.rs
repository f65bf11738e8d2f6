//! The garbage collector: ownerReference cascades (Background, Foreground, Orphan), driven by
//! the store's event stream.
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::handlers::{Core, DeleteOpts};
use crate::store::{Event, EventKind, Write};

pub async fn run(core: Arc<Core>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut rx = core.store.subscribe();
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => handle(&core, &ev),
                Err(broadcast::error::RecvError::Lagged(_)) => resync(&core),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

fn handle(core: &Core, ev: &Event) {
    super::namespaces::on_event(core, ev);
    let obj = &ev.obj;
    match ev.kind {
        EventKind::Deleted => delete_dependents(core, &obj.uid, "Background"),
        _ if obj.deleting => {
            if obj.finalizers.iter().any(|f| f == "orphan") {
                orphan(core, &obj.uid);
                remove_finalizer(core, ev, "orphan");
            } else if obj.finalizers.iter().any(|f| f == "foregroundDeletion") {
                let deps = core.store.dependents_of(&obj.uid);
                if deps.is_empty() || !deps.iter().any(|d| blocks(core, d, &obj.uid)) {
                    remove_finalizer(core, ev, "foregroundDeletion");
                } else {
                    delete_dependents(core, &obj.uid, "Foreground");
                }
            }
        }
        _ => {}
    }
    // A dependent that went away may unblock its foreground-deleting owner.
    if ev.kind == EventKind::Deleted || obj.deleting {
        if let Some(prev) = &ev.prev {
            for o in &prev.owners {
                recheck_owner(core, &o.uid);
            }
        }
    }
}

fn blocks(core: &Core, dep: &(crate::resources::ResKey, String, String), owner_uid: &str) -> bool {
    core.store
        .get(&dep.0, &dep.1, &dep.2)
        .is_some_and(|d| d.owners.iter().any(|o| o.uid == owner_uid && o.block_owner_deletion))
}

fn recheck_owner(core: &Core, uid: &str) {
    let Some((key, ns, name)) = core.store.lookup_uid(uid) else {
        return;
    };
    let Some(owner) = core.store.get(&key, &ns, &name) else {
        return;
    };
    if owner.deleting && owner.finalizers.iter().any(|f| f == "foregroundDeletion") {
        let deps = core.store.dependents_of(uid);
        if !deps.iter().any(|d| blocks(core, d, uid)) {
            let _ = core.store.write(&key, &ns, &name, false, |cur| {
                strip_finalizer(cur, "foregroundDeletion")
            });
        }
    }
}

fn strip_finalizer(cur: Option<&Arc<crate::store::Stored>>, fin: &str) -> Result<Write, crate::error::ApiError> {
    let Some(cur) = cur else { return Ok(Write::Keep) };
    let mut v = cur.value();
    let rest: Vec<Value> = v
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|f| f.as_str() != Some(fin)).cloned().collect())
        .unwrap_or_default();
    let done = rest.is_empty() && cur.deleting;
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        if rest.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert("finalizers".into(), json!(rest));
        }
    }
    if done {
        Ok(Write::Delete(v))
    } else {
        Ok(Write::Put(v))
    }
}

fn remove_finalizer(core: &Core, ev: &Event, fin: &str) {
    let _ = core
        .store
        .write(&ev.key, &ev.obj.namespace, &ev.obj.name, false, |cur| {
            strip_finalizer(cur, fin)
        });
}

/// Delete every dependent of `uid` whose owners are all gone.
fn delete_dependents(core: &Core, uid: &str, propagation: &str) {
    for dep in core.store.dependents_of(uid) {
        // Conditional on the version checked: an object whose owners changed since (a Lease
        // handed to a live pod) must not be deleted. On a conflict, look again.
        for _ in 0..8 {
            if delete_dependent(core, &dep, uid, propagation) != Some(409) {
                break;
            }
        }
    }
}

/// One attempt at [`delete_dependents`] for one object; `Some(code)` when the delete failed.
fn delete_dependent(
    core: &Core,
    (key, ns, name): &(crate::resources::ResKey, String, String),
    uid: &str,
    propagation: &str,
) -> Option<u16> {
    let dep = core.store.get(key, ns, name)?;
    if dep.deleting && propagation == "Background" {
        return None;
    }
    if !dep.owners.iter().any(|o| o.uid == uid) {
        return None;
    }
    let other_live_owner = dep.owners.iter().any(|o| o.uid != uid && core.store.exists_uid(&o.uid));
    let rt = core.resource(&key.group, &key.plural)?;
    if other_live_owner {
        // Drop only the dangling reference.
        let _ = core.store.write(key, ns, name, false, |cur| drop_owner(cur, uid));
        return None;
    }
    core.delete(
        &rt,
        ns,
        name,
        &DeleteOpts {
            propagation: Some(propagation.to_string()),
            precondition_uid: Some(dep.uid.clone()),
            precondition_rv: Some(dep.rv.to_string()),
            ..DeleteOpts::default()
        },
    )
    .err()
    .map(|e| e.code)
}

fn drop_owner(cur: Option<&Arc<crate::store::Stored>>, uid: &str) -> Result<Write, crate::error::ApiError> {
    let Some(cur) = cur else { return Ok(Write::Keep) };
    let mut v = cur.value();
    let rest: Vec<Value> = v
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|o| o.get("uid").and_then(Value::as_str) != Some(uid))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        if rest.is_empty() {
            m.remove("ownerReferences");
        } else {
            m.insert("ownerReferences".into(), json!(rest));
        }
    }
    Ok(Write::Put(v))
}

fn orphan(core: &Core, uid: &str) {
    for (key, ns, name) in core.store.dependents_of(uid) {
        let _ = core.store.write(&key, &ns, &name, false, |cur| drop_owner(cur, uid));
    }
}

/// After missing events, look at everything once: objects whose owners are all gone.
fn resync(core: &Core) {
    let reg = core.registry().clone();
    for rt in reg.all() {
        let (items, _) = core.store.list(&rt.key(), None);
        for o in items {
            if !o.owners.is_empty() && o.owners.iter().all(|ow| !core.store.exists_uid(&ow.uid)) && !o.deleting {
                // Conditional: a missed change is caught by the next resync.
                let opts = DeleteOpts {
                    precondition_uid: Some(o.uid.clone()),
                    precondition_rv: Some(o.rv.to_string()),
                    ..DeleteOpts::default()
                };
                let _ = core.delete(rt, &o.namespace, &o.name, &opts);
            }
        }
    }
}
