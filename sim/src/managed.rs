//! Server-side apply and `metadata.managedFields`, modelled on kube-apiserver's fieldmanager
//! and sigs.k8s.io/structured-merge-diff (SMD), simplified.
//!
//! Field sets are sets of paths; a path is a list of path elements (`f:<field>`,
//! `k:<key json>` for items of map-lists, `v:<value json>` for items of set-lists,
//! `i:<index>`). A path in a set means the field (or list item) at that path is owned.
//! They are stored in `managedFields[].fieldsV1` in the real encoding, with `"."` marking a
//! node that is owned itself and also has owned children.
//!
//! Schema knowledge is limited to what the caller gives through [`ListTypes`]: how lists
//! merge, and (optionally) which maps are atomic. Everything else is a granular map.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// How lists are treated at a path: atomic (replace whole), map keyed by fields, or set (primitive values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Map(Vec<String>),
    Set,
}

/// Caller-supplied schema information, looked up by dotted path without indices,
/// e.g. "spec.template.spec.containers" or "metadata.finalizers".
pub trait ListTypes {
    /// List type of the list at `path`.
    fn list_type(&self, path: &str) -> ListType;
    /// Whether the object at `path` is atomic (`x-kubernetes-map-type: atomic`,
    /// `+structType=atomic`, e.g. a Deployment's `spec.selector`): owned and replaced as a
    /// whole. Defaults to granular.
    fn map_is_atomic(&self, _path: &str) -> bool {
        false
    }
}

/// One field that an apply would take from another manager.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// The field, like `.spec.replicas` or `.spec.containers[name="c"].image`.
    pub field: String,
    /// The other manager's operation: "Apply" or "Update" (the real message then says
    /// `using <apiVersion>`).
    pub operation: String,
}

/// A path element; ordering is only used for set storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pe {
    Field(String),
    /// Canonical JSON of the key fields object.
    Key(String),
    /// Canonical JSON of the value.
    Value(String),
    Index(usize),
}

type Path = Vec<Pe>;
type FieldSet = BTreeSet<Path>;

/// Server-set metadata fields that are never owned (stripMeta in the fieldmanager, plus the
/// deletion fields).
const IGNORED_METADATA: &[&str] = &[
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

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>, api_version: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == "Apply" || self.api_version == api_version)
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
    new_set.retain(|p| !is_ignored(p) && scope.contains(p));

    let applier = entries
        .iter()
        .position(|e| e.is(manager, "Apply", subresource, &api_version));
    let last_set = applier.map(|i| entries[i].set.clone()).unwrap_or_default();

    // Prune what this manager applied last time but no longer does, unless someone
    // (including this new configuration) still owns it or something inside it.
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
        remove_at(&mut merged, path, 0, &mut names, list_types, &owned, None);
    }

    // Compare the live object with the result: changed fields owned by others conflict.
    let cmp = compare_objects(&live_clean, &merged, list_types);
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

    let changed = merged != live_clean || applier.is_none() || last_set != new_set;
    match applier {
        Some(i) => {
            let e = &mut entries[i];
            e.set = new_set;
            e.api_version = api_version;
            if changed || e.time.is_none() {
                e.time = Some(now.to_string());
            }
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".to_string(),
            api_version,
            time: Some(now.to_string()),
            subresource: subresource.map(str::to_string),
            set: new_set,
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    write_managed_fields(&mut merged, entries);
    Ok(merged)
}

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
        // that `metadata`/`spec`/`status` are not owned as a whole.
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

/// The real server's 409 message, e.g.
/// `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .spec.replicas`.
/// `api_version` is the version shown for managers whose operation is "Update".
pub fn conflict_message(conflicts: &[Conflict], api_version: &str) -> String {
    let print_manager = |c: &Conflict| {
        let name = format!("{:?}", c.manager);
        if c.operation == "Update" {
            format!("{name} using {api_version}")
        } else {
            name
        }
    };
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

// ---------------------------------------------------------------------------------------
// Preparing objects

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

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
    }
    v
}

