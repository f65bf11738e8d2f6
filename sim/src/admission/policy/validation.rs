//! Defaulting and validation of ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding
//! objects, as kube-apiserver's admissionregistration strategy does: the defaults it fills in
//! (`failurePolicy: Fail`, empty selectors, `matchPolicy: Equivalent`, rule `scope: "*"`), the
//! required fields, the enums, and every CEL expression compiled (a 422 names the field and
//! carries cel-go's message).

use serde_json::{json, Value};

use crate::cel::expr::{compile_dyn, Expect};
use crate::error::StatusCause;
use crate::schema::go_quote;

use super::compile::VARS;

fn cause(reason: &str, field: &str, message: String) -> StatusCause {
    StatusCause {
        reason: reason.into(),
        field: field.into(),
        message,
    }
}

fn required(field: &str, detail: &str) -> StatusCause {
    let m = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    cause("FieldValueRequired", field, m)
}

fn unsupported(field: &str, v: &str, allowed: &[&str]) -> StatusCause {
    let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    cause(
        "FieldValueNotSupported",
        field,
        format!("Unsupported value: {v:?}: supported values: {}", list.join(", ")),
    )
}

fn expression(out: &mut Vec<StatusCause>, field: &str, v: &Value, key: &str, expect: Expect, needed: bool) {
    let src = v.get(key).and_then(Value::as_str).unwrap_or("");
    if src.trim().is_empty() {
        if needed {
            out.push(required(&format!("{field}.{key}"), ""));
        }
        return;
    }
    if let Err(e) = compile_dyn(src, VARS, expect) {
        out.push(cause(
            "FieldValueInvalid",
            &format!("{field}.{key}"),
            format!("Invalid value: {}: {e}", go_quote(src)),
        ));
    }
}

/// Defaults of a `MatchResources` (and its rules) in place.
fn default_match(m: &mut Value) {
    let Some(o) = m.as_object_mut() else { return };
    o.entry("namespaceSelector").or_insert_with(|| json!({}));
    o.entry("objectSelector").or_insert_with(|| json!({}));
    o.entry("matchPolicy").or_insert_with(|| json!("Equivalent"));
    for k in ["resourceRules", "excludeResourceRules"] {
        for r in o.get_mut(k).and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(r) = r.as_object_mut() {
                r.entry("scope").or_insert_with(|| json!("*"));
            }
        }
    }
}

fn check_rules(out: &mut Vec<StatusCause>, m: &Value, field: &str, require: bool) {
    let rules = m.get("resourceRules").and_then(Value::as_array);
    if require && rules.is_none_or(|r| r.is_empty()) {
        out.push(required(&format!("{field}.resourceRules"), ""));
    }
    for (i, r) in rules.into_iter().flatten().enumerate() {
        for k in ["apiGroups", "apiVersions", "operations", "resources"] {
            if r.get(k).and_then(Value::as_array).is_none_or(|a| a.is_empty()) {
                out.push(required(&format!("{field}.resourceRules[{i}].{k}"), ""));
            }
        }
        for (j, op) in r
            .get("operations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let op = op.as_str().unwrap_or("");
            if !["*", "CREATE", "UPDATE", "DELETE", "CONNECT"].contains(&op) {
                out.push(unsupported(
                    &format!("{field}.resourceRules[{i}].operations[{j}]"),
                    op,
                    &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"],
                ));
            }
        }
    }
}

/// Default and validate a ValidatingAdmissionPolicy.
pub fn policy(obj: &mut Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return vec![required("spec", "")];
    };
    if let Some(o) = spec.as_object_mut() {
        o.entry("failurePolicy").or_insert_with(|| json!("Fail"));
    }
    let fp = spec
        .get("failurePolicy")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if fp != "Fail" && fp != "Ignore" {
        out.push(unsupported("spec.failurePolicy", &fp, &["Fail", "Ignore"]));
    }
    match spec.get_mut("matchConstraints") {
        Some(m) if m.is_object() => {
            default_match(m);
            check_rules(&mut out, m, "spec.matchConstraints", true);
        }
        _ => out.push(required("spec.matchConstraints", "")),
    }
    let validations = spec
        .get("validations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let audits = spec
        .get("auditAnnotations")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if validations.is_empty() && !audits {
        out.push(required(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        ));
    }
    for (i, v) in validations.iter().enumerate() {
        let f = format!("spec.validations[{i}]");
        expression(&mut out, &f, v, "expression", Expect::Bool, true);
        expression(&mut out, &f, v, "messageExpression", Expect::String, false);
        if let Some(r) = v.get("reason").and_then(Value::as_str) {
            let allowed = ["Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"];
            if !allowed.contains(&r) {
                out.push(unsupported(&format!("{f}.reason"), r, &allowed));
            }
        }
    }
    for (key, expect) in [("matchConditions", Expect::Bool), ("variables", Expect::Any)] {
        for (i, c) in spec
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let f = format!("spec.{key}[{i}]");
            if c.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
                out.push(required(&format!("{f}.name"), ""));
            }
            expression(&mut out, &f, c, "expression", expect, true);
        }
    }
    out
}

/// Default and validate a ValidatingAdmissionPolicyBinding.
pub fn binding(obj: &mut Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return vec![required("spec", "")];
    };
    if spec.get("policyName").and_then(Value::as_str).is_none_or(str::is_empty) {
        out.push(required("spec.policyName", ""));
    }
    if let Some(m) = spec.get_mut("matchResources").filter(|m| m.is_object()) {
        default_match(m);
        check_rules(&mut out, m, "spec.matchResources", false);
    }
    let actions: Vec<String> = spec
        .get("validationActions")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default();
    if actions.is_empty() {
        out.push(required("spec.validationActions", ""));
    }
    for (i, a) in actions.iter().enumerate() {
        let f = format!("spec.validationActions[{i}]");
        if !["Audit", "Deny", "Warn"].contains(&a.as_str()) {
            out.push(unsupported(&f, a, &["Audit", "Deny", "Warn"]));
        } else if actions[..i].contains(a) {
            out.push(cause("FieldValueDuplicate", &f, format!("Duplicate value: {a:?}")));
        }
    }
    if actions.iter().any(|a| a == "Deny") && actions.iter().any(|a| a == "Warn") {
        out.push(cause(
            "FieldValueInvalid",
            "spec.validationActions",
            format!("Invalid value: []string{{{}}}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
                actions.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")),
        ));
    }
    out
}
