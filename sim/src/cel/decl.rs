//! CEL declaration types of a structural schema, as `k8s.io/apiserver/pkg/cel/common.SchemaDeclType`
//! builds them: the type a rule sees for each schema node, with the worst-case size
//! (`MaxElements`) and the smallest JSON serialization (`MinSerializedSize`) the cost estimator
//! works from.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// `k8s.io/apiserver/pkg/cel.DefaultMaxRequestSizeBytes`: 3 MiB.
pub(crate) const MAX_REQUEST_SIZE_BYTES: i64 = 3 * 1024 * 1024;
/// Literal `""`.
const MIN_STRING_SIZE: i64 = 2;
/// Literal `true`.
const MIN_BOOL_SIZE: i64 = 4;
/// Literal `0`.
const MIN_NUMBER_SIZE: i64 = 1;
/// `"0s"` and `"2006-01-02"` and the shortest RFC 3339 timestamp, quoted.
const MIN_DURATION_SIZE_JSON: i64 = 3;
const JSON_DATE_SIZE: i64 = 12;
const MIN_DATETIME_SIZE_JSON: i64 = 21;
/// Longest JSON duration / RFC 3339 timestamp (`apiservercel.MaxDurationSizeJSON`,
/// `MaxDatetimeSizeJSON`).
const MAX_DURATION_SIZE_JSON: i64 = 32;
const MAX_DATETIME_SIZE_JSON: i64 = 37;

#[derive(Debug)]
pub(crate) enum DeclKind {
    /// An object with declared properties: fields by their CEL (escaped) names.
    Object(BTreeMap<String, Field>),
    List(Arc<Decl>),
    /// `additionalProperties`: string keys.
    Map(Arc<Decl>),
    String,
    Bytes,
    Int,
    Double,
    Bool,
    /// `x-kubernetes-int-or-string`: a `dyn` value.
    IntOrString,
    Timestamp,
    Duration,
}

#[derive(Debug)]
pub(crate) struct Field {
    /// The property name in the data (before escaping).
    pub(crate) json_name: String,
    pub(crate) decl: Arc<Decl>,
}

#[derive(Debug)]
pub(crate) struct Decl {
    pub(crate) kind: DeclKind,
    /// Largest number of elements (string characters/bytes, list items, map entries).
    pub(crate) max_elements: i64,
    /// Smallest JSON serialization of a value of this type.
    pub(crate) min_size: i64,
    /// The schema's `x-kubernetes-list-type`.
    pub(crate) list_type: Option<String>,
    /// The schema's `x-kubernetes-list-map-keys`.
    pub(crate) map_keys: Vec<String>,
}

fn kw<'a>(s: &'a Value, k: &str) -> Option<&'a Value> {
    s.as_object().and_then(|m| m.get(k))
}

fn flag(s: &Value, k: &str) -> bool {
    kw(s, k).and_then(Value::as_bool) == Some(true)
}

fn int_kw(s: &Value, k: &str) -> Option<i64> {
    kw(s, k).and_then(|v| v.as_i64().or_else(|| v.as_u64().map(|_| i64::MAX)))
}

fn zero_if_negative(v: i64) -> i64 {
    v.max(0)
}

fn simple(kind: DeclKind, min_size: i64, max_elements: i64) -> Decl {
    Decl {
        kind,
        max_elements,
        min_size,
        list_type: None,
        map_keys: Vec::new(),
    }
}

