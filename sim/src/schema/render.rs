//! Go-compatible value rendering, so messages read exactly like kube-apiserver's.

use serde_json::Value;
use std::fmt::Write as _;

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

/// Go `strconv.Quote` / `%q`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
