//! `DELETE`: preconditions, propagation finalizers and pods' grace periods.

use serde_json::{json, Map, Value};

use crate::error::{success_status, ApiError};
use crate::meta;
use crate::resources::ResourceType;
use crate::store::{EventKind, Stored, Write, Written};
use crate::strategy::crd_status::{self, CLEANUP_FINALIZER, TERMINATING};

use super::{meta_mut, Core, DeleteOpts, Reply};

impl Core {
    /// `DELETE` one object, answered as kube-apiserver answers: the object while its deletion
    /// is pending (finalizers, a pod's grace period), and once it is gone a `Status{Success}` —
    /// except for the kinds whose storage returns the deleted object (`ReturnDeletedObject`).
    pub fn delete(&self, rt: &ResourceType, ns: &str, name: &str, d: &DeleteOpts) -> Result<Reply, ApiError> {
        if rt.view.is_some() {
            return self.through_view(rt, |s| self.delete(s, ns, name, d));
        }
        let w = self.delete_written(rt, ns, name, d)?;
        let gone = w.kind == Some(EventKind::Deleted);
        let body = if gone && !rt.returns_deleted_object() {
            success_status(json!({"name": name, "group": rt.group, "kind": rt.plural, "uid": w.obj.uid}))
        } else {
            w.obj.value()
        };
        Ok(Reply {
            code: 200,
            body,
            warnings: vec![],
        })
    }

    /// `DELETE` one object; the stored (or removed) object as the write left it.
    pub fn delete_written(&self, rt: &ResourceType, ns: &str, name: &str, d: &DeleteOpts) -> Result<Written, ApiError> {
        let ns = if rt.namespaced { ns } else { "" };
        let key = rt.key();
        let qualified = rt.qualified();
        let w = self.store.write(&key, ns, name, d.dry_run, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found(&qualified, name))?;
            check_preconditions(rt, name, cur, d)?;
            let v = cur.value();
            admit_deletion(rt, ns, name, &v, d)?;
            deletion_write(rt, cur, v, d)
        })?;
        self.after_write(rt, &w, d.dry_run);
        Ok(w)
    }
}

/// The request's preconditions: a UID or resourceVersion it names must be the stored object's.
fn check_preconditions(rt: &ResourceType, name: &str, cur: &Stored, d: &DeleteOpts) -> Result<(), ApiError> {
    if let Some(uid) = &d.precondition_uid {
        if uid != &cur.uid {
            return Err(ApiError::precondition_failed(
                &rt.kind, &rt.group, name, "UID", uid, &cur.uid,
            ));
        }
    }
    if let Some(rv) = &d.precondition_rv {
        if rv != &cur.rv.to_string() {
            return Err(ApiError::precondition_failed(
                &rt.kind,
                &rt.group,
                name,
                "ResourceVersion",
                rv,
                &cur.rv.to_string(),
            ));
        }
    }
    Ok(())
}

/// Validating admission for a client's DELETE of `old` (the simulator's own controllers,
/// which send no request context, are not admitted).
fn admit_deletion(rt: &ResourceType, ns: &str, name: &str, old: &Value, d: &DeleteOpts) -> Result<(), ApiError> {
    if let Some(ctx) = &d.request {
        let attrs = crate::admission::Attributes {
            operation: "DELETE",
            rt,
            namespace: ns,
            name,
            subresource: "",
            object: None,
            old_object: Some(old),
            dry_run: d.dry_run,
        };
        ctx.admit(crate::admission::Stage::Validating, &attrs)?;
    }
    Ok(())
}

/// What the store does with `v` (the stored object `cur`) on DELETE: a CRD and a namespace
/// begin their own cleanups; anything else is removed now, or marked with a deletion
/// timestamp while a pod's grace period runs or finalizers remain.
fn deletion_write(rt: &ResourceType, cur: &Stored, mut v: Value, d: &DeleteOpts) -> Result<Write, ApiError> {
    let is_pod = rt.group.is_empty() && rt.plural == "pods";
    let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
    let is_crd = rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions";
    if is_crd && !cur.deleting {
        return Ok(Write::Put(begin_crd_deletion(v)));
    }
    let m = meta_mut(&mut v)?;
    let finalizers = add_propagation_finalizer(m, d.propagation.as_deref());
    let already = m.get("deletionTimestamp").is_some_and(|t| !t.is_null());
    // Pods on a node get a grace period the kubelet honours; anything else with
    // finalizers waits for them.
    let grace = if is_pod {
        pod_grace_period(&v, d.grace_period_seconds)
    } else {
        0
    };
    if is_namespace {
        return begin_namespace_deletion(v, already);
    }
    if grace == 0 && finalizers.is_empty() {
        return remove_now(v, is_pod, already);
    }
    mark_deleting(v, already, grace, finalizers.len() == cur.finalizers.len())
}

