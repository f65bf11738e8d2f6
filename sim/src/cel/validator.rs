//! Evaluating a custom resource's rules, as apiextensions' `cel.Validator` does: each rule runs
//! at the schema node that declares it with `self` bound to that node's value (per element under
//! `items` and `additionalProperties`); transition rules (`oldSelf`) run only where an old value
//! correlates (same property, same map key, same list-map entry), unless `optionalOldSelf`; a
//! rule that does not use `oldSelf` and fails on a value that did not change is a warning, not an
//! error (CRD validation ratcheting).

use std::collections::BTreeMap;
use std::sync::Arc;

use cel::objects::OptionalValue;
use cel::{Context, ExecutionError, Value};
use serde_json::Value as Json;

use super::compile::{compile, Compiled, RuleSpec};
use super::decl::{decl_of, Decl};
use super::library;
use super::value::to_cel;
use crate::error::StatusCause;

/// `celconfig.MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_EXPRESSION_BYTES: usize = 5 * 1024;

/// The compiled rules of one version's schema.
pub struct Validator {
    root: Node,
}

/// Validators compare by identity: each CRD write compiles its own.
impl PartialEq for Validator {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cel::Validator")
    }
}

struct Node {
    /// The schema's `type`, the value kube-apiserver reports in a rule's `Invalid value`.
    ty: String,
    decl: Option<Arc<Decl>>,
    rules: Vec<Compiled>,
    properties: BTreeMap<String, Node>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
    /// `x-kubernetes-list-map-keys` of a list-type map: its items correlate with old items.
    map_keys: Option<Vec<String>>,
    /// `x-kubernetes-map-type: atomic`: properties do not correlate with old ones.
    atomic_map: bool,
}

fn flag(s: &Json, k: &str) -> bool {
    s.get(k).and_then(Json::as_bool) == Some(true)
}

fn has_rules(s: &Json, depth: usize) -> bool {
    if depth > super::MAX_DEPTH {
        return false;
    }
    if s.get("x-kubernetes-validations")
        .and_then(Json::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return true;
    }
    let props = s.get("properties").and_then(Json::as_object);
    props.into_iter().flatten().any(|(_, p)| has_rules(p, depth + 1))
        || s.get("items").is_some_and(|i| has_rules(i, depth + 1))
        || s.get("additionalProperties")
            .is_some_and(|a| a.is_object() && has_rules(a, depth + 1))
}

fn build(s: &Json, resource_root: bool, depth: usize) -> Option<Node> {
    if !has_rules(s, depth) {
        return None;
    }
    let specs: Vec<RuleSpec> = s
        .get("x-kubernetes-validations")
        .and_then(Json::as_array)
        .map(|a| a.iter().map(RuleSpec::from_json).collect())
        .unwrap_or_default();
    let decl = if specs.is_empty() {
        None
    } else {
        decl_of(s, resource_root)
    };
    let rules = match &decl {
        Some(d) => specs.into_iter().map(|r| compile(r, d, s)).collect(),
        None => Vec::new(),
    };
    let properties = s
        .get("properties")
        .and_then(Json::as_object)
        .map(|p| {
            p.iter()
                .filter_map(|(k, v)| build(v, flag(v, super::EMBEDDED_RESOURCE), depth + 1).map(|n| (k.clone(), n)))
                .collect()
        })
        .unwrap_or_default();
    let child = |k: &str| {
        s.get(k)
            .filter(|v| v.is_object())
            .and_then(|v| build(v, flag(v, super::EMBEDDED_RESOURCE), depth + 1))
            .map(Box::new)
    };
    let map_keys = (s.get("x-kubernetes-list-type").and_then(Json::as_str) == Some("map")).then(|| {
        s.get("x-kubernetes-list-map-keys")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    });
    Some(Node {
        ty: s.get("type").and_then(Json::as_str).unwrap_or("").to_string(),
        decl,
        rules,
        properties,
        items: child("items"),
        additional: child("additionalProperties"),
        map_keys,
        atomic_map: s.get("x-kubernetes-map-type").and_then(Json::as_str) == Some("atomic"),
    })
}

impl Validator {
    /// The compiled rules of `schema` (a version's `openAPIV3Schema`), or `None` when it has none.
    pub fn new(schema: &Json) -> Option<Validator> {
        build(schema, true, 0).map(|root| Validator { root })
    }

    /// Evaluate every rule against `new` (and `old` on updates).
    pub fn validate(&self, new: &Json, old: Option<&Json>) -> (Vec<StatusCause>, Vec<String>) {
        let mut run = Run::default();
        run.node(&self.root, "", new, old, false);
        (run.causes, run.warnings)
    }
}

#[derive(Default)]
struct Run {
    causes: Vec<StatusCause>,
    warnings: Vec<String>,
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn field(path: &str) -> String {
    if path.is_empty() {
        "<nil>".into()
    } else {
        path.to_string()
    }
}

/// cel-go's wording of an evaluation error.
pub(crate) fn eval_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::NoSuchOverload(_) => "no such overload".into(),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::IndexOutOfBounds(i) => format!("index out of bounds: {}", cel_display(i)),
        ExecutionError::FunctionError { function, message }
            if function == "int" || function == "uint" || function == "double" =>
        {
            format!("type conversion error from 'string' to '{function}': {message}")
        }
        ExecutionError::FunctionError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn cel_display(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

fn list_key<'a>(item: &'a Json, keys: &[String]) -> Vec<Option<&'a Json>> {
    keys.iter().map(|k| item.get(k)).collect()
}

