//! `PUT`: replacing an object or its status, with server-owned metadata, generation, no-op
//! detection and finalizer-driven deletion.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, StatusCause};
use crate::managed;
use crate::meta;
use crate::resources::ResourceType;
use crate::store::Write;

use super::list_types::SchemaListTypes;
use super::{meta_mut, meta_of, str_field, Core, Opts, Reply, Sub};

/// The part of an object that decides `generation`: spec, or everything but metadata and
/// status for kinds without spec.
fn generation_part(v: &Value) -> Value {
    if let Some(s) = v.get("spec") {
        return s.clone();
    }
    let mut c = v.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    c
}

/// Metadata fields the server owns: carried over from the stored object on every update.
const SERVER_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Compare two objects ignoring resourceVersion and managedFields timestamps (no-op detection).
/// Compares in place: cloning two large objects per write cost more than the comparison.
fn same_object(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            same_map_except(a, b, &["metadata"]) && same_metadata(a.get("metadata"), b.get("metadata"))
        }
        _ => a == b,
    }
}

/// Equal maps once the keys in `skip` are left out of both.
fn same_map_except(a: &Map<String, Value>, b: &Map<String, Value>, skip: &[&str]) -> bool {
    let kept = |m: &Map<String, Value>| m.iter().filter(|(k, _)| !skip.contains(&k.as_str())).count();
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

fn same_metadata(a: Option<&Value>, b: Option<&Value>) -> bool {
    let (Some(a), Some(b)) = (a.and_then(Value::as_object), b.and_then(Value::as_object)) else {
        return a == b;
    };
    let same_managed = match (a.get("managedFields"), b.get("managedFields")) {
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(x, y)| match (x.as_object(), y.as_object()) {
                    (Some(x), Some(y)) => same_map_except(x, y, &["time"]),
                    _ => x == y,
                })
        }
        (x, y) => x == y,
    };
    same_managed && same_map_except(a, b, &["resourceVersion", "managedFields"])
}

/// The pod with the ephemeral containers of `body`: existing ones may not change or go.
fn ephemeral_containers(rt: &ResourceType, name: &str, old: &Value, body: &Value) -> Result<Value, ApiError> {
    let empty = Vec::new();
    let before = old
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let after = body
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (i, c) in before.iter().enumerate() {
        let kept = after.iter().any(|n| n.get("name") == c.get("name"));
        if !kept {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                name,
                vec![StatusCause {
                    reason: "FieldValueForbidden".into(),
                    message: "Forbidden: existing ephemeral containers may not be removed".into(),
                    field: format!("spec.ephemeralContainers[{i}]"),
                }],
            ));
        }
    }
    let mut n = old.clone();
    crate::handlers::set_pointer(&mut n, "/spec/ephemeralContainers", Value::Array(after.clone()));
    if let Some(Value::Array(cs)) = n.pointer_mut("/spec/ephemeralContainers") {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("imagePullPolicy").or_insert(json!("IfNotPresent"));
            c.entry("resources").or_insert(json!({}));
        }
    }
    Ok(n)
}

