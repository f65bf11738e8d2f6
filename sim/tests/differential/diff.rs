//! The comparison of two normalised answers: every field, in both directions.

use serde_json::{json, Map, Value};

use crate::harness::Resp;

/// Headers of the transport or of the moment, never compared: their presence and values
/// depend on the connection (HTTP/1.1 to baton-sim, HTTP/2 over TLS to kube-apiserver) and
/// the clock.
const TRANSPORT_HEADERS: &[&str] = &[
    "date",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// Headers of API Priority and Fairness (the uids of the FlowSchema and PriorityLevel that
/// admitted the request), never compared: baton-sim has no FlowSchemas or priority levels (only
/// a per-user limit), so it sends none.
const APF_HEADERS: &[&str] = &["x-kubernetes-pf-flowschema-uid", "x-kubernetes-pf-prioritylevel-uid"];

/// One field that differs.
#[derive(Debug, Clone)]
pub struct Difference {
    /// The request kind it was found in.
    pub kind: String,
    /// Where: `code`, `headers/<name>`, `body/<path>` (slash-separated keys and indexes).
    pub path: String,
    /// The normalised values, compact JSON (`-` for absent).
    pub sim: String,
    pub real: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {}\n    baton-sim:      {}\n    kube-apiserver: {}",
            self.kind, self.path, self.sim, self.real
        )
    }
}

/// An answer as one JSON value: `{code, headers, body}`, the headers by lower-case name, each
/// a list of values.
pub fn response_value(r: &Resp) -> Value {
    let mut headers = Map::new();
    for name in r.headers.keys() {
        let n = name.as_str().to_ascii_lowercase();
        if TRANSPORT_HEADERS.contains(&n.as_str()) || APF_HEADERS.contains(&n.as_str()) {
            continue;
        }
        let values: Vec<Value> = r
            .headers
            .get_all(name)
            .iter()
            .map(|v| match n.as_str() {
                // One per request.
                "audit-id" => json!("<audit-id>"),
                _ => Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            })
            .collect();
        headers.insert(n, Value::Array(values));
    }
    json!({"code": r.code, "headers": headers, "body": r.body})
}

/// Every difference between `sim` and `real` (both normalised), as found in `kind`.
pub fn compare(kind: &str, sim: &Value, real: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(kind, "", Some(sim), Some(real), &mut out);
    out
}

fn show(v: Option<&Value>) -> String {
    let Some(v) = v else { return "-".into() };
    let s = v.to_string();
    if s.chars().count() > 400 {
        format!("{}…", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

fn walk(kind: &str, path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Difference>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                walk(kind, &child(path, k), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                walk(kind, &child(path, &i.to_string()), Some(p), Some(q), out);
            }
        }
        (Some(p), Some(q)) if p == q => {}
        _ => out.push(Difference {
            kind: kind.to_string(),
            path: path.to_string(),
            sim: show(a),
            real: show(b),
        }),
    }
}

/// `v` with every scalar replaced by its JSON type: for answers whose shape is compared and
/// whose values differ by design (`/version`).
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, c)| (k.clone(), shape(c))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => json!("<string>"),
        Value::Number(_) => json!("<number>"),
        Value::Bool(_) => json!("<bool>"),
        Value::Null => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_both_ways() {
        let a = json!({"code": 200, "body": {"x": [1, 2], "only": true}});
        let b = json!({"code": 200, "body": {"x": [1, 3], "other": "y"}});
        let d: Vec<String> = compare("k", &a, &b).iter().map(|d| d.path.clone()).collect();
        assert_eq!(d, vec!["body/only", "body/other", "body/x/1"]);
    }
}
