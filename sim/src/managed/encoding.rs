//! The `metadata.managedFields` encoding: entries, and field sets as `fieldsV1` (with `"."`
//! marking a node owned itself that also has owned children); SMD path strings.

use serde_json::{Map, Value};

use super::fieldset::{canonical, FieldSet, Path, Pe};

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) manager: String,
    pub(super) operation: String,
    pub(super) api_version: String,
    pub(super) time: Option<String>,
    pub(super) subresource: Option<String>,
    pub(super) set: FieldSet,
}

impl Entry {
    pub(super) fn is(&self, manager: &str, operation: &str, subresource: Option<&str>, api_version: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }
}

pub(super) fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
    }
    v
}

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
pub(super) fn path_to_string(path: &[Pe]) -> String {
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

pub(super) fn decode_set(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
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

pub(super) fn encode_set(set: &FieldSet) -> Value {
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

pub(super) fn decode_entries(items: &[Value]) -> Vec<Entry> {
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

pub(super) fn decode_managed_fields(obj: &Value) -> Vec<Entry> {
    match obj.pointer("/metadata/managedFields") {
        Some(Value::Array(items)) => decode_entries(items),
        _ => Vec::new(),
    }
}

pub(super) fn write_managed_fields(obj: &mut Value, mut entries: Vec<Entry>) {
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
