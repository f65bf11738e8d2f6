//! `DELETE`: preconditions, propagation finalizers and pods' grace periods.

use serde_json::{json, Value};

use crate::error::{success_status, ApiError};
use crate::meta;
use crate::resources::ResourceType;
use crate::store::{EventKind, Write, Written};
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
        let is_pod = rt.group.is_empty() && rt.plural == "pods";
        let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
        let is_crd = rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions";
        let w = self.store.write(&key, ns, name, d.dry_run, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found(&qualified, name))?;
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
            let mut v = cur.value();
            if let Some(ctx) = &d.request {
                let attrs = crate::admission::Attributes {
                    operation: "DELETE",
                    rt,
                    namespace: ns,
                    name,
                    subresource: "",
                    object: None,
                    old_object: Some(&v),
                    dry_run: d.dry_run,
                };
                ctx.admit(crate::admission::Stage::Validating, &attrs)?;
            }
            if is_crd && !cur.deleting {
                return Ok(Write::Put(begin_crd_deletion(v)));
            }
            let m = meta_mut(&mut v)?;
            let mut finalizers: Vec<String> = m
                .get("finalizers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            match d.propagation.as_deref() {
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => finalizers.push("orphan".into()),
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".into())
                }
                _ => {}
            }
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), json!(finalizers));
            }
            let already = m.get("deletionTimestamp").is_some_and(|t| !t.is_null());
            // Pods on a node get a grace period the kubelet honours; anything else with
            // finalizers waits for them.
            let grace = if is_pod {
                let bound = v
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                let done = matches!(
                    v.pointer("/status/phase").and_then(Value::as_str),
                    Some("Succeeded" | "Failed")
                );
                let spec_grace = v
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30);
                if bound && !done {
                    d.grace_period_seconds.unwrap_or(spec_grace).max(0)
                } else {
                    0
                }
            } else {
                0
            };
            let m = meta_mut(&mut v)?;
            if is_namespace {
                // The namespace controller empties it first (see `crate::controllers::namespaces`).
                if already {
                    return Ok(Write::Keep);
                }
                // Namespace storage sets no grace period (kube-apiserver's namespace REST).
                m.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
                crate::api::set_pointer(&mut v, "/status/phase", json!("Terminating"));
                return Ok(Write::Put(v));
            }
            if grace == 0 && finalizers.is_empty() {
                // Only a graceful resource (pods) is stamped on its way out; anything else
                // leaves as it was stored (its DELETED event carries no deletionTimestamp).
                if is_pod {
                    if !already {
                        m.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
                    }
                    m.insert("deletionGracePeriodSeconds".into(), json!(0));
                }
                return Ok(Write::Delete(v));
            }
            let cur_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
            // Already being deleted with an equal or shorter grace, same finalizers: nothing changes.
            if already && cur_grace.is_some_and(|g| g <= grace) && finalizers.len() == cur.finalizers.len() {
                return Ok(Write::Keep);
            }
            if !already || cur_grace.is_none_or(|g| grace < g) {
                m.insert("deletionTimestamp".into(), json!(meta::rfc3339_in(grace)));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            Ok(Write::Put(v))
        })?;
        self.after_write(rt, &w, d.dry_run);
        Ok(w)
    }
}

/// The first DELETE of a CustomResourceDefinition, as apiextensions-apiserver's `REST.Delete`
/// answers it: a `deletionTimestamp`, the cleanup finalizer and `Terminating=True`, whatever
/// the propagation asked. The CRD finalizer controller (`controllers/crd_cleanup.rs`) then
/// deletes every custom resource it defines and removes the finalizer once none is left.
fn begin_crd_deletion(mut v: Value) -> Value {
    crate::api::set_pointer(&mut v, "/metadata/deletionTimestamp", json!(meta::now_rfc3339()));
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
