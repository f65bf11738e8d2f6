//! Validation, as `apiextensions-apiserver/pkg/apiserver/validation.ValidateCustomResource`:
//! the type, composition (anyOf/oneOf/allOf/not), array, enum and object checks, in
//! kube-openapi's order. String and number constraints live in `scalar`, formats in `format`.

use serde_json::{Map, Value};
use std::fmt::Write as _;

use super::access::{
    additional, child_index, child_key, flag, int_kw, kw, nullable, properties, sorted_keys, Additional,
};
use super::cause::{
    cause, composite, invalid, too_many, type_invalid, type_invalid_value, REASON_NOT_SUPPORTED, REASON_REQUIRED,
};
use super::format::{format_ok, supported_format};
use super::render::{go_json, go_quote, render_bad};
use super::scalar::{check_number, check_string, is_float64_json_integer};
use super::{Cause, INT_OR_STRING, MAX_DEPTH};

/// Validate against the schema. Return every error found (not just the first).
/// Support: type (object, array, string, integer, number, boolean), nullable (null allowed only when nullable: true; otherwise an explicit null is an error... check what kube-apiserver does -- note that for fields that are not nullable, apiextensions PRUNES/drops nulls in some cases; follow the real behaviour as best you can determine it), required, enum, minimum/maximum/exclusiveMinimum/exclusiveMaximum, minLength/maxLength, pattern (ECMA-ish regex; use the `regex` crate), minItems/maxItems, minProperties/maxProperties, uniqueItems, format (at least `int32`, `int64`, `date-time`; unknown formats ignored), `x-kubernetes-int-or-string` (integer or string allowed), `anyOf`/`oneOf`/`allOf`/`not` (as validation-only constraints, as structural schemas allow), `x-kubernetes-preserve-unknown-fields`, `additionalProperties`. CEL (`x-kubernetes-validations`) is evaluated separately, by [`crate::cel`].
/// The `metadata` property at the root is not validated by this function (the server validates names itself).
///
/// See the [module documentation](crate::schema) for the exact wording and the known
/// differences from kube-apiserver.
pub fn validate(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    validate_rec(obj, schema, "", 0, &mut out);
    out
}

/// JSON type name of a value, as kube-openapi infers it (integers are numbers that fit int64).
fn data_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => {
            if n.is_i64() {
                "integer"
            } else {
                "number"
            }
        }
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn schema_types(s: &Value) -> Vec<&str> {
    if flag(s, INT_OR_STRING) {
        return vec!["integer", "string"];
    }
    match kw(s, "type") {
        Some(Value::String(t)) if !t.is_empty() => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn validate_rec(data: &Value, s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    if depth > MAX_DEPTH || !s.is_object() {
        return;
    }
    let types = schema_types(s);
    let format = supported_format(s);

    if data.is_null() {
        // Only the type and enum validators run for nil data.
        if !types.is_empty() && !types.contains(&"null") && !nullable(s) {
            out.push(type_invalid(path, &types.join(","), "null"));
        }
        check_enum(data, s, path, out);
        return;
    }

    check_type(data, &types, format.as_ref().map(|f| f.0), path, out);
    check_composition(data, s, path, depth, out);
    if let Value::String(st) = data {
        check_string(st, s, path, out);
        if let Some((name, normalized)) = &format {
            if !format_ok(normalized, st) {
                out.push(type_invalid_value(path, name, st));
            }
        }
    }
    if let Value::Number(n) = data {
        check_number(n, s, path, out);
    }
    if let Value::Array(items) = data {
        check_array(items, s, path, depth, out);
    }
    check_enum(data, s, path, out);
    if let Value::Object(m) = data {
        check_object(m, s, path, depth, out);
    }
}

fn check_type(data: &Value, types: &[&str], format: Option<&str>, path: &str, out: &mut Vec<Cause>) {
    if types.is_empty() && format.is_none() {
        return;
    }
    let dt = data_type(data);
    let string_or_array = data.is_string() || data.is_array();
    let has = |t: &str| types.contains(&t);
    let is_float_int = dt == "number" && has("integer") && data.as_f64().map(is_float64_json_integer).unwrap_or(false);
    let is_int_float = dt == "integer" && has("number");
    let matches = has(dt) || is_float_int || is_int_float;

    if let Some(f) = format {
        if !string_or_array && !matches {
            let data_format = match dt {
                "integer" => "int64",
                "number" => "float64",
                _ => "",
            };
            out.push(type_invalid(path, f, data_format));
            return;
        }
        if !(has("number") || has("integer")) && string_or_array {
            return;
        }
    }
    if !matches {
        out.push(type_invalid(path, &types.join(","), dt));
    }
}

fn sub_validate(data: &Value, s: &Value, path: &str, depth: usize) -> Vec<Cause> {
    let mut v = Vec::new();
    validate_rec(data, s, path, depth + 1, &mut v);
    v
}

fn check_composition(data: &Value, s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    // Quoted only for a message: most nodes have none to write.
    let qpath = || go_quote(path);

    if let Some(Value::Array(any_of)) = kw(s, "anyOf") {
        if !any_of.is_empty() {
            let mut best: Option<Vec<Cause>> = None;
            let mut succeeded = false;
            for sub in any_of {
                let r = sub_validate(data, sub, path, depth);
                if r.is_empty() {
                    succeeded = true;
                    best = None;
                    break;
                }
                if best.as_ref().is_none_or(|b| r.len() < b.len()) {
                    best = Some(r);
                }
            }
            if !succeeded {
                out.push(composite(format!(
                    "{} must validate at least one schema (anyOf)",
                    qpath()
                )));
            }
            if let Some(b) = best {
                out.extend(b);
            }
        }
    }

    if let Some(Value::Array(one_of)) = kw(s, "oneOf") {
        if !one_of.is_empty() {
            let mut best: Option<Vec<Cause>> = None;
            let mut validated = 0usize;
            for sub in one_of {
                let r = sub_validate(data, sub, path, depth);
                if r.is_empty() {
                    validated += 1;
                    best = None;
                    continue;
                }
                if validated == 0 && best.as_ref().is_none_or(|b| r.len() < b.len()) {
                    best = Some(r);
                }
            }
            if validated != 1 {
                let extra = if validated == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {validated} valid alternatives")
                };
                out.push(composite(format!(
                    "{} must validate one and only one schema (oneOf). {extra}",
                    qpath()
                )));
                if let Some(b) = best {
                    out.extend(b);
                }
            }
        }
    }

    if let Some(Value::Array(all_of)) = kw(s, "allOf") {
        if !all_of.is_empty() {
            let mut validated = 0usize;
            for sub in all_of {
                let r = sub_validate(data, sub, path, depth);
                if r.is_empty() {
                    validated += 1;
                }
                out.extend(r);
            }
            if validated != all_of.len() {
                let extra = if validated == 0 { ". None validated" } else { "" };
                out.push(composite(format!(
                    "{} must validate all the schemas (allOf){extra}",
                    qpath()
                )));
            }
        }
    }

    if let Some(not) = kw(s, "not") {
        if not.is_object() && sub_validate(data, not, path, depth).is_empty() {
            out.push(composite(format!("{} must not validate the schema (not)", qpath())));
        }
    }
}

fn check_array(items: &[Value], s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    match kw(s, "items") {
        Some(it @ Value::Object(_)) => {
            for (i, v) in items.iter().enumerate() {
                validate_rec(v, it, &child_index(path, i), depth + 1, out);
            }
        }
        Some(Value::Array(tuple)) => {
            for (i, (v, it)) in items.iter().zip(tuple.iter()).enumerate() {
                validate_rec(v, it, &child_index(path, i), depth + 1, out);
            }
        }
        _ => {}
    }
    let len = items.len();
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    if let Some(min) = int_kw(s, "minItems") {
        if len_i < min {
            out.push(invalid(
                path,
                &len.to_string(),
                &format!("{path} in body should have at least {min} items"),
            ));
        }
    }
    if let Some(max) = int_kw(s, "maxItems") {
        if len_i > max {
            out.push(too_many(path, len, max));
        }
    }
    if flag(s, "uniqueItems") {
        let dup = items
            .iter()
            .enumerate()
            .any(|(i, a)| items.get(..i).unwrap_or(&[]).iter().any(|b| a == b));
        if dup {
            out.push(invalid(
                path,
                "\"\"",
                &format!("{path} in body shouldn't contain duplicates"),
            ));
        }
    }
}

fn enum_eq(data: &Value, e: &Value) -> bool {
    match (data, e) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        _ => data == e,
    }
}