/// A body naming another object than the URL is a bad request.
fn check_body_name(body: &Value, name: &str) -> Result<(), ApiError> {
    match str_field(body, "/metadata/name") {
        Some(bname) if bname != name => Err(ApiError::bad_request(format!(
            "the name of the object ({bname}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

/// True if replacing a missing object of `rt` creates it (`AllowCreateOnUpdate`).
fn creates_on_update(rt: &ResourceType, missing: Missing) -> bool {
    missing == Missing::CreateIfAllowed
        && matches!(
            (rt.group.as_str(), rt.plural.as_str()),
            ("coordination.k8s.io", "leases") | ("", "events") | ("events.k8s.io", "events")
        )
}

/// The body's resourceVersion must match the stored one's; custom resources must give one.
fn check_precondition(rt: &ResourceType, name: &str, qualified: &str, body: &Value, rv: u64) -> Result<(), ApiError> {
    let want_rv = str_field(body, "/metadata/resourceVersion").unwrap_or("");
    if want_rv.is_empty() {
        if rt.custom {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                name,
                vec![StatusCause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                    field: "metadata.resourceVersion".into(),
                }],
            ));
        }
    } else if want_rv.parse::<u64>().is_err() {
        // etcd3's store parses it before comparing, and passes the Go error on.
        return Err(ApiError::unclassified(format!(
            "strconv.ParseUint: parsing {want_rv:?}: invalid syntax"
        )));
    } else if want_rv != rv.to_string() {
        return Err(ApiError::conflict(qualified, name));
    }
    Ok(())
}

/// The new object before server-owned metadata: the stored one with `body`'s status (or
/// ephemeral containers) at a subresource, else `body` keeping the stored status when status
/// is a subresource of its own.
fn replaced_at(rt: &ResourceType, name: &str, sub: Sub, old: &Value, body: Value) -> Result<Value, ApiError> {
    Ok(match sub {
        Sub::EphemeralContainers => ephemeral_containers(rt, name, old, &body)?,
        Sub::Status => {
            let mut n = old.clone();
            if let Some(o) = n.as_object_mut() {
                match body.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
            // Field ownership computed by a server-side apply to /status travels with it.
            if let (Some(mf), Some(m)) = (
                body.pointer("/metadata/managedFields").cloned(),
                n.get_mut("metadata").and_then(Value::as_object_mut),
            ) {
                m.insert("managedFields".into(), mf);
            }
            n
        }
        _ => {
            let mut n = body;
            if rt.status_subresource {
                if let Some(o) = n.as_object_mut() {
                    match old.get("status") {
                        Some(s) => o.insert("status".into(), s.clone()),
                        None => o.remove("status"),
                    };
                }
            }
            n
        }
    })
}

/// Server-owned metadata always comes from the stored object, and so do managedFields the
/// body leaves out.
fn keep_server_meta(rt: &ResourceType, ns: &str, name: &str, old: &Value, new: &mut Value) -> Result<(), ApiError> {
    let old_meta = meta_of(old).cloned().unwrap_or_default();
    let m = meta_mut(new)?;
    for k in SERVER_META {
        match old_meta.get(*k) {
            Some(v) => m.insert((*k).to_string(), v.clone()),
            None => m.remove(*k),
        };
    }
    m.insert("name".into(), json!(name));
    if rt.namespaced {
        m.insert("namespace".into(), json!(ns));
    } else {
        m.remove("namespace");
    }
    if !m.contains_key("managedFields") {
        if let Some(mf) = old_meta.get("managedFields") {
            m.insert("managedFields".into(), mf.clone());
        }
    }
    Ok(())
}

/// The old object admission compares against. Through pods/ephemeralcontainers the pod spec
/// may change there and only there, so the old object already has the new ones.
fn admission_old<'a>(sub: Sub, old: &'a Value, new: &Value) -> Cow<'a, Value> {
    if sub != Sub::EphemeralContainers {
        return Cow::Borrowed(old);
    }
    let mut o = old.clone();
    let eph = new.pointer("/spec/ephemeralContainers").cloned().unwrap_or(Value::Null);
    crate::handlers::set_pointer(&mut o, "/spec/ephemeralContainers", eph);
    Cow::Owned(o)
}

/// The subresource managedFields entries record.
fn subresource_name(sub: Sub) -> Option<&'static str> {
    match sub {
        Sub::Status => Some("status"),
        Sub::Scale => Some("scale"),
        Sub::EphemeralContainers => Some("ephemeralcontainers"),
        Sub::Main => None,
    }
}

/// What replacing an object that is gone does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Missing {
    /// Create it where kube-apiserver does (`PUT` of a Lease or an Event).
    CreateIfAllowed,
    /// 404: a patch or an apply never creates, even a Lease.
    NotFound,
}

