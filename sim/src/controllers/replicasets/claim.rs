//! Adoption and release, as kube's `ControllerRefManager` does them for a ReplicaSet's pods
//! and a Deployment's ReplicaSets: an owner keeps what it controls while its selector matches
//! it (and lets go of what no longer does — a pod relabelled out of service is replaced), and
//! takes over orphans its selector matches. An owner being deleted does neither.
use serde_json::{json, Value};

use super::{controlled, controller_of, controller_opts};
use crate::handlers::{Core, Sub};
use crate::resources::ResKey;
use crate::selector::LabelSelector;

/// The controller claiming objects.
pub(crate) struct Owner<'a> {
    /// The owner as stored (name, namespace, uid, `spec.selector`, deletion).
    pub obj: &'a Value,
    pub api_version: &'static str,
    pub kind: &'static str,
}

fn labels_of(v: &Value) -> std::collections::BTreeMap<String, String> {
    crate::meta::string_map(v.pointer("/metadata/labels"))
}

impl Owner<'_> {
    fn get(&self, p: &str) -> &str {
        self.obj.pointer(p).and_then(Value::as_str).unwrap_or("")
    }

    fn deleting(&self) -> bool {
        self.obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
    }

    fn reference(&self) -> Value {
        json!({"apiVersion": self.api_version, "kind": self.kind, "name": self.get("/metadata/name"),
            "uid": self.get("/metadata/uid"), "controller": true, "blockOwnerDeletion": true})
    }

    /// The owner's selector; None when it has none that can match (nothing is claimed then,
    /// and nothing released).
    fn selector(&self) -> Option<LabelSelector> {
        let sel = self.obj.pointer("/spec/selector").filter(|s| !s.is_null())?;
        crate::selector::from_label_selector_json(sel).ok()
    }
}

/// The objects of `key` that `owner` controls once it has claimed them: its own its selector
/// still matches, and the orphans it matches, adopted.
pub(crate) fn claim(core: &Core, owner: &Owner, key: &ResKey) -> Vec<Value> {
    let uid = owner.get("/metadata/uid").to_string();
    let own = controlled(core, &uid, key);
    let (Some(selector), Some(rt)) = (owner.selector(), core.resource(&key.group, &key.plural)) else {
        return own;
    };
    let mut out = Vec::new();
    for v in own {
        if selector.matches(&labels_of(&v)) {
            out.push(v);
        } else if !owner.deleting() {
            set_owners(core, &rt, &v, |refs| refs.retain(|r| r.get("uid") != Some(&json!(uid))));
        }
    }
    if owner.deleting() {
        return out;
    }
    let (all, _) = core.store.list(key, Some(owner.get("/metadata/namespace")));
    for s in all {
        if s.deleting || s.owners.iter().any(|o| o.uid == uid) || !selector.matches(&s.label_map()) {
            continue;
        }
        let v = s.value();
        if controller_of(&v).is_some() {
            continue;
        }
        let reference = owner.reference();
        if let Some(adopted) = set_owners(core, &rt, &v, |refs| refs.push(reference)) {
            out.push(adopted);
        }
    }
    out
}

/// Write `v` with its ownerReferences changed by `f`, unless it changed since it was read.
fn set_owners(
    core: &Core,
    rt: &crate::resources::ResourceType,
    v: &Value,
    f: impl FnOnce(&mut Vec<Value>),
) -> Option<Value> {
    let mut body = v.clone();
    let mut refs = v
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    f(&mut refs);
    let meta = body.get_mut("metadata").and_then(Value::as_object_mut)?;
    if refs.is_empty() {
        meta.remove("ownerReferences");
    } else {
        meta.insert("ownerReferences".into(), Value::Array(refs));
    }
    let ns = v.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    core.update(rt, ns, name, body, Sub::Main, &controller_opts())
        .ok()
        .map(|r| r.body)
}
