//! What must differ between two API servers, replaced by placeholders; everything else is
//! compared as it is (strict by default).
//!
//! * uids (any UUID, whole or inside a message) → `<uid:N>`, N counting the distinct uids of
//!   one server in the order the test first saw them, so "the same object" stays comparable;
//! * resourceVersions (`resourceVersion` fields, and the number after "resourceVersion" in a
//!   message) → `<rv>`; `continue` tokens → `<continue>` (both are opaque to clients);
//! * timestamps → `<time>` (RFC 3339 to the second) or `<microtime>` (six fractional digits,
//!   `MicroTime`); any other precision is left as it is, so that a format difference shows;
//! * names made from `generateName` (an object's, or the one a Status refuses) →
//!   `<generated:PREFIX:N>`;
//! * the servers' addresses → `<server>`; node names (`sim-node-1`, `kwok-node-0`) →
//!   `<node>`; pod, host and cluster IPs → `<ip>`; PEM certificates → `<pem>`;
//! * ages in Table cells (`5s`, `2m3s`) → `<age>`;
//! * managedFields entries in an order without their times (which are the clock's).

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

fn re(s: &str) -> Regex {
    Regex::new(s).expect("a valid regular expression")
}

static UUID: LazyLock<Regex> = LazyLock::new(|| re("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));
static TIME: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"));
static MICROTIME: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"));
static EMBEDDED_TIME: LazyLock<Regex> =
    LazyLock::new(|| re(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?( ?\+0000 UTC|Z)?"));
static RV_IN_TEXT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(resource ?version\D{0,40}?|, current: |too old resource version: <rv> \()\d+"));
static NODE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(sim-node-\d+|kwok-node-\d+)\b"));
static ANY_TIME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"));
static GENERATE_NAME_REFUSED: LazyLock<Regex> =
    LazyLock::new(|| re(r#"metadata\.generateName: Invalid value: "([^"]*)""#));
static AGE: LazyLock<Regex> = LazyLock::new(|| re(r"^(\d+(ms|s|m|h|d|y))+$|^<invalid>$"));

/// Keys whose string values are addresses a server assigns.
const IP_KEYS: &[&str] = &["podIP", "hostIP", "clusterIP", "clusterIPs", "ip"];

/// One server's placeholders.
pub struct Normaliser {
    servers: Vec<String>,
    uids: HashMap<String, usize>,
    generated: HashMap<String, String>,
    prefixes: HashMap<String, usize>,
}

impl Normaliser {
    /// A normaliser that replaces the `servers` (host:port) with `<server>`.
    pub fn new(servers: Vec<String>) -> Normaliser {
        Normaliser {
            servers,
            uids: HashMap::new(),
            generated: HashMap::new(),
            prefixes: HashMap::new(),
        }
    }

    /// The normalised copy of `v`.
    pub fn value(&mut self, v: &Value) -> Value {
        self.collect_generated(v);
        self.walk(v, None, false)
    }

    /// Names made from `generateName`, anywhere in `v`.
    fn collect_generated(&mut self, v: &Value) {
        match v {
            Value::Object(m) => {
                if let Some(meta) = m.get("metadata").and_then(Value::as_object) {
                    let prefix = meta.get("generateName").and_then(Value::as_str).unwrap_or("");
                    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
                    if !prefix.is_empty() && name.starts_with(prefix) && name.len() > prefix.len() {
                        self.generated_name(prefix, name);
                    }
                }
                self.collect_refused_generated(m);
                m.values().for_each(|c| self.collect_generated(c));
            }
            Value::Array(a) => a.iter().for_each(|c| self.collect_generated(c)),
            _ => {}
        }
    }

    /// A Status refusing a name made from an invalid `generateName` names it in its details
    /// and the prefix in its message.
    fn collect_refused_generated(&mut self, m: &Map<String, Value>) {
        if m.get("kind").and_then(Value::as_str) != Some("Status") {
            return;
        }
        let name = m
            .get("details")
            .and_then(|d| d.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = m.get("message").and_then(Value::as_str).unwrap_or("");
        let Some(c) = GENERATE_NAME_REFUSED.captures(message) else {
            return;
        };
        let prefix = &c[1];
        if !prefix.is_empty() && name.starts_with(prefix) && name.len() > prefix.len() {
            self.generated_name(prefix, name);
        }
    }

    fn generated_name(&mut self, prefix: &str, name: &str) {
        if self.generated.contains_key(name) {
            return;
        }
        let n = self.prefixes.entry(prefix.to_string()).or_insert(0);
        *n += 1;
        self.generated
            .insert(name.to_string(), format!("<generated:{prefix}:{n}>"));
    }

    fn walk(&mut self, v: &Value, key: Option<&str>, in_cells: bool) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, c) in m {
                    // Keys hold uids too (`k:{"uid":…}` in managedFields).
                    let nk = if UUID.is_match(k) { self.text(k) } else { k.clone() };
                    out.insert(nk, self.walk(c, Some(k), false));
                }
                Value::Object(out)
            }
            Value::Array(a) => {
                let mut out: Vec<Value> = a
                    .iter()
                    .map(|c| self.walk(c, key, in_cells || key == Some("cells")))
                    .collect();
                if key == Some("managedFields") {
                    // Both servers order the entries by operation, time (to the second), manager,
                    // apiVersion and subresource; with the times normalised, the second an entry
                    // fell in is the clock's, so order without it.
                    let order = |e: &Value| {
                        ["operation", "manager", "apiVersion", "subresource"]
                            .map(|k| e.get(k).and_then(Value::as_str).unwrap_or("").to_string())
                    };
                    out.sort_by_key(order);
                }
                Value::Array(out)
            }
            Value::String(s) => Value::String(self.string(s, key, in_cells)),
            other => other.clone(),
        }
    }

    fn string(&mut self, s: &str, key: Option<&str>, in_cells: bool) -> String {
        match key {
            Some("resourceVersion") if !s.is_empty() => return "<rv>".into(),
            Some("continue") if !s.is_empty() => return "<continue>".into(),
            Some(k) if IP_KEYS.contains(&k) && !s.is_empty() => return "<ip>".into(),
            Some("serverAddress") => return "<server>".into(),
            _ => {}
        }
        if in_cells && AGE.is_match(s) {
            return "<age>".into();
        }
        if TIME.is_match(s) {
            return "<time>".into();
        }
        if MICROTIME.is_match(s) {
            return "<microtime>".into();
        }
        if ANY_TIME.is_match(s) {
            return s.to_string();
        }
        if s.starts_with("-----BEGIN ") {
            return "<pem>".into();
        }
        self.text(s)
    }

    /// Placeholders inside free text (messages, Table cells, kubectl output).
    pub fn text(&mut self, s: &str) -> String {
        let mut out = s.to_string();
        for server in &self.servers {
            out = out.replace(server.as_str(), "<server>");
        }
        if let Some(t) = self.generated.get(&out) {
            return t.clone();
        }
        for (name, token) in &self.generated {
            if out.contains(name.as_str()) {
                out = out.replace(name.as_str(), token);
            }
        }
        let uids = &mut self.uids;
        out = UUID
            .replace_all(&out, |c: &regex::Captures| {
                let next = uids.len() + 1;
                format!("<uid:{}>", uids.entry(c[0].to_string()).or_insert(next))
            })
            .into_owned();
        // Twice: "too old resource version: 1 (2289)" holds two.
        for _ in 0..2 {
            out = RV_IN_TEXT.replace_all(&out, "${1}<rv>").into_owned();
        }
        out = NODE.replace_all(&out, "<node>").into_owned();
        EMBEDDED_TIME.replace_all(&out, "<time>").into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_keep_identity_and_drop_values() {
        let mut n = Normaliser::new(vec!["127.0.0.1:6443".into()]);
        let uid = "0b7a1f3e-2d44-4b4c-9a55-1f2e3d4c5b6a";
        let v = json!({
            "metadata": {"uid": uid, "resourceVersion": "42", "generateName": "web-", "name": "web-x7k2p",
                         "creationTimestamp": "2025-01-02T03:04:05Z"},
            "message": format!("Precondition failed: UID in precondition: {uid}, resourceVersion 17 on 127.0.0.1:6443"),
            "spec": {"nodeName": "kwok-node-2", "renewTime": "2025-01-02T03:04:05.123456Z"},
        });
        let out = n.value(&v);
        assert_eq!(
            out,
            json!({
                "metadata": {"uid": "<uid:1>", "resourceVersion": "<rv>", "generateName": "web-",
                             "name": "<generated:web-:1>", "creationTimestamp": "<time>"},
                "message": "Precondition failed: UID in precondition: <uid:1>, resourceVersion <rv> on <server>",
                "spec": {"nodeName": "<node>", "renewTime": "<microtime>"},
            })
        );
        // A millisecond timestamp is not a MicroTime: left for the comparison to see.
        assert_eq!(
            n.value(&json!("2025-01-02T03:04:05.123Z")),
            json!("2025-01-02T03:04:05.123Z")
        );
    }
}
