//! Go-compatible value rendering, so messages read exactly like kube-apiserver's.

use serde_json::Value;

pub(crate) use crate::go_format::go_quote;
use crate::go_format::{go_float, go_json_float};

/// A bad value as `field.Error.ErrorBody` prints it.
pub(super) fn render_bad(v: &Value) -> String {
    match v {
        Value::Null => "\"null\"".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => go_quote(s),
        other => go_json(other),
    }
}

/// Go `encoding/json` rendering (numbers without a spurious `.0`).
pub(super) fn go_json(v: &Value) -> String {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => go_json_float(n.as_f64().unwrap_or(0.0)),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
