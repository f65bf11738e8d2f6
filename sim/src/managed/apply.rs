//! Server-side apply: merge, prune, detect conflicts, and record the applier's field set.

use serde_json::{Map, Value};

use super::compare::{compare_objects, Comparison};
use super::encoding::{decode_managed_fields, path_to_string, without_managed_fields, write_managed_fields, Entry};
use super::fieldset::{has_strict_descendant, is_ignored, to_field_set, FieldSet, Pe};
use super::merge::{merge_values, remove_at};
use super::{Conflict, ListTypes};

/// Metadata fields taken from the live object, never from an applied configuration.
const SERVER_METADATA: &[&str] = &[
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    NoStatus,
    StatusOnly,
}

impl Scope {
    fn contains(self, path: &[Pe]) -> bool {
        let is_status = matches!(path.first(), Some(Pe::Field(f)) if f == "status");
        match self {
            Scope::All => true,
            Scope::NoStatus => !is_status,
            Scope::StatusOnly => is_status,
        }
    }
}

/// Server-side apply of `config` (the applied configuration, already parsed from YAML/JSON)
/// by `manager`.
///
/// `live`: current object (None = create). `subresource`: Some("status") when applied to
/// /status (only `.status` is applied); otherwise `.status` in config is ignored when
/// `has_status_subresource`. Returns the new object with updated `metadata.managedFields`,
/// or the conflicts (unless `force`, which transfers ownership).
///
/// Server-set metadata in `config` (uid, resourceVersion, creationTimestamp, managedFields,
/// ...) is ignored; preconditions on them are the caller's business. A non-object `config`
/// is treated as an empty configuration.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    has_status_subresource: bool,
    list_types: &dyn ListTypes,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let subresource = subresource.filter(|s| !s.is_empty());
    let scope = match subresource {
        Some("status") => Scope::StatusOnly,
        None if has_status_subresource => Scope::NoStatus,
        _ => Scope::All,
    };
    let config = prepare_config(config, scope);
    let live_obj = match live {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Object(Map::new()),
    };
    let mut entries = decode_managed_fields(&live_obj);
    let live_clean = without_managed_fields(&live_obj);
    let api_version = config
        .get("apiVersion")
        .or_else(|| live_obj.get("apiVersion"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let mut names = Vec::new();
    let mut merged = merge_values(Some(&live_clean), &config, &mut names, list_types);

    let mut new_set = FieldSet::new();
    to_field_set(&config, &mut Vec::new(), &mut names, list_types, &mut new_set);
    new_set.retain(|p| !is_ignored(p, list_types.custom()) && scope.contains(p));

    let applier = entries
        .iter()
        .position(|e| e.is(manager, "Apply", subresource, &api_version));
    let last_set = applier.map(|i| entries[i].set.clone()).unwrap_or_default();

    prune(
        &mut merged,
        &entries,
        applier,
        &last_set,
        &new_set,
        scope,
        &mut names,
        list_types,
    );
    let cmp = compare_objects(&live_clean, &merged, list_types);
    settle_conflicts(&mut entries, applier, &cmp, force)?;

    // kube-apiserver's managedFieldsUpdater stamps the applier's entry only when the apply
    // changed the object: an apply that changes nothing (a new manager taking a share of
    // fields that already hold its values, or the same configuration again) leaves the times
    // as they were, and a new entry without one.
    let changed = merged != live_clean;
    let time = changed.then(|| now.to_string());
    match applier {
        Some(i) => {
            let e = &mut entries[i];
            e.set = new_set;
            e.api_version = api_version;
            if changed {
                e.time = time;
            }
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".to_string(),
            api_version,
            time,
            subresource: subresource.map(str::to_string),
            set: new_set,
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    write_managed_fields(&mut merged, entries);
    Ok(merged)
}

/// Prunes what this manager applied last time (`last_set`) but no longer does, unless someone
/// (including this new configuration) still owns it or something inside it.
#[allow(clippy::too_many_arguments)]
fn prune(
    merged: &mut Value,
    entries: &[Entry],
    applier: Option<usize>,
    last_set: &FieldSet,
    new_set: &FieldSet,
    scope: Scope,
    names: &mut Vec<String>,
    list_types: &dyn ListTypes,
) {
    let mut owned = new_set.clone();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != applier {
            owned.extend(e.set.iter().cloned());
        }
    }
    for path in last_set.difference(&owned) {
        if !scope.contains(path) || has_strict_descendant(&owned, path) {
            continue;
        }
        remove_at(merged, path, 0, names, list_types, &owned, None);
    }
}

/// Fields the apply changes (`cmp` compares the live object with the result) that other
/// managers own conflict; with `force` they lose them instead. Fields the apply removes
/// leave every other manager's set.
fn settle_conflicts(
    entries: &mut [Entry],
    applier: Option<usize>,
    cmp: &Comparison,
    force: bool,
) -> Result<(), Vec<Conflict>> {
    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, FieldSet)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == applier {
            continue;
        }
        let lost: FieldSet = e.set.iter().filter(|p| cmp.changes(p)).cloned().collect();
        for p in &lost {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                field: path_to_string(p),
                operation: e.operation.clone(),
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
            });
        }
        if !lost.is_empty() {
            taken.push((i, lost));
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
        conflicts.dedup();
        return Err(conflicts);
    }
    for (i, lost) in taken {
        entries[i].set.retain(|p| !lost.contains(p));
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != applier {
            e.set.retain(|p| !cmp.removes(p));
        }
    }
    Ok(())
}