fn check_enum(data: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(Value::Array(values)) = kw(s, "enum") else {
        return;
    };
    if values.is_empty() || values.iter().any(|e| enum_eq(data, e)) {
        return;
    }
    let supported: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(st) => go_quote(st),
            other => go_quote(&go_json(other)),
        })
        .collect();
    let mut message = format!("Unsupported value: {}", render_bad(data));
    if !supported.is_empty() {
        let _ = write!(message, ": supported values: {}", supported.join(", "));
    }
    out.push(cause(REASON_NOT_SUPPORTED, path, message));
}

fn check_object(m: &Map<String, Value>, s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    let root = depth == 0 && path.is_empty();
    let n = m.len();
    let n_i = i64::try_from(n).unwrap_or(i64::MAX);
    // kube-openapi returns early on min/maxProperties failures.
    if let Some(min) = int_kw(s, "minProperties") {
        if n_i < min {
            out.push(invalid(
                path,
                &n.to_string(),
                &format!("{path} in body should have at least {min} properties"),
            ));
            return;
        }
    }
    if let Some(max) = int_kw(s, "maxProperties") {
        if n_i > max {
            out.push(too_many(path, n, max));
            return;
        }
    }

    let props = properties(s);
    let declared = |k: &str| props.is_some_and(|p| p.contains_key(k));
    match additional(s) {
        Additional::Bool(false) => {
            for k in sorted_keys(m) {
                if declared(k) || (root && k == "metadata") {
                    continue;
                }
                out.push(invalid(
                    path,
                    &go_quote(k),
                    &format!("{path}.{k} in body is a forbidden property"),
                ));
            }
        }
        Additional::Schema(a) => {
            for k in sorted_keys(m) {
                if declared(k) || (root && k == "metadata") {
                    continue;
                }
                if let Some(v) = m.get(k) {
                    validate_rec(v, a, &format!("{path}.{k}"), depth + 1, out);
                }
            }
        }
        Additional::Bool(true) | Additional::Absent => {}
    }

    if let Some(props) = props {
        for k in sorted_keys(props) {
            if root && k == "metadata" {
                continue;
            }
            if let (Some(v), Some(prop)) = (m.get(k), props.get(k)) {
                validate_rec(v, prop, &child_key(path, k), depth + 1, out);
            }
        }
    }

    if let Some(Value::Array(required)) = kw(s, "required") {
        for k in required.iter().filter_map(Value::as_str) {
            if root && k == "metadata" {
                continue;
            }
            if !m.contains_key(k) {
                out.push(cause(
                    REASON_REQUIRED,
                    &format!("{path}.{k}"),
                    "Required value".to_string(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
