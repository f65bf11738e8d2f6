//! Paths, field sets, and the fields a value sets (SMD `ToFieldSet`).

use serde_json::{Map, Value};
use std::collections::BTreeSet;

use super::{ListType, ListTypes};

/// A path element; ordering is only used for set storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Pe {
    Field(String),
    /// Canonical JSON of the key fields object.
    Key(String),
    /// Canonical JSON of the value.
    Value(String),
    Index(usize),
}

pub(super) type Path = Vec<Pe>;
pub(super) type FieldSet = BTreeSet<Path>;

/// Server-set metadata fields that are never owned (stripMeta in the fieldmanager, plus the
/// deletion fields).
pub(super) const IGNORED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Paths never owned: apiVersion, kind, server-set metadata, and the top-level structs
/// themselves — of a built-in kind: its Go type always has `spec` and `status`, while a
/// custom resource's are fields like any other (`f:spec: {".": {}}` once set).
pub(super) fn is_ignored(path: &[Pe], custom: bool) -> bool {
    match path {
        [Pe::Field(f)] => {
            matches!(f.as_str(), "apiVersion" | "kind" | "metadata")
                || (!custom && matches!(f.as_str(), "spec" | "status"))
        }
        [Pe::Field(m), Pe::Field(f), ..] if m == "metadata" => IGNORED_METADATA.contains(&f.as_str()),
        _ => false,
    }
}

pub(super) fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The path element identifying a list item.
pub(super) fn item_pe(item: &Value, list_type: &ListType, index: usize) -> Pe {
    match (list_type, item) {
        (ListType::Map(keys), Value::Object(m)) => {
            let key: Map<String, Value> = keys
                .iter()
                .filter_map(|k| m.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            if key.is_empty() {
                Pe::Value(canonical(item))
            } else {
                Pe::Key(canonical(&Value::Object(key)))
            }
        }
        (ListType::Map(_), _) | (ListType::Set, _) => Pe::Value(canonical(item)),
        (ListType::Atomic, _) => Pe::Index(index),
    }
}

pub(super) fn map_atomic(names: &[String], lt: &dyn ListTypes) -> bool {
    !names.is_empty() && lt.map_is_atomic(&names.join("."))
}

pub(super) fn with_name<T>(names: &mut Vec<String>, name: &str, f: impl FnOnce(&mut Vec<String>) -> T) -> T {
    names.push(name.to_string());
    let r = f(names);
    names.pop();
    r
}

/// The fields set by an applied configuration (SMD `ToFieldSet`): scalars, nulls, empty
/// maps, atomic lists/maps are leaves; list items of map/set lists are owned themselves.
pub(super) fn to_field_set(
    v: &Value,
    path: &mut Path,
    names: &mut Vec<String>,
    lt: &dyn ListTypes,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !path.is_empty() && (m.is_empty() || map_atomic(names, lt)) => {
            out.insert(path.clone());
        }
        Value::Object(m) => {
            for (k, child) in m {
                path.push(Pe::Field(k.clone()));
                with_name(names, k, |names| to_field_set(child, path, names, lt, out));
                path.pop();
            }
        }
        Value::Array(items) => {
            let list_type = lt.list_type(&names.join("."));
            if list_type == ListType::Atomic {
                out.insert(path.clone());
                return;
            }
            for (i, item) in items.iter().enumerate() {
                path.push(item_pe(item, &list_type, i));
                out.insert(path.clone());
                if matches!(list_type, ListType::Map(_)) && item.is_object() {
                    to_field_set(item, path, names, lt, out);
                }
                path.pop();
            }
        }
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

/// Every node of a newly added subtree is owned (as the real compare does for new fields).
pub(super) fn added_subtree(
    v: &Value,
    path: &mut Path,
    names: &mut Vec<String>,
    lt: &dyn ListTypes,
    out: &mut FieldSet,
) {
    if !path.is_empty() {
        out.insert(path.clone());
    }
    match v {
        Value::Object(m) if !map_atomic(names, lt) => {
            for (k, child) in m {
                path.push(Pe::Field(k.clone()));
                with_name(names, k, |names| added_subtree(child, path, names, lt, out));
                path.pop();
            }
        }
        Value::Array(items) => {
            let list_type = lt.list_type(&names.join("."));
            if list_type == ListType::Atomic {
                return;
            }
            for (i, item) in items.iter().enumerate() {
                path.push(item_pe(item, &list_type, i));
                added_subtree(item, path, names, lt, out);
                path.pop();
            }
        }
        _ => {}
    }
}

pub(super) fn has_strict_descendant(set: &FieldSet, p: &Path) -> bool {
    set.range(p.clone()..)
        .take_while(|q| q.starts_with(p))
        .any(|q| q.len() > p.len())
}