impl Core {
    /// `PUT`: replace the object at `sub`. Of a missing Lease or Event it creates one, as
    /// kube-apiserver does (their strategies' `AllowCreateOnUpdate`).
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        body: Value,
        sub: Sub,
        opts: &Opts,
    ) -> Result<Reply, ApiError> {
        self.replace(rt, ns, name, body, sub, opts, Missing::CreateIfAllowed)
    }

    /// Replace the object at `sub`; `missing` says what a missing object gets. The common tail
    /// of `PUT`, every patch and apply.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn replace(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut body: Value,
        sub: Sub,
        opts: &Opts,
        missing: Missing,
    ) -> Result<Reply, ApiError> {
        if rt.view.is_some() {
            let body = crate::resources::views::to_storage(rt, body);
            return self.through_view(rt, |s| self.replace(s, ns, name, body, sub, opts, missing));
        }
        Self::check_type(rt, &mut body)?;
        let key = rt.key();
        let ns = if rt.namespaced { ns } else { "" };
        check_body_name(&body, name)?;
        if self.store.get(&key, ns, name).is_none() {
            if creates_on_update(rt, missing) && sub == Sub::Main {
                if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                    m.insert("name".into(), json!(name));
                }
                return self.create(rt, Some(ns), body, opts);
            }
            return Err(ApiError::not_found(&rt.qualified(), name));
        }
        let qualified = rt.qualified();
        let mut warnings = Vec::new();
        let w = self.store.write(&key, ns, name, opts.dry_run, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found(&qualified, name))?;
            check_precondition(rt, name, &qualified, &body, cur.rv)?;
            let (write, admitted) = self.replace_stored(rt, ns, name, body, sub, opts, &cur.value())?;
            warnings = admitted;
            Ok(write)
        })?;
        self.after_write(rt, &w, opts.dry_run);
        Ok(Reply {
            code: 200,
            body: w.obj.value(),
            warnings,
        })
    }

    /// Under the store lock: the object `body` makes of the stored `old` at `sub`, admitted,
    /// with its generation and field ownership brought up to date; and admission's warnings.
    #[allow(clippy::too_many_arguments)]
    fn replace_stored(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        body: Value,
        sub: Sub,
        opts: &Opts,
        old: &Value,
    ) -> Result<(Write, Vec<String>), ApiError> {
        let mut new = replaced_at(rt, name, sub, old, body)?;
        keep_server_meta(rt, ns, name, old, &mut new)?;
        let old_for_admission = admission_old(sub, old, &new);
        let warnings = self.admit(rt, Some(&old_for_admission), &mut new, opts, sub)?;
        if rt.tracks_generation && generation_part(old) != generation_part(&new) {
            let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
            meta_mut(&mut new)?.insert("generation".into(), json!(g));
        }
        if !opts.unrecorded {
            managed::record_update(
                Some(old),
                &mut new,
                &opts.field_manager,
                subresource_name(sub),
                &SchemaListTypes {
                    schema: rt.schema.as_ref(),
                },
                &meta::now_rfc3339(),
            );
        }
        Ok((Self::finish(old, new)?, warnings))
    }

    /// Common end of a write: no-op detection and deletion once the last finalizer is gone.
    fn finish(old: &Value, mut new: Value) -> Result<Write, ApiError> {
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert(
                "resourceVersion".into(),
                old.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
            );
        }
        if same_object(old, &new) {
            return Ok(Write::Keep);
        }
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some_and(|d| !d.is_null());
        let no_finalizers = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        let pod_grace_left = new.get("kind").and_then(Value::as_str) == Some("Pod")
            && new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0;
        if deleting && no_finalizers && !pod_grace_left {
            return Ok(Write::Delete(new));
        }
        Ok(Write::Put(new))
    }
}

#[cfg(test)]
mod same_object_tests {
    use super::same_object;
    use serde_json::json;

    #[test]
    fn ignores_resource_version_and_managed_field_times_only() {
        let a = json!({"kind": "X", "metadata": {"name": "a", "resourceVersion": "1",
            "managedFields": [{"manager": "m", "time": "t1", "fieldsV1": {"f:spec": {}}}]}, "spec": {"x": 1}});
        let mut b = a.clone();
        b["metadata"]["resourceVersion"] = json!("2");
        b["metadata"]["managedFields"][0]["time"] = json!("t2");
        assert!(same_object(&a, &b));
        let mut c = b.clone();
        c["spec"]["x"] = json!(2);
        assert!(!same_object(&a, &c));
        let mut d = b.clone();
        d["metadata"]["managedFields"][0]["manager"] = json!("other");
        assert!(!same_object(&a, &d));
        let mut e = b.clone();
        e["metadata"]["labels"] = json!({"k": "v"});
        assert!(!same_object(&a, &e));
        let mut f = b.clone();
        f["metadata"].as_object_mut().unwrap().remove("resourceVersion");
        assert!(same_object(&a, &f));
        let mut g = b.clone();
        g["status"] = json!({});
        assert!(!same_object(&a, &g));
        assert!(!same_object(&g, &a));
    }
}
