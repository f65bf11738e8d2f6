//! Structural pruning, as `apiextensions-apiserver/pkg/apiserver/schema/pruning` followed by
//! `defaulting.PruneNonNullableNullsWithoutDefaults`.

use serde_json::Value;

use super::access::{
    additional, additional_schema, child_index, child_key, default_of, flag, is_meta_field, items_schema, nullable,
    property, Additional,
};
use super::{EMBEDDED_RESOURCE, MAX_DEPTH, PRESERVE_UNKNOWN};

/// Remove fields the schema does not declare (structural pruning) and return the dotted paths removed, e.g. ["spec.foo", "status.bar.baz"].
/// Respect `x-kubernetes-preserve-unknown-fields: true` (keep everything below), `x-kubernetes-embedded-resource: true` (keep apiVersion, kind, metadata of the embedded object), `additionalProperties` (schema for map values; `additionalProperties: true`/absent-with-no-properties semantics as in k8s), `x-kubernetes-int-or-string`.
/// At the object root always keep `apiVersion`, `kind`, `metadata` (metadata is not pruned by this function).
///
/// Semantics follow apiextensions' pruning algorithm exactly:
/// * an object whose schema has neither a matching property nor `additionalProperties` loses
///   the field; `additionalProperties: true` keeps the keys but prunes their values as if they had
///   no schema (nested objects are emptied; scalars survive). `additionalProperties: false`
///   (rejected by the real server in CRDs) prunes unknown keys.
/// * below `x-kubernetes-preserve-unknown-fields: true`, unknown fields are kept, but fields that
///   *are* declared are still pruned by their own schema.
/// * the returned paths are sorted, use `.` between keys and `[i]` for list indices.
///
/// Afterwards, like the real decoder (`PruneNonNullableNullsWithoutDefaults`), `null` values of
/// fields whose schema is neither `nullable` nor has a `default` are removed. Those removals are
/// not reported in the returned list (the real server does not report them either).
pub fn prune_unknown(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    prune_rec(obj, Some(schema), true, "", &mut out, 0);
    prune_nulls(obj, Some(schema), true, 0);
    out.sort();
    out
}

fn prune_rec(x: &mut Value, s: Option<&Value>, root: bool, path: &str, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(sch) = s {
        if flag(sch, PRESERVE_UNKNOWN) {
            skip_prune(x, sch, root, path, out, depth);
            return;
        }
    }
    match x {
        Value::Object(m) => {
            let Some(sch) = s else {
                for k in m.keys() {
                    out.push(child_key(path, k));
                }
                m.clear();
                return;
            };
            let embedded = root || flag(sch, EMBEDDED_RESOURCE);
            let mut remove = Vec::new();
            for (k, v) in m.iter_mut() {
                if embedded && is_meta_field(k) {
                    continue;
                }
                if let Some(prop) = property(sch, k) {
                    prune_rec(v, Some(prop), false, &child_key(path, k), out, depth + 1);
                } else {
                    match additional(sch) {
                        Additional::Schema(a) => prune_rec(v, Some(a), false, &child_key(path, k), out, depth + 1),
                        Additional::Bool(true) => prune_rec(v, None, false, &child_key(path, k), out, depth + 1),
                        Additional::Bool(false) | Additional::Absent => remove.push(k.clone()),
                    }
                }
            }
            for k in remove {
                m.remove(&k);
                out.push(child_key(path, &k));
            }
        }
        Value::Array(items) => {
            let it = s.and_then(items_schema);
            for (i, v) in items.iter_mut().enumerate() {
                prune_rec(v, it, false, &child_index(path, i), out, depth + 1);
            }
        }
        _ => {}
    }
}

fn skip_prune(x: &mut Value, s: &Value, root: bool, path: &str, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match x {
        Value::Object(m) => {
            let embedded = root || flag(s, EMBEDDED_RESOURCE);
            for (k, v) in m.iter_mut() {
                if embedded && is_meta_field(k) {
                    continue;
                }
                if let Some(prop) = property(s, k) {
                    prune_rec(v, Some(prop), false, &child_key(path, k), out, depth + 1);
                } else {
                    match additional(s) {
                        Additional::Schema(a) => prune_rec(v, Some(a), false, &child_key(path, k), out, depth + 1),
                        Additional::Bool(true) => prune_rec(v, None, false, &child_key(path, k), out, depth + 1),
                        Additional::Bool(false) | Additional::Absent => {}
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(it) = items_schema(s) {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(v, it, false, &child_index(path, i), out, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// `PruneNonNullableNullsWithoutDefaults`: drop `null`s of fields that are neither nullable nor
/// defaulted. The root's apiVersion/kind/metadata are left alone.
fn prune_nulls(x: &mut Value, s: Option<&Value>, root: bool, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match x {
        Value::Object(m) => {
            let mut remove = Vec::new();
            for (k, v) in m.iter_mut() {
                if root && is_meta_field(k) {
                    continue;
                }
                let sub = s.and_then(|sch| property(sch, k).or_else(|| additional_schema(sch)));
                if v.is_null() {
                    if let Some(sub) = sub {
                        if !nullable(sub) && default_of(sub).is_none() {
                            remove.push(k.clone());
                        }
                    }
                } else {
                    prune_nulls(v, sub, false, depth + 1);
                }
            }
            for k in remove {
                m.remove(&k);
            }
        }
        Value::Array(items) => {
            let it = s.and_then(items_schema);
            for v in items.iter_mut() {
                prune_nulls(v, it, false, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
