//! Object metadata rules shared by every kind: names, labels, annotation size, timestamps.
use serde_json::{json, Map, Value};

use crate::error::StatusCause;

/// kube-apiserver's limit on the total size of an object's annotations.
pub const MAX_ANNOTATIONS_BYTES: usize = 262_144;

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn rfc3339_in(seconds: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn cause(reason: &str, field: &str, message: String) -> StatusCause {
    StatusCause {
        reason: reason.into(),
        field: field.into(),
        message,
    }
}

/// DNS-1123 subdomain: what most object names must be.
pub fn dns_subdomain_errors(name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    let ok = !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if ok {
        None
    } else {
        Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into())
    }
}

/// DNS-1123 label: namespaces and services.
pub fn dns_label_errors(name: &str) -> Option<String> {
    if name.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        None
    } else {
        Some("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into())
    }
}

fn qualified_name_ok(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if dns_subdomain_errors(p).is_some() {
            return false;
        }
    }
    label_value_ok(name) && !name.is_empty()
}

fn label_value_ok(v: &str) -> bool {
    v.len() <= 63
        && (v.is_empty()
            || (v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                && v.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric())
                && v.as_bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())))
}

/// How a kind's names are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    DnsSubdomain,
    DnsLabel,
    /// RBAC objects (`system:basic-user`): any path segment (`path.IsValidPathSegmentName`).
    PathSegment,
}

/// `path.IsValidPathSegmentName`.
pub fn path_segment_errors(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    let errs: Vec<String> = ["/", "%"]
        .iter()
        .filter(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
        .collect();
    (!errs.is_empty()).then(|| errs.join(", "))
}

/// Validate metadata the way kube-apiserver does for every kind.
pub fn validate_metadata(meta: &Map<String, Value>, names: NameRule) -> Vec<StatusCause> {
    let mut out = Vec::new();
    if let Some(name) = meta.get("name").and_then(Value::as_str) {
        let err = match names {
            NameRule::DnsLabel => dns_label_errors(name),
            NameRule::DnsSubdomain => dns_subdomain_errors(name),
            NameRule::PathSegment => path_segment_errors(name),
        };
        if let Some(e) = err {
            out.push(cause(
                "FieldValueInvalid",
                "metadata.name",
                format!("Invalid value: {name:?}: {e}"),
            ));
        }
    }
    match meta.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (k, v) in labels {
                if !qualified_name_ok(k) {
                    out.push(cause("FieldValueInvalid", "metadata.labels", format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
                }
                match v.as_str() {
                    Some(s) if label_value_ok(s) => {}
                    _ => out.push(cause("FieldValueInvalid", "metadata.labels", format!("Invalid value: {v}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))),
                }
            }
        }
        Some(_) => out.push(cause(
            "FieldValueTypeInvalid",
            "metadata.labels",
            "Invalid value: must be a map of strings".into(),
        )),
    }
    match meta.get("annotations") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ann)) => {
            let mut total = 0usize;
            for (k, v) in ann {
                total += k.len();
                match v.as_str() {
                    Some(s) => total += s.len(),
                    None => out.push(cause(
                        "FieldValueTypeInvalid",
                        &format!("metadata.annotations[{k}]"),
                        "Invalid value: annotation values must be strings".into(),
                    )),
                }
                if !qualified_name_ok(k) {
                    out.push(cause(
                        "FieldValueInvalid",
                        "metadata.annotations",
                        format!(
                            "Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.'"
                        ),
                    ));
                }
            }
            if total > MAX_ANNOTATIONS_BYTES {
                out.push(cause(
                    "FieldValueTooLong",
                    "metadata.annotations",
                    format!("Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes"),
                ));
            }
        }
        Some(_) => out.push(cause(
            "FieldValueTypeInvalid",
            "metadata.annotations",
            "Invalid value: must be a map of strings".into(),
        )),
    }
    out
}

/// Random lowercase suffix for `generateName`.
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let id = uuid::Uuid::new_v4();
    id.as_bytes()
        .iter()
        .take(n)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// Serialize an object as kube-apiserver lays it out: `kind`, `apiVersion` and `metadata`
/// first (Go's TypeMeta is inlined first), then the other fields. Clients that report where a
/// body failed to decode (kube-rs's error messages carry the column) see the same positions.
pub fn write_object<W: std::io::Write>(w: &mut W, v: &serde_json::Value) -> Result<(), serde_json::Error> {
    let Some(obj) = v.as_object() else {
        return serde_json::to_writer(w, v);
    };
    const FIRST: [&str; 3] = ["kind", "apiVersion", "metadata"];
    let mut sep = false;
    let mut field = |w: &mut W, k: &str, x: &serde_json::Value| -> Result<(), serde_json::Error> {
        w.write_all(if sep { b"," } else { b"{" })
            .map_err(serde_json::Error::io)?;
        sep = true;
        serde_json::to_writer(&mut *w, k)?;
        w.write_all(b":").map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut *w, x)
    };
    for k in FIRST {
        if let Some(x) = obj.get(k) {
            field(w, k, x)?;
        }
    }
    for (k, x) in obj.iter().filter(|(k, _)| !FIRST.contains(&k.as_str())) {
        field(w, k, x)?;
    }
    if !sep {
        w.write_all(b"{").map_err(serde_json::Error::io)?;
    }
    w.write_all(b"}").map_err(serde_json::Error::io)
}

/// The body types of a PATCH (`Content-Type`), as kube-apiserver names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// Set a value at a JSON pointer, creating objects on the way.
pub fn set_pointer(v: &mut Value, ptr: &str, val: Value) {
    let mut cur = v;
    let parts: Vec<&str> = ptr.split('/').filter(|p| !p.is_empty()).collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(obj) = cur.as_object_mut() else { return };
        if i + 1 == parts.len() {
            obj.insert((*p).to_string(), val);
            return;
        }
        cur = obj.entry((*p).to_string()).or_insert_with(|| json!({}));
    }
}

/// A JSON object of strings (labels, annotations, `matchLabels`) as a map; values that are not
/// strings are left out, a missing or non-object value is empty.
pub fn string_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
