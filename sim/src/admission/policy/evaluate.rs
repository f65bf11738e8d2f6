//! Running one policy for one request, as the CEL validator does: match conditions (all must
//! be true; an error falls to the failure policy), variables, then each validation; a false
//! validation's message is `messageExpression`'s result, else `message`, else
//! `failed expression: <expression>`; an evaluation error reads
//! `expression '<expression>' resulted in error: <error>`.

use cel::Value;
use serde_json::{json, Value as Json};

use crate::auth::UserInfo;
use crate::cel::expr::{json_value, map_value};

use super::compile::Policy;
use crate::admission::Attributes;

/// `celconfig.MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// The outcome of one validation (or of the match conditions).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Deny { message: String, reason: Option<String> },
    Error(String),
}

/// The AdmissionRequest the expressions see as `request`.
pub fn request_json(a: &Attributes, user: &UserInfo) -> Json {
    let kind = json!({"group": a.rt.group, "version": a.rt.version, "kind": a.rt.kind});
    let resource = json!({"group": a.rt.group, "version": a.rt.version, "resource": a.rt.plural});
    let mut r = json!({
        "uid": uuid::Uuid::new_v4().to_string(),
        "kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
        "name": a.name, "namespace": a.namespace, "operation": a.operation,
        "userInfo": user.to_json(), "dryRun": a.dry_run,
    });
    if !a.subresource.is_empty() {
        r["subResource"] = json!(a.subresource);
        r["requestSubResource"] = json!(a.subresource);
    }
    r
}

fn error_in(source: &str, err: &str) -> String {
    format!("expression '{source}' resulted in error: {err}")
}

/// The policy's decisions on a request (empty: admitted, or not selected by its conditions).
pub fn evaluate(p: &Policy, a: &Attributes, user: &UserInfo, namespace: Option<&Json>) -> Vec<Decision> {
    let mut vars: Vec<(&str, Value)> = vec![
        ("object", a.object.map_or(Value::Null, json_value)),
        ("oldObject", a.old_object.map_or(Value::Null, json_value)),
        ("request", json_value(&request_json(a, user))),
        ("params", Value::Null),
        ("namespaceObject", namespace.map_or(Value::Null, json_value)),
    ];
    // Match conditions: any false skips the policy; errors (with none false) fail it.
    let mut errors = Vec::new();
    for c in &p.conditions {
        match c.expr.eval(&vars) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => return Vec::new(),
            Ok(_) => errors.push(error_in(&c.expr.source, "no such overload")),
            Err(e) => errors.push(error_in(&c.expr.source, &e)),
        }
    }
    if !errors.is_empty() {
        return vec![Decision::Error(errors.join(", "))];
    }
    // Variables in order, each seeing the ones before it; an error is reported by the
    // validations that use the variable.
    let mut values = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for v in &p.variables {
        vars.push(("variables", map_value(values.clone())));
        match v.expr.eval(&vars) {
            Ok(x) => values.push((v.name.clone(), x)),
            Err(e) => failed.push((v.name.clone(), error_in(&v.expr.source, &e))),
        }
        vars.pop();
    }
    vars.push(("variables", map_value(values)));
    let mut out = Vec::new();
    for v in &p.validations {
        let source = &v.expr.source;
        if let Some((_, e)) = failed.iter().find(|(n, _)| source.contains(&format!("variables.{n}"))) {
            out.push(Decision::Error(e.clone()));
            continue;
        }
        match v.expr.eval(&vars) {
            Ok(Value::Bool(true)) => continue,
            Ok(Value::Bool(false)) => {}
            Ok(_) => {
                out.push(Decision::Error(error_in(source, "no such overload")));
                continue;
            }
            Err(e) => {
                out.push(Decision::Error(error_in(source, &e)));
                continue;
            }
        }
        let from_expr = v.message_expr.as_ref().and_then(|m| match m.eval(&vars) {
            Ok(Value::String(s)) => {
                let t = s.trim();
                (!t.is_empty() && t.len() <= MAX_MESSAGE_BYTES && !t.contains('\n')).then(|| t.to_string())
            }
            _ => None,
        });
        let message = from_expr
            .or_else(|| Some(v.message.trim().to_string()).filter(|m| !m.is_empty()))
            .unwrap_or_else(|| format!("failed expression: {}", source.trim()));
        out.push(Decision::Deny {
            message,
            reason: v.reason.clone(),
        });
    }
    out
}
