//! The fields a revision is made of, as `metadata.managedFields` names them (a `fieldsV1` tree:
//! `f:<field>` of an object, `k:<key fields>` and `v:<value>` of a list's item, `i:<index>`,
//! and `.` for the item itself), and whether any field a manager owns differs between two
//! revisions.
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{json, Map, Value};

use crate::rollout::annotations;

/// What a revision is made of, as the Rollout's spec says it: the version and the pod template
/// (with the restart annotation, when one was requested).
#[derive(Clone, Copy, Debug)]
pub struct RevisionFields<'a> {
    pub version: &'a str,
    pub template: &'a PodTemplateSpec,
}

/// The revision's fields where they are on a Rollout: `spec.version`, `spec.template` and the
/// restart annotation.
pub(super) fn rollout_view(r: RevisionFields<'_>) -> Value {
    let template = serde_json::to_value(r.template).unwrap_or(Value::Null);
    let restarted = template
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(annotations::RESTARTED_AT))
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "metadata": {"annotations": {annotations::RESTARTED_AT: restarted}},
        "spec": {"version": r.version, "template": template},
    })
}

fn key(name: &str) -> String {
    format!("f:{name}")
}

/// Of a `fieldsV1` tree, the part under the fields a revision is made of and the change cause:
/// `f:spec.f:version`, `f:spec.f:template`, and annotations `baton.dev/restartedAt` and
/// `kubernetes.io/change-cause`. None when it has none of them.
pub(super) fn restricted(fields: &Value) -> Option<Value> {
    let mut spec = Map::new();
    for name in ["version", "template"] {
        if let Some(v) = fields.get("f:spec").and_then(|s| s.get(key(name))) {
            spec.insert(key(name), v.clone());
        }
    }
    let mut annos = Map::new();
    let owned = fields.get("f:metadata").and_then(|m| m.get("f:annotations"));
    for name in [annotations::RESTARTED_AT, annotations::CHANGE_CAUSE] {
        if let Some(v) = owned.and_then(|a| a.get(key(name))) {
            annos.insert(key(name), v.clone());
        }
    }
    let mut out = Map::new();
    if !spec.is_empty() {
        out.insert("f:spec".into(), Value::Object(spec));
    }
    if !annos.is_empty() {
        out.insert("f:metadata".into(), json!({"f:annotations": annos}));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Does the tree own the change cause?
pub(super) fn owns_cause(fields: &Value) -> bool {
    fields
        .get("f:metadata")
        .and_then(|m| m.get("f:annotations"))
        .and_then(|a| a.get(key(annotations::CHANGE_CAUSE)))
        .is_some()
}

/// Does the tree own a field a revision is made of?
pub(super) fn owns_revision_field(fields: &Value) -> bool {
    let restarted = fields
        .get("f:metadata")
        .and_then(|m| m.get("f:annotations"))
        .and_then(|a| a.get(key(annotations::RESTARTED_AT)));
    fields
        .get("f:spec")
        .is_some_and(|s| s.as_object().is_some_and(|s| !s.is_empty()))
        || restarted.is_some()
}

/// The member `step` (a `fieldsV1` key) of `v`; a null value is no value.
fn member<'v>(v: Option<&'v Value>, step: &str) -> Option<&'v Value> {
    let v = v?;
    let found = if let Some(name) = step.strip_prefix("f:") {
        v.get(name)
    } else if let Some(fields) = step.strip_prefix("k:") {
        let want: Map<String, Value> = serde_json::from_str(fields).ok()?;
        v.as_array()?
            .iter()
            .find(|item| want.iter().all(|(k, x)| item.get(k) == Some(x)))
    } else if let Some(value) = step.strip_prefix("v:") {
        let want: Value = serde_json::from_str(value).ok()?;
        v.as_array()?.iter().find(|item| **item == want)
    } else if let Some(index) = step.strip_prefix("i:") {
        v.as_array()?.get(index.parse::<usize>().ok()?)
    } else {
        None
    };
    found.filter(|x| !x.is_null())
}

/// Does a field that `owned` (a `fieldsV1` tree, at the node whose values are `before` and
/// `after`) names differ between the two? A leaf is compared by value, `.` by presence.
pub(super) fn differs(owned: &Value, before: Option<&Value>, after: Option<&Value>) -> bool {
    let Some(children) = owned.as_object().filter(|c| !c.is_empty()) else {
        return before != after;
    };
    children.iter().any(|(step, sub)| {
        if step == "." {
            before.is_some() != after.is_some()
        } else {
            differs(sub, member(before, step), member(after, step))
        }
    })
}