/// CEL's identifier escaping of property names (`apiservercel.Escape`): `None` when the name
/// cannot be written in CEL (such properties are invisible to rules).
pub(crate) fn escape(name: &str) -> Option<String> {
    const RESERVED: &[&str] = &[
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    let first = name.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/');
    if !name.chars().all(allowed) {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// The maximum string length per request for a string (or int-or-string) schema without
/// `maxLength`.
fn max_string_length_per_request(s: &Value) -> i64 {
    if flag(s, super::INT_OR_STRING) {
        return MAX_REQUEST_SIZE_BYTES - 2;
    }
    match kw(s, "format").and_then(Value::as_str) {
        Some("duration") => MAX_DURATION_SIZE_JSON,
        Some("date") => JSON_DATE_SIZE,
        Some("date-time") => MAX_DATETIME_SIZE_JSON,
        _ => MAX_REQUEST_SIZE_BYTES - 2,
    }
}

/// `metadata` at the root of a resource: only `name` and `generateName` are visible to rules.
fn object_meta() -> Decl {
    let mut fields = BTreeMap::new();
    for name in ["name", "generateName"] {
        fields.insert(
            name.to_string(),
            Field {
                json_name: name.to_string(),
                decl: Arc::new(string_decl(&Value::Null)),
            },
        );
    }
    simple(DeclKind::Object(fields), 2, 0)
}

fn string_decl(s: &Value) -> Decl {
    let max = match int_kw(s, "maxLength") {
        // maxLength counts code points; a code point is up to 4 bytes.
        Some(n) => zero_if_negative(n).saturating_mul(4),
        None => match kw(s, "enum").and_then(Value::as_array) {
            Some(values) if !values.is_empty() => values
                .iter()
                .filter_map(Value::as_str)
                .map(|v| v.len() as i64)
                .max()
                .unwrap_or(0),
            _ => max_string_length_per_request(s),
        },
    };
    simple(DeclKind::String, MIN_STRING_SIZE, max)
}

/// The declaration type of schema node `s`; `None` when rules cannot see it (a type the CEL
/// mapping does not cover, e.g. an untyped preserve-unknown-fields node).
pub(crate) fn decl_of(s: &Value, resource_root: bool) -> Option<Arc<Decl>> {
    decl_rec(s, resource_root, 0).map(Arc::new)
}

fn decl_rec(s: &Value, resource_root: bool, depth: usize) -> Option<Decl> {
    if depth > super::MAX_DEPTH {
        return None;
    }
    if flag(s, super::INT_OR_STRING) {
        // kube-apiserver up to 1.33 sizes every int-or-string at the request limit, whatever
        // its maxLength (1.34 honours maxLength, kubernetes#132837); the stricter estimate is
        // kept so that what installs here installs on every supported release.
        return Some(simple(DeclKind::IntOrString, 1, MAX_REQUEST_SIZE_BYTES - 2));
    }
    let ty = kw(s, "type").and_then(Value::as_str).unwrap_or("");
    let decl = match ty {
        "array" => {
            let items = kw(s, "items").filter(|i| i.is_object())?;
            let elem = decl_rec(items, flag(items, super::EMBEDDED_RESOURCE), depth + 1)?;
            let max_items = match int_kw(s, "maxItems") {
                Some(n) => zero_if_negative(n),
                // subtract 2 for [ and ]; each item needs at least a comma
                None => (MAX_REQUEST_SIZE_BYTES - 2) / (elem.min_size + 1),
            };
            let mut d = simple(DeclKind::List(Arc::new(elem)), 2, max_items);
            d.list_type = kw(s, "x-kubernetes-list-type")
                .and_then(Value::as_str)
                .map(str::to_string);
            d.map_keys = kw(s, "x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            d
        }
        "object" => object_decl(s, resource_root, depth)?,
        "string" => match kw(s, "format").and_then(Value::as_str) {
            Some("byte") => {
                let max = match int_kw(s, "maxLength") {
                    Some(n) => zero_if_negative(n),
                    None => max_string_length_per_request(s),
                };
                simple(DeclKind::Bytes, MIN_STRING_SIZE, max)
            }
            Some("duration") => simple(
                DeclKind::Duration,
                MIN_DURATION_SIZE_JSON,
                max_string_length_per_request(s),
            ),
            Some("date") => simple(DeclKind::Timestamp, JSON_DATE_SIZE, max_string_length_per_request(s)),
            Some("date-time") => simple(
                DeclKind::Timestamp,
                MIN_DATETIME_SIZE_JSON,
                max_string_length_per_request(s),
            ),
            _ => string_decl(s),
        },
        "boolean" => simple(DeclKind::Bool, MIN_BOOL_SIZE, 0),
        "number" => simple(DeclKind::Double, MIN_NUMBER_SIZE, 0),
        "integer" => simple(DeclKind::Int, MIN_NUMBER_SIZE, 0),
        _ => return None,
    };
    Some(decl)
}

fn object_decl(s: &Value, resource_root: bool, depth: usize) -> Option<Decl> {
    if let Some(add) = kw(s, "additionalProperties").filter(|a| a.is_object()) {
        let elem = decl_rec(add, flag(add, super::EMBEDDED_RESOURCE), depth + 1)?;
        let max_props = match int_kw(s, "maxProperties") {
            Some(n) => zero_if_negative(n),
            // key quotes, colon, comma and the smallest value
            None => (MAX_REQUEST_SIZE_BYTES - 2) / (elem.min_size + 6),
        };
        return Some(simple(DeclKind::Map(Arc::new(elem)), 2, max_props));
    }
    let required: Vec<&str> = kw(s, "required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields = BTreeMap::new();
    let mut min_size = 2i64;
    let props = kw(s, "properties").and_then(Value::as_object);
    for (name, prop) in props.into_iter().flatten() {
        let decl = if resource_root && name == "metadata" && !meta_has_names(prop) {
            Some(object_meta())
        } else {
            decl_rec(prop, flag(prop, super::EMBEDDED_RESOURCE), depth + 1)
        };
        let Some(decl) = decl else { continue };
        if required.contains(&name.as_str()) && kw(prop, "default").is_none() {
            min_size += name.len() as i64 + decl.min_size + 4;
        }
        if let Some(escaped) = escape(name) {
            fields.insert(
                escaped,
                Field {
                    json_name: name.clone(),
                    decl: Arc::new(decl),
                },
            );
        }
    }
    if resource_root {
        for name in ["kind", "apiVersion"] {
            fields.entry(name.to_string()).or_insert_with(|| Field {
                json_name: name.to_string(),
                decl: Arc::new(string_decl(&Value::Null)),
            });
        }
        fields.entry("metadata".to_string()).or_insert_with(|| Field {
            json_name: "metadata".to_string(),
            decl: Arc::new(object_meta()),
        });
    }
    Some(simple(DeclKind::Object(fields), min_size, 0))
}

fn meta_has_names(meta: &Value) -> bool {
    let props = kw(meta, "properties").and_then(Value::as_object);
    let is_string = |k: &str| {
        props
            .and_then(|p| p.get(k))
            .and_then(|p| kw(p, "type"))
            .and_then(Value::as_str)
            == Some("string")
    };
    kw(meta, "type").and_then(Value::as_str) == Some("object") && is_string("name") && is_string("generateName")
}

/// `maxCardinality(minSize)`: how often data of this minimum size can repeat in one request.
pub(crate) fn max_cardinality(min_size: i64) -> u64 {
    (MAX_REQUEST_SIZE_BYTES / (min_size + 1)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping_follows_apiserver_cel() {
        assert_eq!(escape("foo").as_deref(), Some("foo"));
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("a.b-c/d").as_deref(), Some("a__dot__b__dash__c__slash__d"));
        assert_eq!(escape("a__b").as_deref(), Some("a__underscores__b"));
        assert_eq!(escape("1a"), None);
        assert_eq!(escape("a b"), None);
    }

    #[test]
    fn sizes_follow_schema_bounds() {
        let s = json!({"type": "object", "properties": {
            "s": {"type": "string", "maxLength": 10},
            "e": {"type": "string", "enum": ["a", "abc"]},
            "u": {"type": "string"},
            "l": {"type": "array", "items": {"type": "integer"}},
            "b": {"type": "array", "maxItems": 5, "items": {"type": "string"}},
            "m": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "i": {"x-kubernetes-int-or-string": true, "maxLength": 4},
        }});
        let d = decl_of(&s, false).expect("decl");
        let DeclKind::Object(f) = &d.kind else { panic!("object") };
        assert_eq!(f["s"].decl.max_elements, 40);
        assert_eq!(f["e"].decl.max_elements, 3);
        assert_eq!(f["u"].decl.max_elements, 3_145_726);
        assert_eq!(f["l"].decl.max_elements, 3_145_726 / 2);
        assert_eq!(f["b"].decl.max_elements, 5);
        assert_eq!(f["m"].decl.max_elements, 3_145_726 / 10);
        assert_eq!(f["i"].decl.max_elements, 3_145_726);
    }
}