/// The object's finalizers, with the one the propagation policy asks for (`orphan` for
/// `Orphan`, `foregroundDeletion` for `Foreground`) added and written back to `m` when
/// the list is not empty.
fn add_propagation_finalizer(m: &mut Map<String, Value>, propagation: Option<&str>) -> Vec<String> {
    let mut finalizers: Vec<String> = m
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    match propagation {
        Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => finalizers.push("orphan".into()),
        Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
            finalizers.push("foregroundDeletion".into())
        }
        _ => {}
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), json!(finalizers));
    }
    finalizers
}

/// A pod's grace period: the requested one (else the spec's, default 30s) while it is bound
/// to a node and still running; none for an unscheduled or finished pod.
fn pod_grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let done = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    let spec_grace = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    if bound && !done {
        requested.unwrap_or(spec_grace).max(0)
    } else {
        0
    }
}

/// A namespace is stamped `Terminating` and left for the namespace controller to empty
/// (see `crate::controllers::namespaces`); deleting it again changes nothing.
fn begin_namespace_deletion(mut v: Value, already: bool) -> Result<Write, ApiError> {
    if already {
        return Ok(Write::Keep);
    }
    // Namespace storage sets no grace period (kube-apiserver's namespace REST).
    meta_mut(&mut v)?.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
    crate::handlers::set_pointer(&mut v, "/status/phase", json!("Terminating"));
    Ok(Write::Put(v))
}

/// Remove the object now, with no grace period and no finalizers to wait for.
fn remove_now(mut v: Value, is_pod: bool, already: bool) -> Result<Write, ApiError> {
    // Only a graceful resource (pods) is stamped on its way out; anything else
    // leaves as it was stored (its DELETED event carries no deletionTimestamp).
    if is_pod {
        let m = meta_mut(&mut v)?;
        if !already {
            m.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
        }
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    Ok(Write::Delete(v))
}

/// Keep the object, marked for deletion `grace` seconds from now; a shorter grace period
/// than the one already running moves the deletion earlier, never later.
fn mark_deleting(mut v: Value, already: bool, grace: i64, same_finalizers: bool) -> Result<Write, ApiError> {
    let m = meta_mut(&mut v)?;
    let cur_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
    // Already being deleted with an equal or shorter grace, same finalizers: nothing changes.
    if already && cur_grace.is_some_and(|g| g <= grace) && same_finalizers {
        return Ok(Write::Keep);
    }
    if !already || cur_grace.is_none_or(|g| grace < g) {
        m.insert("deletionTimestamp".into(), json!(meta::rfc3339_in(grace)));
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
    }
    Ok(Write::Put(v))
}

/// The first DELETE of a CustomResourceDefinition, as apiextensions-apiserver's `REST.Delete`
/// answers it: a `deletionTimestamp`, the cleanup finalizer and `Terminating=True`, whatever
/// the propagation asked. The CRD finalizer controller (`controllers/crd_cleanup.rs`) then
/// deletes every custom resource it defines and removes the finalizer once none is left.
fn begin_crd_deletion(mut v: Value) -> Value {
    crate::handlers::set_pointer(&mut v, "/metadata/deletionTimestamp", json!(meta::now_rfc3339()));
    let mut finalizers = crd_status::finalizers(&v);
    if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
        finalizers.push(CLEANUP_FINALIZER.to_string());
    }
    crd_status::set_finalizers(&mut v, &finalizers);
    crd_status::set_condition(
        &mut v,
        TERMINATING,
        "True",
        "InstanceDeletionPending",
        "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
    );
    v
}