impl Run {
    fn node(&mut self, n: &Node, path: &str, new: &Json, old: Option<&Json>, parent_ratchet: bool) {
        if new.is_null() {
            return;
        }
        let ratchet = match old {
            Some(o) => o == new,
            None => parent_ratchet,
        };
        if !n.rules.is_empty() {
            self.rules(n, path, new, old, ratchet);
        }
        match new {
            Json::Array(items) => {
                let Some(it) = &n.items else { return };
                let olds: Vec<Json> = match (old, &n.map_keys) {
                    (Some(Json::Array(o)), Some(_)) => o.clone(),
                    _ => Vec::new(),
                };
                for (i, item) in items.iter().enumerate() {
                    let old_item = n
                        .map_keys
                        .as_ref()
                        .and_then(|keys| olds.iter().find(|o| list_key(o, keys) == list_key(item, keys)));
                    self.node(it, &format!("{path}[{i}]"), item, old_item, ratchet);
                }
            }
            Json::Object(m) => {
                let old_map = if n.atomic_map {
                    None
                } else {
                    old.and_then(Json::as_object)
                };
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                if let Some(add) = &n.additional {
                    for k in &keys {
                        let old_v = old_map.and_then(|o| o.get(*k));
                        self.node(add, &format!("{path}[{k}]"), &m[*k], old_v, ratchet);
                    }
                }
                for k in keys {
                    if let Some(p) = n.properties.get(k) {
                        let old_v = old_map.and_then(|o| o.get(k));
                        self.node(p, &child(path, k), &m[k], old_v, ratchet);
                    }
                }
            }
            _ => {}
        }
    }

    fn rules(&mut self, n: &Node, path: &str, new: &Json, old: Option<&Json>, ratchet: bool) {
        let Some(decl) = &n.decl else { return };
        let self_val = to_cel(new, decl);
        let old_val = old.map(|o| to_cel(o, decl));
        for r in &n.rules {
            if let Some(e) = &r.error {
                self.push(
                    false,
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {}: rule compile error: {e}",
                        crate::schema::go_quote(&n.ty)
                    ),
                );
                continue;
            }
            let Some(program) = &r.program else { continue };
            let optional = r.spec.optional_old_self == Some(true);
            if r.uses_old_self && old_val.is_none() && !optional {
                continue;
            }
            let mut ctx = Context::with_env(library::env());
            ctx.add_variable_from_value("self", self_val.clone());
            let old_binding = match (&old_val, optional) {
                (Some(o), false) => Some(o.clone()),
                (Some(o), true) => Some(Value::Opaque(Arc::new(OptionalValue::of(o.clone())))),
                (None, true) => Some(Value::Opaque(Arc::new(OptionalValue::none()))),
                (None, false) => None,
            };
            if let Some(o) = old_binding {
                ctx.add_variable_from_value("oldSelf", o);
            }
            let ty = crate::schema::go_quote(&n.ty);
            let detail = match program.execute(&ctx) {
                Ok(Value::Bool(true)) => continue,
                Ok(_) => None,
                Err(e) => Some(eval_error(&e)),
            };
            if let Some(err) = detail {
                let rule = r.spec.error_string();
                let message = if err == "no such overload" {
                    format!("Invalid value: {ty}: '{err}': call arguments did not match a supported operator, function or macro signature for rule: {rule}")
                } else {
                    format!("Invalid value: {ty}: {err} evaluating rule: {rule}")
                };
                self.push(false, "FieldValueInvalid", path, message);
                continue;
            }
            let at = match &r.field_path {
                Some(fp) if !fp.is_empty() => {
                    if path.is_empty() || fp.starts_with('[') {
                        format!("{path}{fp}")
                    } else {
                        format!("{path}.{fp}")
                    }
                }
                _ => path.to_string(),
            };
            let detail = r
                .message_program
                .as_ref()
                .and_then(|p| match p.execute(&ctx) {
                    Ok(Value::String(s)) => {
                        let t = s.trim();
                        (!t.is_empty() && t.len() <= MAX_MESSAGE_EXPRESSION_BYTES && !t.contains('\n'))
                            .then(|| t.to_string())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| {
                    let m = r.spec.message.trim();
                    if m.is_empty() {
                        format!("failed rule: {}", r.spec.error_string())
                    } else {
                        m.to_string()
                    }
                });
            let (reason, message) = match r.spec.reason.as_deref() {
                Some("FieldValueForbidden") => ("FieldValueForbidden", format!("Forbidden: {detail}")),
                Some("FieldValueRequired") => ("FieldValueRequired", format!("Required value: {detail}")),
                Some("FieldValueDuplicate") => ("FieldValueDuplicate", format!("Duplicate value: {ty}")),
                _ => ("FieldValueInvalid", format!("Invalid value: {ty}: {detail}")),
            };
            self.push(!r.uses_old_self && ratchet, reason, &at, message);
        }
    }

    fn push(&mut self, warn: bool, reason: &str, path: &str, message: String) {
        if warn {
            self.warnings.push(format!("{}: {message}", field(path)));
        } else {
            self.causes.push(StatusCause {
                reason: reason.into(),
                message,
                field: field(path),
            });
        }
    }
}
