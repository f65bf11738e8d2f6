//! metav1.LabelSelector JSON objects (`{matchLabels, matchExpressions}`) as label selectors,
//! and their printed form.

use super::label::LabelSelector;
use super::requirement::{Operator, Requirement};
use super::validation::go_quote;

/// `metav1.FormatLabelSelector` on a metav1.LabelSelector JSON value: `<none>` for an
/// empty selector and `<error>` for an invalid one (used by printers, e.g. `-o wide`).
pub fn format_label_selector_json(v: &serde_json::Value) -> String {
    match from_label_selector_json(v) {
        Err(_) => "<error>".to_string(),
        Ok(sel) => {
            let s = sel.to_string();
            if s.is_empty() {
                "<none>".to_string()
            } else {
                s
            }
        }
    }
}

/// Convert a metav1.LabelSelector JSON object (`{matchLabels, matchExpressions}`) into a
/// [`LabelSelector`], as `metav1.LabelSelectorAsSelector` does. JSON `null` yields
/// `labels.Nothing()`; `{}` yields `labels.Everything()`.
pub fn from_label_selector_json(v: &serde_json::Value) -> Result<LabelSelector, String> {
    use serde_json::Value;
    let obj = match v {
        Value::Null => return Ok(LabelSelector::nothing()),
        Value::Object(m) => m,
        other => {
            return Err(format!(
                "label selector must be an object, got {}",
                json_type_name(other)
            ))
        }
    };
    let mut reqs = Vec::new();
    match obj.get("matchLabels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ml)) => {
            for (k, v) in ml {
                let Value::String(v) = v else {
                    return Err(format!(
                        "matchLabels[{k}]: value must be a string, got {}",
                        json_type_name(v)
                    ));
                };
                reqs.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
            }
        }
        Some(other) => return Err(format!("matchLabels must be an object, got {}", json_type_name(other))),
    }
    match obj.get("matchExpressions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(exprs)) => {
            for e in exprs {
                let Value::Object(e) = e else {
                    return Err("matchExpressions entries must be objects".to_string());
                };
                let key = match e.get("key") {
                    Some(Value::String(s)) => s.as_str(),
                    None | Some(Value::Null) => "",
                    Some(_) => return Err("matchExpressions[].key must be a string".to_string()),
                };
                let op_str = match e.get("operator") {
                    Some(Value::String(s)) => s.as_str(),
                    None | Some(Value::Null) => "",
                    Some(_) => return Err("matchExpressions[].operator must be a string".to_string()),
                };
                let op = match op_str {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => return Err(format!("{} is not a valid label selector operator", go_quote(other))),
                };
                let values = match e.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(vs)) => {
                        let mut out = Vec::with_capacity(vs.len());
                        for v in vs {
                            match v {
                                Value::String(s) => out.push(s.clone()),
                                _ => return Err("matchExpressions[].values must be strings".to_string()),
                            }
                        }
                        out
                    }
                    Some(_) => return Err("matchExpressions[].values must be an array".to_string()),
                };
                reqs.push(Requirement::new(key, op, values)?);
            }
        }
        Some(other) => {
            return Err(format!(
                "matchExpressions must be an array, got {}",
                json_type_name(other)
            ))
        }
    }
    // len(matchLabels)+len(matchExpressions) == 0 → Everything.
    Ok(LabelSelector::from_requirements(reqs))
}

fn json_type_name(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
