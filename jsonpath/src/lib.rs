//! The Kubernetes JSONPath dialect (`k8s.io/client-go/util/jsonpath`), as used by CRD
//! `additionalPrinterColumns` and `kubectl -o jsonpath`.
//!
//! The parser is a port of the Go parser, including its quirks:
//! * `['a.b']` is re-parsed as `.a.b` (two fields), exactly like upstream; to address a
//!   key containing dots use backslash escapes: `.metadata.labels.app\.kubernetes\.io/name`.
//! * Missing keys yield no result (the server calls `AllowMissingKeys(true)`).
//! * Filter comparisons between different JSON types (e.g. an int and a float, or a
//!   missing field) are evaluation errors.
//!
//! [`eval`] treats evaluation errors (array index out of range, comparing incompatible
//! types, ...) as "no match"; only a malformed expression is an `Err`.
//!
//! Submodules: `parse` turns an expression into its `ast` (with `unquote` for string literals);
//! `eval` walks that over a JSON value (with `compare` for filter comparisons).

use serde_json::Value;

pub mod go_format;

use go_format::go_float;

mod ast;
mod compare;
mod eval;
mod parse;
mod unquote;

use eval::exec_nodes;
use parse::parse_template;

/// Evaluate `expr` against `obj`, returning all matches in order (flattened over the
/// template's segments). Accepts `{...}` templates (text outside braces is returned as
/// string values) and bare expressions such as `.spec.replicas`, which are wrapped in
/// braces like the apiserver does for CRD columns.
pub fn eval(obj: &Value, expr: &str) -> Result<Vec<Value>, String> {
    match eval_results(obj, expr) {
        Ok(segments) => Ok(segments.into_iter().flatten().collect()),
        Err(EvalError::Parse(e)) => Err(e),
        Err(EvalError::Runtime(_)) => Ok(Vec::new()),
    }
}

/// Error from [`eval_results`].
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// The expression is malformed.
    Parse(String),
    /// The expression is fine but failed on this object (what `FindResults` returns).
    Runtime(String),
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Parse(e) | EvalError::Runtime(e) => f.write_str(e),
        }
    }
}

/// Like `JSONPath.FindResults`: one result list per template segment.
pub fn eval_results(obj: &Value, expr: &str) -> Result<Vec<Vec<Value>>, EvalError> {
    let nodes = parse_template(expr).map_err(EvalError::Parse)?;
    let mut out = Vec::new();
    exec_nodes(&nodes, obj, &mut out).map_err(EvalError::Runtime)?;
    Ok(out)
}

/// Parse-only check (e.g. for validating CRD `jsonPath`s).
pub fn validate(expr: &str) -> Result<(), String> {
    parse_template(expr).map(|_| ())
}

/// Render a value the way `JSONPath.PrintResults` does (Go `fmt.Fprint` of the decoded
/// JSON): strings raw, `map[k:v ...]`, `[a b]`, `<nil>` for null.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                go_float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(to_text).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", k, m.get(k).map(to_text).unwrap_or_default()))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests;

/// A template parsed as `JSONPath.Parse` does (text outside braces is literal, a bare
/// expression is not wrapped), for `kubectl -o jsonpath=` and custom columns.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<ast::Node>,
}

impl Template {
    /// Parse `text` exactly as client-go does; the error is client-go's words.
    pub fn parse(text: &str) -> Result<Template, String> {
        parse::parse_exact(text).map(|nodes| Template { nodes })
    }

    /// `FindResults`: one result list per template segment (missing keys yield none).
    pub fn find_results(&self, obj: &Value) -> Result<Vec<Vec<Value>>, String> {
        let mut out = Vec::new();
        exec_nodes(&self.nodes, obj, &mut out)?;
        Ok(out)
    }
}