/// Paths never owned: apiVersion, kind, server-set metadata, and the top-level structs
/// themselves.
fn is_ignored(path: &[Pe]) -> bool {
    match path {
        [Pe::Field(f)] => matches!(f.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status"),
        [Pe::Field(m), Pe::Field(f), ..] if m == "metadata" => IGNORED_METADATA.contains(&f.as_str()),
        _ => false,
    }
}

fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The path element identifying a list item.
fn item_pe(item: &Value, list_type: &ListType, index: usize) -> Pe {
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

fn map_atomic(names: &[String], lt: &dyn ListTypes) -> bool {
    !names.is_empty() && lt.map_is_atomic(&names.join("."))
}

fn with_name<T>(names: &mut Vec<String>, name: &str, f: impl FnOnce(&mut Vec<String>) -> T) -> T {
    names.push(name.to_string());
    let r = f(names);
    names.pop();
    r
}

// ---------------------------------------------------------------------------------------
// Field sets

/// The fields set by an applied configuration (SMD `ToFieldSet`): scalars, nulls, empty
/// maps, atomic lists/maps are leaves; list items of map/set lists are owned themselves.
fn to_field_set(v: &Value, path: &mut Path, names: &mut Vec<String>, lt: &dyn ListTypes, out: &mut FieldSet) {
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
fn added_subtree(v: &Value, path: &mut Path, names: &mut Vec<String>, lt: &dyn ListTypes, out: &mut FieldSet) {
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

#[derive(Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    /// Whether an owner of `p` loses it to the writer: it was added or modified, or an
    /// ancestor was modified (replaced as a whole).
    fn changes(&self, p: &[Pe]) -> bool {
        self.added.contains(p) || (1..=p.len()).any(|i| self.modified.contains(&p[..i]))
    }
    /// Whether `p` (or an ancestor) was removed.
    fn removes(&self, p: &[Pe]) -> bool {
        (1..=p.len()).any(|i| self.removed.contains(&p[..i]))
    }
}

fn compare_objects(lhs: &Value, rhs: &Value, lt: &dyn ListTypes) -> Comparison {
    let mut cmp = Comparison::default();
    compare(Some(lhs), Some(rhs), &mut Vec::new(), &mut Vec::new(), lt, &mut cmp);
    cmp.added.retain(|p| !is_ignored(p));
    cmp.modified.retain(|p| !is_ignored(p));
    cmp.removed.retain(|p| !is_ignored(p));
    cmp
}

fn compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &mut Path,
    names: &mut Vec<String>,
    lt: &dyn ListTypes,
    cmp: &mut Comparison,
) {
    match (lhs, rhs) {
        (None, None) => {}
        (None, Some(r)) => added_subtree(r, path, names, lt, &mut cmp.added),
        (Some(_), None) => {
            if !path.is_empty() {
                cmp.removed.insert(path.clone());
            }
        }
        (Some(Value::Object(l)), Some(Value::Object(r)))
            if !map_atomic(names, lt) && (!l.is_empty() || !r.is_empty()) =>
        {
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            for k in keys {
                path.push(Pe::Field(k.clone()));
                with_name(names, k, |names| compare(l.get(k), r.get(k), path, names, lt, cmp));
                path.pop();
            }
        }
        (Some(Value::Array(l)), Some(Value::Array(r))) if lt.list_type(&names.join(".")) != ListType::Atomic => {
            let list_type = lt.list_type(&names.join("."));
            let lpes: Vec<Pe> = l.iter().enumerate().map(|(i, v)| item_pe(v, &list_type, i)).collect();
            let rpes: Vec<Pe> = r.iter().enumerate().map(|(i, v)| item_pe(v, &list_type, i)).collect();
            let mut seen = BTreeSet::new();
            for pe in lpes.iter().chain(rpes.iter()) {
                if !seen.insert(pe.clone()) {
                    continue;
                }
                let li = lpes.iter().position(|p| p == pe).and_then(|i| l.get(i));
                let ri = rpes.iter().position(|p| p == pe).and_then(|i| r.get(i));
                path.push(pe.clone());
                compare(li, ri, path, names, lt, cmp);
                path.pop();
            }
        }
        (Some(l), Some(r)) => {
            if !values_equal(l, r) && !path.is_empty() {
                cmp.modified.insert(path.clone());
            }
        }
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn has_strict_descendant(set: &FieldSet, p: &Path) -> bool {
    set.range(p.clone()..)
        .take_while(|q| q.starts_with(p))
        .any(|q| q.len() > p.len())
}

// ---------------------------------------------------------------------------------------
// Merging and pruning objects

/// Merge an applied configuration into the live value (SMD `Merge`): maps merge, null
/// removes, map/set lists merge by item (configuration order, live-only items kept in
/// place), anything else is replaced.
fn merge_values(live: Option<&Value>, cfg: &Value, names: &mut Vec<String>, lt: &dyn ListTypes) -> Value {
    match (live, cfg) {
        (live, Value::Object(c)) if !map_atomic(names, lt) => {
            let mut out = match live {
                Some(Value::Object(l)) => l.clone(),
                _ => Map::new(),
            };
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = with_name(names, k, |names| merge_values(out.get(k), cv, names, lt));
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(l)), Value::Array(c)) => {
            let list_type = lt.list_type(&names.join("."));
            if list_type == ListType::Atomic {
                return cfg.clone();
            }
            Value::Array(merge_lists(l, c, &list_type, names, lt))
        }
        _ => cfg.clone(),
    }
}

fn merge_lists(
    live: &[Value],
    cfg: &[Value],
    list_type: &ListType,
    names: &mut Vec<String>,
    lt: &dyn ListTypes,
) -> Vec<Value> {
    let lpes: Vec<Pe> = live.iter().enumerate().map(|(i, v)| item_pe(v, list_type, i)).collect();
    let rpes: Vec<Pe> = cfg.iter().enumerate().map(|(i, v)| item_pe(v, list_type, i)).collect();
    let mut out = Vec::with_capacity(live.len().max(cfg.len()));
    let mut emitted: BTreeSet<Pe> = BTreeSet::new();
    let mut next = 0;
    let mut emit_cfg_upto = |end: usize, next: &mut usize, out: &mut Vec<Value>, names: &mut Vec<String>| {
        while *next <= end && *next < cfg.len() {
            let pe = &rpes[*next];
            if emitted.insert(pe.clone()) {
                let l = lpes.iter().position(|p| p == pe).and_then(|i| live.get(i));
                out.push(merge_values(l, &cfg[*next], names, lt));
            }
            *next += 1;
        }
    };
    for (li, lpe) in lpes.iter().enumerate() {
        match rpes.iter().position(|p| p == lpe) {
            Some(pos) => emit_cfg_upto(pos, &mut next, &mut out, names),
            None => out.push(live[li].clone()),
        }
    }
    if !cfg.is_empty() {
        emit_cfg_upto(cfg.len() - 1, &mut next, &mut out, names);
    }
    out
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Remove the field or item at `path[depth..]` from `v`. Containers left empty are removed
/// too unless someone owns them; key fields of list items are never removed.
fn remove_at(
    v: &mut Value,
    path: &[Pe],
    depth: usize,
    names: &mut Vec<String>,
    lt: &dyn ListTypes,
    owned: &FieldSet,
    key_fields: Option<&[String]>,
) {
    let Some(pe) = path.get(depth) else {
        return;
    };
    let last = depth + 1 == path.len();
    match v {
        Value::Object(m) => {
            let Pe::Field(name) = pe else {
                return;
            };
            if last {
                if !key_fields.is_some_and(|k| k.contains(name)) {
                    m.remove(name);
                }
                return;
            }
            let Some(child) = m.get_mut(name) else {
                return;
            };
            with_name(names, name, |names| {
                remove_at(child, path, depth + 1, names, lt, owned, None)
            });
            if is_empty_container(child) && !owned.contains(&path[..=depth]) {
                m.remove(name);
            }
        }
        Value::Array(items) => {
            let list_type = lt.list_type(&names.join("."));
            let Some(idx) = items
                .iter()
                .enumerate()
                .position(|(i, it)| item_pe(it, &list_type, i) == *pe)
            else {
                return;
            };
            if last {
                items.remove(idx);
                return;
            }
            let keys = match &list_type {
                ListType::Map(k) => Some(k.as_slice()),
                _ => None,
            };
            remove_at(&mut items[idx], path, depth + 1, names, lt, owned, keys);
            if is_empty_container(&items[idx]) && !owned.contains(&path[..=depth]) {
                items.remove(idx);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// managedFields encoding

fn pe_to_string(pe: &Pe) -> String {
    match pe {
        Pe::Field(f) => format!("f:{f}"),
        Pe::Key(k) => format!("k:{k}"),
        Pe::Value(v) => format!("v:{v}"),
        Pe::Index(i) => format!("i:{i}"),
    }
}

fn parse_pe(s: &str) -> Option<Pe> {
    let (prefix, rest) = s.split_at_checked(2)?;
    match prefix {
        "f:" => Some(Pe::Field(rest.to_string())),
        "k:" => serde_json::from_str::<Value>(rest)
            .ok()
            .filter(Value::is_object)
            .map(|v| Pe::Key(canonical(&v))),
        "v:" => serde_json::from_str::<Value>(rest)
            .ok()
            .map(|v| Pe::Value(canonical(&v))),
        "i:" => rest.parse().ok().map(Pe::Index),
        _ => None,
    }
}

/// SMD's path string, e.g. `.spec.containers[name="c"].image`.
fn path_to_string(path: &[Pe]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            Pe::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Pe::Key(k) => {
                let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={}", canonical(v))).collect(),
                    _ => vec![k.clone()],
                };
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            Pe::Value(v) => s.push_str(&format!("[={v}]")),
            Pe::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn decode_set(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    let Value::Object(m) = v else {
        return;
    };
    for (k, child) in m {
        if k == "." {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            continue;
        }
        let Some(pe) = parse_pe(k) else {
            continue;
        };
        prefix.push(pe);
        match child {
            Value::Object(c) if !c.is_empty() => decode_set(child, prefix, out),
            _ => {
                out.insert(prefix.clone());
            }
        }
        prefix.pop();
    }
}

fn encode_set(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for (i, pe) in path.iter().enumerate() {
            let entry = node
                .entry(pe_to_string(pe))
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(next) = entry else {
                break;
            };
            node = next;
            // A member with children gets a "." marker; it is added once a child appears.
            if i + 1 < path.len() && set.contains(&path[..=i]) && !node.contains_key(".") {
                node.insert(".".to_string(), Value::Object(Map::new()));
            }
        }
    }
    Value::Object(root)
}

fn decode_entries(items: &[Value]) -> Vec<Entry> {
    let s = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|m| {
            let mut set = FieldSet::new();
            if let Some(f) = m.get("fieldsV1") {
                decode_set(f, &mut Vec::new(), &mut set);
            }
            Entry {
                manager: s(m, "manager").unwrap_or_default(),
                operation: s(m, "operation").unwrap_or_default(),
                api_version: s(m, "apiVersion").unwrap_or_default(),
                time: s(m, "time"),
                subresource: s(m, "subresource").filter(|s| !s.is_empty()),
                set,
            }
        })
        .collect()
}

fn decode_managed_fields(obj: &Value) -> Vec<Entry> {
    match obj.pointer("/metadata/managedFields") {
        Some(Value::Array(items)) => decode_entries(items),
        _ => Vec::new(),
    }
}

fn write_managed_fields(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
            &b.operation,
            &b.time,
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    let Value::Object(root) = obj else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    // A non-object metadata (an invalid object) is left alone.
    let Value::Object(meta) = root.entry("metadata").or_insert_with(|| Value::Object(Map::new())) else {
        return;
    };
    let encoded = entries
        .into_iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), Value::String(e.manager));
            m.insert("operation".into(), Value::String(e.operation));
            m.insert("apiVersion".into(), Value::String(e.api_version));
            if let Some(t) = e.time {
                m.insert("time".into(), Value::String(t));
            }
            m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
            m.insert("fieldsV1".into(), encode_set(&e.set));
            if let Some(s) = e.subresource {
                m.insert("subresource".into(), Value::String(s));
            }
            Value::Object(m)
        })
        .collect();
    meta.insert("managedFields".into(), Value::Array(encoded));
}

#[cfg(test)]
mod tests;
