//! Schema keyword accessors, tolerant of malformed schemas, and the dotted field paths the
//! pruning and validation passes report.

use serde_json::{Map, Value};

pub(super) fn kw<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    s.as_object().and_then(|m| m.get(key))
}

pub(super) fn flag(s: &Value, key: &str) -> bool {
    matches!(kw(s, key), Some(Value::Bool(true)))
}

pub(super) fn nullable(s: &Value) -> bool {
    flag(s, "nullable")
}

pub(super) fn properties(s: &Value) -> Option<&Map<String, Value>> {
    kw(s, "properties").and_then(Value::as_object)
}

pub(super) fn property<'a>(s: &'a Value, name: &str) -> Option<&'a Value> {
    properties(s).and_then(|p| p.get(name))
}

/// The structural `items` schema (a single schema; tuple forms are not structural).
pub(super) fn items_schema(s: &Value) -> Option<&Value> {
    match kw(s, "items") {
        Some(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// A schema's default; `default: null` counts as no default (as in apiextensions).
pub(super) fn default_of(s: &Value) -> Option<&Value> {
    match kw(s, "default") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

pub(super) enum Additional<'a> {
    Absent,
    Bool(bool),
    Schema(&'a Value),
}

pub(super) fn additional(s: &Value) -> Additional<'_> {
    match kw(s, "additionalProperties") {
        Some(Value::Bool(b)) => Additional::Bool(*b),
        Some(v @ Value::Object(_)) => Additional::Schema(v),
        _ => Additional::Absent,
    }
}

pub(super) fn additional_schema(s: &Value) -> Option<&Value> {
    match additional(s) {
        Additional::Schema(a) => Some(a),
        _ => None,
    }
}

pub(super) fn int_kw(s: &Value, key: &str) -> Option<i64> {
    match kw(s, key)? {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i)
            } else if n.is_u64() {
                Some(i64::MAX)
            } else {
                n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)
            }
        }
        _ => None,
    }
}

pub(super) fn num_kw(s: &Value, key: &str) -> Option<f64> {
    match kw(s, key)? {
        Value::Number(n) => n.as_f64().filter(|f| !f.is_nan()),
        _ => None,
    }
}

/// Keys in sorted order, so error order does not depend on serde_json's `preserve_order`
/// feature (the real server's order is random: Go map iteration).
pub(super) fn sorted_keys(m: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

pub(super) fn is_meta_field(k: &str) -> bool {
    k == "apiVersion" || k == "kind" || k == "metadata"
}

pub(super) fn child_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn child_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