/// The fields of a client-side apply's last-applied configuration whose live value is still
/// the applied one, as conflict field strings: kube-apiserver's `lastAppliedManager` lets
/// manager `kubectl` take these over without conflicts when it moves to server-side apply.
pub fn unchanged_last_applied(
    last_applied: &Value,
    live: &Value,
    list_types: &dyn ListTypes,
) -> std::collections::HashSet<String> {
    let live_clean = without_managed_fields(live);
    let mut set = FieldSet::new();
    to_field_set(last_applied, &mut Vec::new(), &mut Vec::new(), list_types, &mut set);
    let cmp = compare_objects(last_applied, &live_clean, list_types);
    set.iter()
        .filter(|p| !is_ignored(p, list_types.custom()) && !cmp.changes(p))
        .map(|p| path_to_string(p))
        .collect()
}

/// The other manager of a conflict as kube-apiserver's `printManager` names it: `"name"`, with
/// ` with subresource "status"` for a subresource's manager and ` using <apiVersion>` for an
/// Update (its own API version; `api_version` when it has none).
pub fn print_manager(c: &Conflict, api_version: &str) -> String {
    let mut name = format!("{:?}", c.manager);
    if let Some(sub) = &c.subresource {
        name = format!("{name} with subresource {sub:?}");
    }
    if c.operation == "Update" {
        let v = if c.api_version.is_empty() {
            api_version
        } else {
            &c.api_version
        };
        format!("{name} using {v}")
    } else {
        name
    }
}

/// The real server's 409 message, e.g.
/// `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .spec.replicas`.
/// `api_version` is the version shown for managers whose operation is "Update".
pub fn conflict_message(conflicts: &[Conflict], api_version: &str) -> String {
    let print_manager = |c: &Conflict| print_manager(c, api_version);
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            print_manager(c),
            c.field
        );
    }
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    let mut sorted: Vec<&Conflict> = conflicts.iter().collect();
    sorted.sort_by(|a, b| (&a.manager, &a.operation).cmp(&(&b.manager, &b.operation)));
    for c in sorted {
        let who = print_manager(c);
        match groups.last_mut() {
            Some((w, fields)) if *w == who => fields.push(&c.field),
            _ => groups.push((who, vec![&c.field])),
        }
    }
    let mut lines = Vec::new();
    for (who, fields) in groups {
        lines.push(format!("conflicts with {who}:"));
        lines.extend(fields.into_iter().map(|f| format!("- {f}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

fn prepare_config(config: &Value, scope: Scope) -> Value {
    let mut cfg = match config {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if let Some(Value::Object(meta)) = cfg.get_mut("metadata") {
        meta.retain(|k, _| !SERVER_METADATA.contains(&k.as_str()));
    }
    match scope {
        Scope::All => {}
        Scope::NoStatus => {
            cfg.remove("status");
        }
        Scope::StatusOnly => {
            cfg.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
            if let Some(Value::Object(meta)) = cfg.get_mut("metadata") {
                meta.retain(|k, _| k == "name" || k == "namespace");
            }
        }
    }
    Value::Object(cfg)
}
