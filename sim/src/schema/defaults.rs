//! Defaulting, as `apiextensions-apiserver/pkg/apiserver/schema/defaulting.Default`.

use serde_json::Value;

use super::access::{additional_schema, default_of, items_schema, nullable, properties, property};
use super::MAX_DEPTH;

/// Apply `default` values from the schema in place (like apiextensions structural defaulting: defaults apply when a property is absent; nested defaults inside defaulted objects too; also items of arrays and additionalProperties values).
///
/// Like the real server, a `null` in a non-nullable field that has a default is replaced by the
/// default; defaults are deep-copied, and defaults are never looked up inside
/// `anyOf`/`oneOf`/`allOf`/`not`.
pub fn apply_defaults(obj: &mut Value, schema: &Value) {
    default_rec(obj, schema, 0);
}

fn default_rec(x: &mut Value, s: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match x {
        Value::Object(m) => {
            if let Some(props) = properties(s) {
                for (k, prop) in props {
                    let Some(d) = default_of(prop) else {
                        continue;
                    };
                    let apply = match m.get(k) {
                        None => true,
                        Some(Value::Null) => !nullable(prop),
                        Some(_) => false,
                    };
                    if apply {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            let addl = additional_schema(s);
            for (k, v) in m.iter_mut() {
                if let Some(prop) = property(s, k) {
                    default_rec(v, prop, depth + 1);
                } else if let Some(a) = addl {
                    if v.is_null() && !nullable(a) {
                        if let Some(d) = default_of(a) {
                            *v = d.clone();
                        }
                    }
                    default_rec(v, a, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(it) = items_schema(s) {
                for v in items.iter_mut() {
                    if v.is_null() && !nullable(it) {
                        if let Some(d) = default_of(it) {
                            *v = d.clone();
                        }
                    }
                    default_rec(v, it, depth + 1);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
