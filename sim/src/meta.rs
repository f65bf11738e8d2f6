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

/// The regex error of a qualified name's name part (apimachinery's `qualifiedNameErrMsg` with
/// its examples and pattern).
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// The regex error of a label value.
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn name_chars_ok(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && v.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric())
        && v.as_bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// apimachinery's `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name of
/// at most 63 characters; each problem in its words.
pub fn qualified_name_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else if let Some(e) = dns_subdomain_errors(prefix) {
                errs.push(format!("prefix part {e}"));
            }
            name
        }
        _ => {
            errs.push(format!("a qualified name {QUALIFIED_NAME_ERR} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".into());
    }
    if !name_chars_ok(name) {
        errs.push(format!("name part {QUALIFIED_NAME_ERR}"));
    }
    errs
}

/// apimachinery's `IsValidLabelValue`.
pub fn label_value_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    if !v.is_empty() && !name_chars_ok(v) {
        errs.push(LABEL_VALUE_ERR.into());
    }
    errs
}

/// The finalizers a built-in kind may carry without a `/`.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// apimachinery's `ValidateFinalizers` (each a qualified name) and, for the kinds core's
/// `ValidateObjectMeta` validates (`builtin`), `validateKubeFinalizerName` (one without a
/// domain must be a standard finalizer).
fn finalizer_errors(finalizers: &[Value], builtin: bool) -> Vec<StatusCause> {
    let mut out = Vec::new();
    for (i, f) in finalizers.iter().enumerate() {
        let Some(f) = f.as_str() else { continue };
        for e in qualified_name_errors(f) {
            out.push(cause(
                "FieldValueInvalid",
                "metadata.finalizers",
                format!("Invalid value: {f:?}: {e}"),
            ));
        }
        if builtin && !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
            out.push(cause(
                "FieldValueInvalid",
                &format!("metadata.finalizers[{i}]"),
                format!("Invalid value: {f:?}: name is neither a standard finalizer name nor is it fully qualified"),
            ));
        }
    }
    out
}

/// `ValidateNoNewFinalizers`: an object being deleted (`old` has a `deletionTimestamp`) takes
/// no new finalizer.
pub fn no_new_finalizers(old: &Map<String, Value>, new: &Map<String, Value>) -> Option<StatusCause> {
    old.get("deletionTimestamp").filter(|t| t.is_string())?;
    let list = |m: &Map<String, Value>| -> std::collections::BTreeSet<String> {
        m.get("finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let before = list(old);
    let extra: Vec<String> = list(new).into_iter().filter(|f| !before.contains(f)).collect();
    if extra.is_empty() {
        return None;
    }
    let quoted: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
    Some(cause(
        "FieldValueForbidden",
        "metadata.finalizers",
        format!(
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
            quoted.join(", ")
        ),
    ))
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
pub fn validate_metadata(meta: &Map<String, Value>, names: NameRule, builtin: bool) -> Vec<StatusCause> {
    let mut out = Vec::new();
    if let Some(prefix) = meta
        .get("generateName")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        out.extend(generate_name_error(prefix, names));
    }
    if let Some(name) = meta.get("name").and_then(Value::as_str) {
        if let Some(e) = names.errors(name) {
            out.push(cause(
                "FieldValueInvalid",
                "metadata.name",
                format!("Invalid value: {name:?}: {e}"),
            ));
        }
    }
    out.extend(label_errors(meta.get("labels")));
    out.extend(annotation_errors(meta.get("annotations")));
    if let Some(Value::Array(finalizers)) = meta.get("finalizers") {
        out.extend(finalizer_errors(finalizers, builtin));
    }
    out
}

impl NameRule {
    /// What is wrong with `name` under this rule, if anything.
    fn errors(self, name: &str) -> Option<String> {
        match self {
            NameRule::DnsLabel => dns_label_errors(name),
            NameRule::DnsSubdomain => dns_subdomain_errors(name),
            NameRule::PathSegment => path_segment_errors(name),
        }
    }
}

/// A `generateName` prefix is checked as a name whose trailing dash is masked
/// (`maskTrailingDash`), since the generated suffix follows it.
fn generate_name_error(prefix: &str, names: NameRule) -> Option<StatusCause> {
    let masked = match prefix.strip_suffix('-') {
        Some(p) if !p.is_empty() => format!("{p}a"),
        _ => prefix.to_string(),
    };
    let e = names.errors(&masked)?;
    Some(cause(
        "FieldValueInvalid",
        "metadata.generateName",
        format!("Invalid value: {prefix:?}: {e}"),
    ))
}

/// The cause for a `labels` or `annotations` field that is not a JSON object.
fn not_a_string_map(field: &str) -> StatusCause {
    cause(
        "FieldValueTypeInvalid",
        field,
        "Invalid value: must be a map of strings".into(),
    )
}

/// `metadata.labels`: each key a qualified name, each value a string that is a valid label value.
fn label_errors(labels: Option<&Value>) -> Vec<StatusCause> {
    let labels = match labels {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(labels)) => labels,
        Some(_) => return vec![not_a_string_map("metadata.labels")],
    };
    let mut out = Vec::new();
    for (k, v) in labels {
        for e in qualified_name_errors(k) {
            out.push(cause(
                "FieldValueInvalid",
                "metadata.labels",
                format!("Invalid value: {k:?}: {e}"),
            ));
        }
        match v.as_str() {
            Some(s) => {
                for e in label_value_errors(s) {
                    out.push(cause(
                        "FieldValueInvalid",
                        "metadata.labels",
                        format!("Invalid value: {s:?}: {e}"),
                    ));
                }
            }
            None => out.push(cause(
                "FieldValueInvalid",
                "metadata.labels",
                format!("Invalid value: {v}: {LABEL_VALUE_ERR}"),
            )),
        }
    }
    out
}

/// `metadata.annotations`: string values, keys that are qualified names (case-insensitively),
/// and keys and values together no larger than [`MAX_ANNOTATIONS_BYTES`].
fn annotation_errors(annotations: Option<&Value>) -> Vec<StatusCause> {
    let ann = match annotations {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(ann)) => ann,
        Some(_) => return vec![not_a_string_map("metadata.annotations")],
    };
    let mut out = Vec::new();
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
        for e in qualified_name_errors(&k.to_lowercase()) {
            out.push(cause(
                "FieldValueInvalid",
                "metadata.annotations",
                format!("Invalid value: {k:?}: {e}"),
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
