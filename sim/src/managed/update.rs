//! Non-apply writes (create, update, patch): the writer takes the fields it changed.

use serde_json::{Map, Value};

use super::compare::compare_objects;
use super::encoding::{decode_entries, decode_managed_fields, without_managed_fields, write_managed_fields, Entry};
use super::fieldset::FieldSet;
use super::ListTypes;

/// Record a non-apply write (create/update/patch) by `manager`: the fields that changed from
/// `old` to `new` (all fields of `new` for a create) go to `manager` with operation "Update"
/// (and are taken from other managers); fields removed are dropped from every manager.
/// Updates `new`'s `metadata.managedFields` in place; entries whose set becomes empty are
/// dropped. Managed fields sent in `new` replace the stored ones if they differ from `old`'s
/// (`[{}]` resets them), as the real server does.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    list_types: &dyn ListTypes,
    now: &str,
) {
    if !new.is_object() {
        return;
    }
    // kube-apiserver's buildManagerInfo: a write whose manager is empty (no `fieldManager`, no
    // User-Agent to derive one from) is recorded under "unknown".
    let manager = if manager.is_empty() { "unknown" } else { manager };
    let subresource = subresource.filter(|s| !s.is_empty());
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let sent = new.pointer("/metadata/managedFields").cloned();
    let old_mf = old.and_then(|o| o.pointer("/metadata/managedFields")).cloned();
    let mut entries = match &sent {
        Some(Value::Array(a)) if a.len() == 1 && a[0] == Value::Object(Map::new()) => Vec::new(),
        Some(Value::Array(a)) if !a.is_empty() && sent != old_mf => decode_entries(a),
        _ => old.map(decode_managed_fields).unwrap_or_default(),
    };

    let old_clean = match old {
        Some(o @ Value::Object(_)) => without_managed_fields(o),
        // A create: compare with an empty object whose top-level structs already exist, so
        // that `metadata`/`spec`/`status` of a built-in kind are not owned as a whole (a
        // custom resource's `spec` and `status` are, once set).
        _ if list_types.custom() => serde_json::json!({"metadata": {}}),
        _ => serde_json::json!({"metadata": {}, "spec": {}, "status": {}}),
    };
    let new_clean = without_managed_fields(new);
    let cmp = compare_objects(&old_clean, &new_clean, list_types);

    for e in entries.iter_mut() {
        if !e.is(manager, "Update", subresource, &api_version) {
            e.set.retain(|p| !cmp.changes(p) && !cmp.removes(p));
        }
    }
    let changed: FieldSet = cmp.added.union(&cmp.modified).cloned().collect();
    match entries
        .iter()
        .position(|e| e.is(manager, "Update", subresource, &api_version))
    {
        Some(i) => {
            let e = &mut entries[i];
            e.set.retain(|p| !cmp.removes(p));
            if !changed.is_empty() {
                e.set.extend(changed);
                e.time = Some(now.to_string());
            }
        }
        None if !changed.is_empty() => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Update".to_string(),
            api_version,
            time: Some(now.to_string()),
            subresource: subresource.map(str::to_string),
            set: changed,
        }),
        None => {}
    }
    entries.retain(|e| !e.set.is_empty());
    write_managed_fields(new, entries);
}
