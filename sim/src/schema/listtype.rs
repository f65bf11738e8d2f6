//! `x-kubernetes-list-type: set|map` uniqueness, as apiextensions' `listtype.ValidateListSetsAndMaps`
//! checks it: a set may not repeat an element, a map may not repeat a key (the values of
//! `x-kubernetes-list-map-keys`); each repeat is a `Duplicate value` at the repeated index.

use serde_json::{Map, Value};
use std::collections::HashMap;

use super::access::{additional_schema, items_schema, kw, properties, sorted_keys};
use super::render::go_quote;
use super::{Cause, MAX_DEPTH};

/// Uniqueness errors of every list-type set or map in `obj`.
pub fn validate_list_sets_and_maps(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Value::Object(m) = obj {
        object(m, schema, "", 0, &mut out);
    }
    out
}

fn field(path: &str) -> String {
    if path.is_empty() {
        "<nil>".into()
    } else {
        path.to_string()
    }
}

fn object(m: &Map<String, Value>, s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(add) = additional_schema(s) {
        for k in sorted_keys(m) {
            value(&m[k], add, &format!("{path}[{k}]"), depth + 1, out);
        }
    }
    if let Some(props) = properties(s) {
        for k in sorted_keys(m) {
            if let Some(p) = props.get(k) {
                let child = if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                };
                value(&m[k], p, &child, depth + 1, out);
            }
        }
    }
}

fn value(v: &Value, s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    match v {
        Value::Array(items) => array(items, s, path, depth, out),
        Value::Object(m) => object(m, s, path, depth, out),
        _ => {}
    }
}

/// Go's `%#v` of a `map[string]interface{}` holding decoded JSON (keys sorted, as fmt sorts
/// them); `%#v` of a scalar key value.
fn go_syntax(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => format!(
            "[]interface {{}}{{{}}}",
            a.iter().map(go_syntax).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "map[string]interface {{}}{{{}}}",
            sorted_keys(m)
                .iter()
                .map(|k| format!("{}:{}", go_quote(k), go_syntax(&m[*k])))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn duplicate(path: &str, i: usize, rendered: String) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!("Duplicate value: {rendered}"),
        field: field(&format!("{path}[{i}]")),
    }
}

/// Indices of the second occurrence of each repeated element (later repeats are not reported
/// again, as in kube-apiserver).
fn non_unique<T: serde::Serialize>(keys: &[T]) -> Vec<usize> {
    // Two decoded JSON values are equal exactly when they serialize alike (objects' keys are
    // sorted): each item is counted by its JSON, O(n) whatever repeats, where comparing each
    // with all before it was O(n²).
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let times = seen.entry(serde_json::to_string(k).unwrap_or_default()).or_default();
        if *times == 1 {
            out.push(i);
        }
        *times += 1;
    }
    out
}

fn array(items: &[Value], s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    match kw(s, "x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for i in non_unique(items) {
                let rendered = match &items[i] {
                    Value::String(st) => go_quote(st),
                    Value::Object(_) | Value::Array(_) => go_syntax(&items[i]),
                    other => other.to_string(),
                };
                out.push(duplicate(path, i, rendered));
            }
        }
        Some("map") => list_map(items, s, path, out),
        _ => {}
    }
    if let Some(it) = items_schema(s) {
        for (i, v) in items.iter().enumerate() {
            value(v, it, &format!("{path}[{i}]"), depth + 1, out);
        }
    }
}

fn list_map(items: &[Value], s: &Value, path: &str, out: &mut Vec<Cause>) {
    if let Some((i, bad)) = items.iter().enumerate().find(|(_, x)| !x.is_object() && !x.is_null()) {
        let rendered = match bad {
            Value::String(st) => go_quote(st),
            other => go_syntax(other),
        };
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {rendered}: must be an object for an array of list-type map"),
            field: field(&format!("{path}[{i}]")),
        });
        return;
    }
    let names: Vec<&str> = kw(s, "x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let keys: Vec<Map<String, Value>> = items
        .iter()
        .map(|x| {
            names
                .iter()
                .filter_map(|k| x.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect()
        })
        .collect();
    for i in non_unique(&keys) {
        out.push(duplicate(path, i, go_syntax(&Value::Object(keys[i].clone()))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Items are counted by their JSON, not compared pair by pair: a list of n items costs O(n)
    /// (a ListenerSet of 10,000 listeners was ~50 M comparisons per write).
    #[test]
    fn repeats_are_found_without_comparing_every_pair() {
        use std::cell::Cell;
        thread_local! { static COMPARED: Cell<usize> = const { Cell::new(0) }; }
        #[derive(serde::Serialize)]
        struct Counted(String);
        impl PartialEq for Counted {
            fn eq(&self, other: &Self) -> bool {
                COMPARED.with(|c| c.set(c.get() + 1));
                self.0 == other.0
            }
        }
        let mut items: Vec<Counted> = (0..2_000).map(|i| Counted(format!("l{i}"))).collect();
        items.extend(["l7", "l7", "l9"].map(|s| Counted(s.into())));
        assert_eq!(non_unique(&items), vec![2_000, 2_002]);
        let compared = COMPARED.with(Cell::get);
        assert!(compared <= 4, "{compared} comparisons for {} items", items.len());
    }

    #[test]
    fn duplicate_map_keys_and_set_elements_are_reported() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "listeners": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                "items": {"type": "object", "properties": {"id": {"type": "string"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
                "items": {"type": "object"}},
        }}}});
        let obj = json!({"spec": {
            "listeners": [{"id": "a"}, {"id": "b"}, {"id": "a"}, {"id": "a"}],
            "tags": ["x", "x"],
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}, {"port": 80}],
        }});
        let errs = validate_list_sets_and_maps(&obj, &s);
        let got: Vec<(String, String)> = errs.into_iter().map(|c| (c.field, c.message)).collect();
        assert_eq!(
            got,
            vec![
                (
                    "spec.listeners[2]".to_string(),
                    "Duplicate value: map[string]interface {}{\"id\":\"a\"}".to_string()
                ),
                (
                    "spec.ports[1]".to_string(),
                    "Duplicate value: map[string]interface {}{\"port\":80, \"protocol\":\"TCP\"}".to_string()
                ),
                ("spec.tags[1]".to_string(), "Duplicate value: \"x\"".to_string()),
            ]
        );
    }
}
