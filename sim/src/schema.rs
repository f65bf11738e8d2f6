//! OpenAPI v3 structural-schema handling for custom resources, modelled on
//! kube-apiserver's apiextensions machinery:
//!
//! * [`prune_unknown`] mirrors `apiextensions-apiserver/pkg/apiserver/schema/pruning`
//!   (`PruneWithOptions(obj, schema, isResourceRoot=true, TrackUnknownFieldPaths)`) followed by
//!   `defaulting.PruneNonNullableNullsWithoutDefaults`, which is what the real server runs while
//!   decoding a custom resource.
//! * [`apply_defaults`] mirrors `apiextensions-apiserver/pkg/apiserver/schema/defaulting.Default`.
//! * [`validate`] mirrors `apiextensions-apiserver/pkg/apiserver/validation.ValidateCustomResource`,
//!   i.e. the kube-openapi `validate.SchemaValidator` plus `kubeOpenAPIResultToFieldErrors`, which
//!   turns each kube-openapi error into a `field.Error` (reason = `field.ErrorType`, message =
//!   `ErrorBody()`, field = the error's path).
//!
//! The intended call order (as in kube-apiserver) is: `prune_unknown`, `apply_defaults`,
//! `validate`.
//!
//! Wording notes (what the real server says, and where this module is unsure):
//! * Type mismatch: reason `FieldValueTypeInvalid`, message
//!   `Invalid value: "string": spec.replicas in body must be of type integer: "string"`.
//!   `x-kubernetes-int-or-string` reports the type as `integer,string`.
//! * Missing required field: reason `FieldValueRequired`, message `Required value`.
//! * Enum: reason `FieldValueNotSupported`,
//!   message `Unsupported value: "bogus": supported values: "a", "b"`.
//! * minimum/maximum/minLength/pattern/minItems/minProperties/uniqueItems/format: reason
//!   `FieldValueInvalid`, message `Invalid value: <value>: <kube-openapi message>`, e.g.
//!   `Invalid value: -1: spec.replicas in body should be greater than or equal to 0`.
//!   A failed `format` is reported like a type error (`FieldValueTypeInvalid`,
//!   `... in body must be of type date-time: "abc"`), as kube-openapi does.
//! * maxLength: reason `FieldValueTooLong`, message `Too long: may not be longer than 5`
//!   (k8s 1.25-1.31 wording; newer releases may say `may not be more than 5 bytes`; unsure).
//!   Length is counted in Unicode code points, as kube-openapi does.
//! * maxItems / maxProperties: reason `FieldValueTooMany`,
//!   message `Too many: 3: must have at most 2 items` (also used for properties, as the real
//!   server does). Whether the real server knows the limit depends on the kube-openapi version
//!   (older ones say `Too many: 3: has too many items`); this module always includes it.
//! * anyOf/oneOf/allOf/not failures are not `*errors.Validation` values in kube-openapi, so the
//!   real server reports them with field `<nil>`, reason `FieldValueInvalid` and message
//!   `Invalid value: "": "spec.x" must validate at least one schema (anyOf)`; this module does
//!   the same. Errors for the object root also get field `<nil>`.
//! * The best failing branch of anyOf/oneOf is picked by kube-openapi's internal "match count";
//!   here the branch with the fewest errors (first on ties) is used instead.
//! * The real server iterates Go maps, so the order of errors across sibling properties is
//!   random there; here sibling properties are visited in sorted key order (deterministic
//!   whether or not serde_json's `preserve_order` feature is on). Within one value the order
//!   follows kube-openapi: type, anyOf/oneOf/allOf/not, string, format, number, array, enum,
//!   object (additionalProperties values, then properties, then required).
//! * Values are rendered like `field.Error.ErrorBody`: strings with Go `%q`, numbers with Go
//!   `%v` (so `1e+06` for a float one million), objects/arrays as JSON.
//! * Invalid `pattern` regexes: message says `..., but pattern is invalid: <error>`, but the
//!   error text comes from the Rust `regex` crate rather than Go's `regexp`.
//! * Formats: like kube-apiserver, only the formats apiextensions supports are checked
//!   (`date-time`, `date`, `uuid`, `uuid3/4/5`, `ipv4`, `ipv6`, `cidr`, `mac`, `hostname`,
//!   `byte`, `hexcolor`, `ssn`, `bsonobjectid`, `password`); `uri`, `email`, `duration`, `isbn*`,
//!   `creditcard` and `rgbcolor` are accepted without a check here. Every other format,
//!   including `int32`, `int64`, `float` and `double`, is stripped by the real server before
//!   validation and so has no effect (no int32 range check is done; that is the real behaviour).
//! * `hostname` is checked with an approximation of go-openapi's regex.
//! * Explicit `null`: the real server drops nulls of non-nullable fields without a default while
//!   decoding (done here by [`prune_unknown`]) and replaces non-nullable nulls that have a default
//!   by the default (done by [`apply_defaults`]). A null that still reaches [`validate`] gets a
//!   type error: `Invalid value: "null": spec.x in body must be of type string: "null"`.
//!
//! Not supported: CEL (`x-kubernetes-validations`, ignored), `x-kubernetes-list-type` /
//! `x-kubernetes-list-map-keys` uniqueness checks, `patternProperties`, `dependencies`,
//! `additionalItems`, `$ref`, and the ObjectMeta checks the server applies to `metadata` and to
//! embedded resources (apiVersion/kind required).

use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;

/// One field error, as kube-apiserver reports it in a 422 Status's details.causes[].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// "FieldValueRequired" | "FieldValueInvalid" | "FieldValueNotSupported" | "FieldValueTooLong" | "FieldValueTooMany" | "FieldValueTypeInvalid" ... (the k8s field.ErrorType reason strings)
    pub reason: String,
    /// e.g. `Invalid value: "abc": spec.replicas in body must be of type integer: "string"` -- mimic kube-apiserver's wording
    pub message: String,
    /// dotted path from the object root, e.g. "spec.replicas", "spec.batches[1]"
    pub field: String,
}

const PRESERVE_UNKNOWN: &str = "x-kubernetes-preserve-unknown-fields";
const EMBEDDED_RESOURCE: &str = "x-kubernetes-embedded-resource";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";

/// Recursion guard: nothing below this depth is defaulted, pruned or validated.
const MAX_DEPTH: usize = 256;

const REASON_REQUIRED: &str = "FieldValueRequired";
const REASON_INVALID: &str = "FieldValueInvalid";
const REASON_NOT_SUPPORTED: &str = "FieldValueNotSupported";
const REASON_TOO_LONG: &str = "FieldValueTooLong";
const REASON_TOO_MANY: &str = "FieldValueTooMany";
const REASON_TYPE_INVALID: &str = "FieldValueTypeInvalid";

// ---------------------------------------------------------------------------
// Schema accessors (tolerant of malformed schemas)
// ---------------------------------------------------------------------------

fn kw<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    s.as_object().and_then(|m| m.get(key))
}

fn flag(s: &Value, key: &str) -> bool {
    matches!(kw(s, key), Some(Value::Bool(true)))
}

fn nullable(s: &Value) -> bool {
    flag(s, "nullable")
}

fn properties(s: &Value) -> Option<&Map<String, Value>> {
    kw(s, "properties").and_then(Value::as_object)
}

fn property<'a>(s: &'a Value, name: &str) -> Option<&'a Value> {
    properties(s).and_then(|p| p.get(name))
}

/// The structural `items` schema (a single schema; tuple forms are not structural).
fn items_schema(s: &Value) -> Option<&Value> {
    match kw(s, "items") {
        Some(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// A schema's default; `default: null` counts as no default (as in apiextensions).
fn default_of(s: &Value) -> Option<&Value> {
    match kw(s, "default") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

enum Additional<'a> {
    Absent,
    Bool(bool),
    Schema(&'a Value),
}

fn additional(s: &Value) -> Additional<'_> {
    match kw(s, "additionalProperties") {
        Some(Value::Bool(b)) => Additional::Bool(*b),
        Some(v @ Value::Object(_)) => Additional::Schema(v),
        _ => Additional::Absent,
    }
}

fn additional_schema(s: &Value) -> Option<&Value> {
    match additional(s) {
        Additional::Schema(a) => Some(a),
        _ => None,
    }
}

fn int_kw(s: &Value, key: &str) -> Option<i64> {
    match kw(s, key)? {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i)
            } else if n.is_u64() {
                Some(i64::MAX)
            } else {
                n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)
            }
        }
        _ => None,
    }
}

fn num_kw(s: &Value, key: &str) -> Option<f64> {
    match kw(s, key)? {
        Value::Number(n) => n.as_f64().filter(|f| !f.is_nan()),
        _ => None,
    }
}

/// Keys in sorted order, so error order does not depend on serde_json's `preserve_order`
/// feature (the real server's order is random: Go map iteration).
fn sorted_keys(m: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn is_meta_field(k: &str) -> bool {
    k == "apiVersion" || k == "kind" || k == "metadata"
}

fn child_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn child_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

// ---------------------------------------------------------------------------
// Defaulting
// ---------------------------------------------------------------------------

/// Apply `default` values from the schema in place (like apiextensions structural defaulting: defaults apply when a property is absent; nested defaults inside defaulted objects too; also items of arrays and additionalProperties values).
///
/// Like the real server, a `null` in a non-nullable field that has a default is replaced by the
/// default; defaults are deep-copied, and defaults are never looked up inside
/// `anyOf`/`oneOf`/`allOf`/`not`.
pub fn apply_defaults(obj: &mut Value, schema: &Value) {
    default_rec(obj, schema, 0);
}

fn default_rec(x: &mut Value, s: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match x {
        Value::Object(m) => {
            if let Some(props) = properties(s) {
                for (k, prop) in props {
                    let Some(d) = default_of(prop) else {
                        continue;
                    };
                    let apply = match m.get(k) {
                        None => true,
                        Some(Value::Null) => !nullable(prop),
                        Some(_) => false,
                    };
                    if apply {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            let addl = additional_schema(s);
            for (k, v) in m.iter_mut() {
                if let Some(prop) = property(s, k) {
                    default_rec(v, prop, depth + 1);
                } else if let Some(a) = addl {
                    if v.is_null() && !nullable(a) {
                        if let Some(d) = default_of(a) {
                            *v = d.clone();
                        }
                    }
                    default_rec(v, a, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(it) = items_schema(s) {
                for v in items.iter_mut() {
                    if v.is_null() && !nullable(it) {
                        if let Some(d) = default_of(it) {
                            *v = d.clone();
                        }
                    }
                    default_rec(v, it, depth + 1);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Pruning
// ---------------------------------------------------------------------------

/// Remove fields the schema does not declare (structural pruning) and return the dotted paths removed, e.g. ["spec.foo", "status.bar.baz"].
/// Respect `x-kubernetes-preserve-unknown-fields: true` (keep everything below), `x-kubernetes-embedded-resource: true` (keep apiVersion, kind, metadata of the embedded object), `additionalProperties` (schema for map values; `additionalProperties: true`/absent-with-no-properties semantics as in k8s), `x-kubernetes-int-or-string`.
/// At the object root always keep `apiVersion`, `kind`, `metadata` (metadata is not pruned by this function).
///
/// Semantics follow apiextensions' pruning algorithm exactly:
/// * an object whose schema has neither a matching property nor `additionalProperties` loses
///   the field; `additionalProperties: true` keeps the keys but prunes their values as if they had
///   no schema (nested objects are emptied; scalars survive). `additionalProperties: false`
///   (rejected by the real server in CRDs) prunes unknown keys.
/// * below `x-kubernetes-preserve-unknown-fields: true`, unknown fields are kept, but fields that
///   *are* declared are still pruned by their own schema.
/// * the returned paths are sorted, use `.` between keys and `[i]` for list indices.
///
/// Afterwards, like the real decoder (`PruneNonNullableNullsWithoutDefaults`), `null` values of
/// fields whose schema is neither `nullable` nor has a `default` are removed. Those removals are
/// not reported in the returned list (the real server does not report them either).
pub fn prune_unknown(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    prune_rec(obj, Some(schema), true, "", &mut out, 0);
    prune_nulls(obj, Some(schema), true, 0);
    out.sort();
    out
}

fn prune_rec(x: &mut Value, s: Option<&Value>, root: bool, path: &str, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(sch) = s {
        if flag(sch, PRESERVE_UNKNOWN) {
            skip_prune(x, sch, root, path, out, depth);
            return;
        }
    }
    match x {
        Value::Object(m) => {
            let Some(sch) = s else {
                for k in m.keys() {
                    out.push(child_key(path, k));
                }
                m.clear();
                return;
            };
            let embedded = root || flag(sch, EMBEDDED_RESOURCE);
            let mut remove = Vec::new();
            for (k, v) in m.iter_mut() {
                if embedded && is_meta_field(k) {
                    continue;
                }
                if let Some(prop) = property(sch, k) {
                    prune_rec(v, Some(prop), false, &child_key(path, k), out, depth + 1);
                } else {
                    match additional(sch) {
                        Additional::Schema(a) => prune_rec(v, Some(a), false, &child_key(path, k), out, depth + 1),
                        Additional::Bool(true) => prune_rec(v, None, false, &child_key(path, k), out, depth + 1),
                        Additional::Bool(false) | Additional::Absent => remove.push(k.clone()),
                    }
                }
            }
            for k in remove {
                m.remove(&k);
                out.push(child_key(path, &k));
            }
        }
        Value::Array(items) => {
            let it = s.and_then(items_schema);
            for (i, v) in items.iter_mut().enumerate() {
                prune_rec(v, it, false, &child_index(path, i), out, depth + 1);
            }
        }
        _ => {}
    }
}

fn skip_prune(x: &mut Value, s: &Value, root: bool, path: &str, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match x {
        Value::Object(m) => {
            let embedded = root || flag(s, EMBEDDED_RESOURCE);
            for (k, v) in m.iter_mut() {
                if embedded && is_meta_field(k) {
                    continue;
                }
                if let Some(prop) = property(s, k) {
                    prune_rec(v, Some(prop), false, &child_key(path, k), out, depth + 1);
                } else {
                    match additional(s) {
                        Additional::Schema(a) => prune_rec(v, Some(a), false, &child_key(path, k), out, depth + 1),
                        Additional::Bool(true) => prune_rec(v, None, false, &child_key(path, k), out, depth + 1),
                        Additional::Bool(false) | Additional::Absent => {}
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(it) = items_schema(s) {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(v, it, false, &child_index(path, i), out, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// `PruneNonNullableNullsWithoutDefaults`: drop `null`s of fields that are neither nullable nor
/// defaulted. The root's apiVersion/kind/metadata are left alone.
fn prune_nulls(x: &mut Value, s: Option<&Value>, root: bool, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match x {
        Value::Object(m) => {
            let mut remove = Vec::new();
            for (k, v) in m.iter_mut() {
                if root && is_meta_field(k) {
                    continue;
                }
                let sub = s.and_then(|sch| property(sch, k).or_else(|| additional_schema(sch)));
                if v.is_null() {
                    if let Some(sub) = sub {
                        if !nullable(sub) && default_of(sub).is_none() {
                            remove.push(k.clone());
                        }
                    }
                } else {
                    prune_nulls(v, sub, false, depth + 1);
                }
            }
            for k in remove {
                m.remove(&k);
            }
        }
        Value::Array(items) => {
            let it = s.and_then(items_schema);
            for v in items.iter_mut() {
                prune_nulls(v, it, false, depth + 1);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Validate against the schema. Return every error found (not just the first).
/// Support: type (object, array, string, integer, number, boolean), nullable (null allowed only when nullable: true; otherwise an explicit null is an error... check what kube-apiserver does -- note that for fields that are not nullable, apiextensions PRUNES/drops nulls in some cases; follow the real behaviour as best you can determine it), required, enum, minimum/maximum/exclusiveMinimum/exclusiveMaximum, minLength/maxLength, pattern (ECMA-ish regex; use the `regex` crate), minItems/maxItems, minProperties/maxProperties, uniqueItems, format (at least `int32`, `int64`, `date-time`; unknown formats ignored), `x-kubernetes-int-or-string` (integer or string allowed), `anyOf`/`oneOf`/`allOf`/`not` (as validation-only constraints, as structural schemas allow), `x-kubernetes-preserve-unknown-fields`, `additionalProperties`. Do NOT evaluate CEL (`x-kubernetes-validations`): ignore it.
/// The `metadata` property at the root is not validated by this function (the server validates names itself).
///
/// See the module documentation for the exact wording and the known differences from
/// kube-apiserver.
pub fn validate(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    validate_rec(obj, schema, "", 0, &mut out);
    out
}

/// kube-openapi's error name ("path") to a field path, as `kubeOpenAPIResultToFieldErrors`
/// does with a nil root path.
fn field_of(path: &str) -> String {
    if path.is_empty() || path == "." {
        "<nil>".to_string()
    } else {
        path.strip_prefix('.').unwrap_or(path).to_string()
    }
}

fn cause(reason: &str, path: &str, message: String) -> Cause {
    Cause {
        reason: reason.to_string(),
        message,
        field: field_of(path),
    }
}

/// `field.Invalid(path, value, detail)`; `bad` is the already rendered value.
fn invalid(path: &str, bad: &str, detail: &str) -> Cause {
    cause(REASON_INVALID, path, format!("Invalid value: {bad}: {detail}"))
}

/// `errors.InvalidType(path, "body", typ, got)` turned into `field.TypeInvalid`.
fn type_invalid(path: &str, typ: &str, got: &str) -> Cause {
    let q = go_quote(got);
    cause(
        REASON_TYPE_INVALID,
        path,
        format!("Invalid value: {q}: {path} in body must be of type {typ}: {q}"),
    )
}

/// Errors kube-openapi reports as plain `errors.New` values (anyOf & co): the real server maps
/// them to `field.Invalid(nil, "", msg)`.
fn composite(detail: String) -> Cause {
    Cause {
        reason: REASON_INVALID.to_string(),
        message: format!("Invalid value: \"\": {detail}"),
        field: "<nil>".to_string(),
    }
}

fn too_many(path: &str, actual: usize, max: i64) -> Cause {
    cause(
        REASON_TOO_MANY,
        path,
        format!("Too many: {actual}: must have at most {max} items"),
    )
}

/// JSON type name of a value, as kube-openapi infers it (integers are numbers that fit int64).
fn data_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => {
            if n.is_i64() {
                "integer"
            } else {
                "number"
            }
        }
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn schema_types(s: &Value) -> Vec<&str> {
    if flag(s, INT_OR_STRING) {
        return vec!["integer", "string"];
    }
    match kw(s, "type") {
        Some(Value::String(t)) if !t.is_empty() => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Formats apiextensions keeps (`StripUnsupportedFormatsPostProcess`); everything else is
/// removed from the schema before validation.
const SUPPORTED_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

/// The schema's format if the real server would keep it: (as written, normalized).
fn supported_format(s: &Value) -> Option<(&str, String)> {
    let f = kw(s, "format")?.as_str()?;
    if f.is_empty() {
        return None;
    }
    let normalized = f.replace('-', "");
    if SUPPORTED_FORMATS.contains(&normalized.as_str()) {
        Some((f, normalized))
    } else {
        None
    }
}

fn validate_rec(data: &Value, s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    if depth > MAX_DEPTH || !s.is_object() {
        return;
    }
    let types = schema_types(s);
    let format = supported_format(s);

    if data.is_null() {
        // Only the type and enum validators run for nil data.
        if !types.is_empty() && !types.contains(&"null") && !nullable(s) {
            out.push(type_invalid(path, &types.join(","), "null"));
        }
        check_enum(data, s, path, out);
        return;
    }

    check_type(data, &types, format.as_ref().map(|f| f.0), path, out);
    check_composition(data, s, path, depth, out);
    if let Value::String(st) = data {
        check_string(st, s, path, out);
        if let Some((name, normalized)) = &format {
            if !format_ok(normalized, st) {
                out.push(type_invalid_value(path, name, st));
            }
        }
    }
    if let Value::Number(n) = data {
        check_number(n, s, path, out);
    }
    if let Value::Array(items) = data {
        check_array(items, s, path, depth, out);
    }
    check_enum(data, s, path, out);
    if let Value::Object(m) = data {
        check_object(m, s, path, depth, out);
    }
}

/// `errors.InvalidType(path, in, format, data)` as produced by a failed format check: the value
/// is the data itself.
fn type_invalid_value(path: &str, typ: &str, data: &str) -> Cause {
    let q = go_quote(data);
    cause(
        REASON_TYPE_INVALID,
        path,
        format!("Invalid value: {q}: {path} in body must be of type {typ}: {q}"),
    )
}

fn check_type(data: &Value, types: &[&str], format: Option<&str>, path: &str, out: &mut Vec<Cause>) {
    if types.is_empty() && format.is_none() {
        return;
    }
    let dt = data_type(data);
    let string_or_array = data.is_string() || data.is_array();
    let has = |t: &str| types.contains(&t);
    let is_float_int = dt == "number" && has("integer") && data.as_f64().map(is_float64_json_integer).unwrap_or(false);
    let is_int_float = dt == "integer" && has("number");
    let matches = has(dt) || is_float_int || is_int_float;

    if let Some(f) = format {
        if !string_or_array && !matches {
            let data_format = match dt {
                "integer" => "int64",
                "number" => "float64",
                _ => "",
            };
            out.push(type_invalid(path, f, data_format));
            return;
        }
        if !(has("number") || has("integer")) && string_or_array {
            return;
        }
    }
    if !matches {
        out.push(type_invalid(path, &types.join(","), dt));
    }
}

fn sub_validate(data: &Value, s: &Value, path: &str, depth: usize) -> Vec<Cause> {
    let mut v = Vec::new();
    validate_rec(data, s, path, depth + 1, &mut v);
    v
}

fn check_composition(data: &Value, s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    let qpath = go_quote(path);

    if let Some(Value::Array(any_of)) = kw(s, "anyOf") {
        if !any_of.is_empty() {
            let mut best: Option<Vec<Cause>> = None;
            let mut succeeded = false;
            for sub in any_of {
                let r = sub_validate(data, sub, path, depth);
                if r.is_empty() {
                    succeeded = true;
                    best = None;
                    break;
                }
                if best.as_ref().is_none_or(|b| r.len() < b.len()) {
                    best = Some(r);
                }
            }
            if !succeeded {
                out.push(composite(format!("{qpath} must validate at least one schema (anyOf)")));
            }
            if let Some(b) = best {
                out.extend(b);
            }
        }
    }

    if let Some(Value::Array(one_of)) = kw(s, "oneOf") {
        if !one_of.is_empty() {
            let mut best: Option<Vec<Cause>> = None;
            let mut validated = 0usize;
            for sub in one_of {
                let r = sub_validate(data, sub, path, depth);
                if r.is_empty() {
                    validated += 1;
                    best = None;
                    continue;
                }
                if validated == 0 && best.as_ref().is_none_or(|b| r.len() < b.len()) {
                    best = Some(r);
                }
            }
            if validated != 1 {
                let extra = if validated == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {validated} valid alternatives")
                };
                out.push(composite(format!(
                    "{qpath} must validate one and only one schema (oneOf). {extra}"
                )));
                if let Some(b) = best {
                    out.extend(b);
                }
            }
        }
    }

    if let Some(Value::Array(all_of)) = kw(s, "allOf") {
        if !all_of.is_empty() {
            let mut validated = 0usize;
            for sub in all_of {
                let r = sub_validate(data, sub, path, depth);
                if r.is_empty() {
                    validated += 1;
                }
                out.extend(r);
            }
            if validated != all_of.len() {
                let extra = if validated == 0 { ". None validated" } else { "" };
                out.push(composite(format!(
                    "{qpath} must validate all the schemas (allOf){extra}"
                )));
            }
        }
    }

    if let Some(not) = kw(s, "not") {
        if not.is_object() && sub_validate(data, not, path, depth).is_empty() {
            out.push(composite(format!("{qpath} must not validate the schema (not)")));
        }
    }
}

fn check_string(st: &str, s: &Value, path: &str, out: &mut Vec<Cause>) {
    // kube-openapi's string validator stops at the first failure.
    let len = i64::try_from(st.chars().count()).unwrap_or(i64::MAX);
    if let Some(max) = int_kw(s, "maxLength") {
        if len > max {
            out.push(cause(
                REASON_TOO_LONG,
                path,
                format!("Too long: may not be longer than {max}"),
            ));
            return;
        }
    }
    if let Some(min) = int_kw(s, "minLength") {
        if len < min {
            out.push(invalid(
                path,
                &go_quote(st),
                &format!("{path} in body should be at least {min} chars long"),
            ));
            return;
        }
    }
    if let Some(Value::String(pattern)) = kw(s, "pattern") {
        if pattern.is_empty() {
            return;
        }
        match regex_is_match(pattern, st) {
            Ok(true) => {}
            Ok(false) => out.push(invalid(
                path,
                &go_quote(st),
                &format!("{path} in body should match '{pattern}'"),
            )),
            Err(e) => out.push(invalid(
                path,
                &go_quote(st),
                &format!("{path} in body should match '{pattern}, but pattern is invalid: {e}'"),
            )),
        }
    }
}

fn check_number(n: &serde_json::Number, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let multiple_of = num_kw(s, "multipleOf");
    let minimum = num_kw(s, "minimum");
    let maximum = num_kw(s, "maximum");
    let excl_min = flag(s, "exclusiveMinimum");
    let excl_max = flag(s, "exclusiveMaximum");

    if let Some(i) = n.as_i64() {
        // Native int64 comparisons, with the bound truncated to int64 as kube-openapi does.
        let bad = i.to_string();
        if let Some(factor) = multiple_of {
            let fi = factor as i64;
            if factor < 0.0 || fi < 0 {
                out.push(invalid(
                    path,
                    &go_float(factor),
                    &format!(
                        "factor MultipleOf declared for {path} must be positive: {}",
                        go_float(factor)
                    ),
                ));
            } else if fi == 0 {
                // kube-openapi would divide by zero here; use the float check instead.
                if !float_multiple_of(i as f64, factor) {
                    out.push(invalid(
                        path,
                        &bad,
                        &format!("{path} in body should be a multiple of {}", go_float(factor)),
                    ));
                }
            } else if i.checked_rem(fi).unwrap_or(0) != 0 {
                out.push(invalid(
                    path,
                    &bad,
                    &format!("{path} in body should be a multiple of {fi}"),
                ));
            }
        }
        if let Some(m) = minimum {
            let mi = m as i64;
            if (!excl_min && i < mi) || (excl_min && i <= mi) {
                let rel = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                out.push(invalid(path, &bad, &format!("{path} in body should be {rel} {mi}")));
            }
        }
        if let Some(m) = maximum {
            let mi = m as i64;
            if (!excl_max && i > mi) || (excl_max && i >= mi) {
                let rel = if excl_max { "less than" } else { "less than or equal to" };
                out.push(invalid(path, &bad, &format!("{path} in body should be {rel} {mi}")));
            }
        }
        return;
    }

    let Some(f) = n.as_f64() else {
        return;
    };
    let bad = go_float(f);
    if let Some(factor) = multiple_of {
        if factor < 0.0 {
            out.push(invalid(
                path,
                &go_float(factor),
                &format!(
                    "factor MultipleOf declared for {path} must be positive: {}",
                    go_float(factor)
                ),
            ));
        } else if !float_multiple_of(f, factor) {
            out.push(invalid(
                path,
                &bad,
                &format!("{path} in body should be a multiple of {}", go_float(factor)),
            ));
        }
    }
    if let Some(m) = minimum {
        if (!excl_min && f < m) || (excl_min && f <= m) {
            let rel = if excl_min {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(invalid(
                path,
                &bad,
                &format!("{path} in body should be {rel} {}", go_float(m)),
            ));
        }
    }
    if let Some(m) = maximum {
        if (!excl_max && f > m) || (excl_max && f >= m) {
            let rel = if excl_max { "less than" } else { "less than or equal to" };
            out.push(invalid(
                path,
                &bad,
                &format!("{path} in body should be {rel} {}", go_float(m)),
            ));
        }
    }
}

fn float_multiple_of(data: f64, factor: f64) -> bool {
    let mult = if factor < 1.0 {
        1.0 / factor * data
    } else {
        data / factor
    };
    is_float64_json_integer(mult)
}

/// go-openapi's `swag.IsFloat64AJSONInteger`, approximately.
fn is_float64_json_integer(f: f64) -> bool {
    if !f.is_finite() || f.abs() > 9_007_199_254_740_991.0 {
        return false;
    }
    let r = f.round();
    if f == r {
        return true;
    }
    let diff = (f - r).abs();
    diff / (f.abs() + r.abs()) < 1e-9
}

fn check_array(items: &[Value], s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    match kw(s, "items") {
        Some(it @ Value::Object(_)) => {
            for (i, v) in items.iter().enumerate() {
                validate_rec(v, it, &child_index(path, i), depth + 1, out);
            }
        }
        Some(Value::Array(tuple)) => {
            for (i, (v, it)) in items.iter().zip(tuple.iter()).enumerate() {
                validate_rec(v, it, &child_index(path, i), depth + 1, out);
            }
        }
        _ => {}
    }
    let len = items.len();
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    if let Some(min) = int_kw(s, "minItems") {
        if len_i < min {
            out.push(invalid(
                path,
                &len.to_string(),
                &format!("{path} in body should have at least {min} items"),
            ));
        }
    }
    if let Some(max) = int_kw(s, "maxItems") {
        if len_i > max {
            out.push(too_many(path, len, max));
        }
    }
    if flag(s, "uniqueItems") {
        let dup = items
            .iter()
            .enumerate()
            .any(|(i, a)| items.get(..i).unwrap_or(&[]).iter().any(|b| a == b));
        if dup {
            out.push(invalid(
                path,
                "\"\"",
                &format!("{path} in body shouldn't contain duplicates"),
            ));
        }
    }
}

fn enum_eq(data: &Value, e: &Value) -> bool {
    match (data, e) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        _ => data == e,
    }
}

fn check_enum(data: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(Value::Array(values)) = kw(s, "enum") else {
        return;
    };
    if values.is_empty() || values.iter().any(|e| enum_eq(data, e)) {
        return;
    }
    let supported: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(st) => go_quote(st),
            other => go_quote(&go_json(other)),
        })
        .collect();
    let mut message = format!("Unsupported value: {}", render_bad(data));
    if !supported.is_empty() {
        let _ = write!(message, ": supported values: {}", supported.join(", "));
    }
    out.push(cause(REASON_NOT_SUPPORTED, path, message));
}

fn check_object(m: &Map<String, Value>, s: &Value, path: &str, depth: usize, out: &mut Vec<Cause>) {
    let root = depth == 0 && path.is_empty();
    let n = m.len();
    let n_i = i64::try_from(n).unwrap_or(i64::MAX);
    // kube-openapi returns early on min/maxProperties failures.
    if let Some(min) = int_kw(s, "minProperties") {
        if n_i < min {
            out.push(invalid(
                path,
                &n.to_string(),
                &format!("{path} in body should have at least {min} properties"),
            ));
            return;
        }
    }
    if let Some(max) = int_kw(s, "maxProperties") {
        if n_i > max {
            out.push(too_many(path, n, max));
            return;
        }
    }

    let props = properties(s);
    let declared = |k: &str| props.is_some_and(|p| p.contains_key(k));
    match additional(s) {
        Additional::Bool(false) => {
            for k in sorted_keys(m) {
                if declared(k) || (root && k == "metadata") {
                    continue;
                }
                out.push(invalid(
                    path,
                    &go_quote(k),
                    &format!("{path}.{k} in body is a forbidden property"),
                ));
            }
        }
        Additional::Schema(a) => {
            for k in sorted_keys(m) {
                if declared(k) || (root && k == "metadata") {
                    continue;
                }
                if let Some(v) = m.get(k) {
                    validate_rec(v, a, &format!("{path}.{k}"), depth + 1, out);
                }
            }
        }
        Additional::Bool(true) | Additional::Absent => {}
    }

    if let Some(props) = props {
        for k in sorted_keys(props) {
            if root && k == "metadata" {
                continue;
            }
            if let (Some(v), Some(prop)) = (m.get(k), props.get(k)) {
                validate_rec(v, prop, &child_key(path, k), depth + 1, out);
            }
        }
    }

    if let Some(Value::Array(required)) = kw(s, "required") {
        for k in required.iter().filter_map(Value::as_str) {
            if root && k == "metadata" {
                continue;
            }
            if !m.contains_key(k) {
                out.push(cause(
                    REASON_REQUIRED,
                    &format!("{path}.{k}"),
                    "Required value".to_string(),
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Formats (go-openapi strfmt, as far as apiextensions keeps them)
// ---------------------------------------------------------------------------

fn format_ok(normalized: &str, v: &str) -> bool {
    match normalized {
        "datetime" => is_date_time(v),
        "date" => is_date(v),
        "uuid" => regex_is_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            v,
        )
        .unwrap_or(true),
        "uuid3" => regex_is_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            v,
        )
        .unwrap_or(true),
        "uuid4" => regex_is_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            v,
        )
        .unwrap_or(true),
        "uuid5" => regex_is_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            v,
        )
        .unwrap_or(true),
        "ipv4" => v.parse::<std::net::IpAddr>().is_ok() && v.contains('.'),
        "ipv6" => v.parse::<std::net::IpAddr>().is_ok() && v.contains(':'),
        "cidr" => is_cidr(v),
        "mac" => is_mac(v),
        "hostname" => is_hostname(v),
        "byte" => is_base64(v),
        "hexcolor" => regex_is_match(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", v).unwrap_or(true),
        "ssn" => regex_is_match(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", v).unwrap_or(true),
        "bsonobjectid" => v.len() == 24 && v.bytes().all(|b| b.is_ascii_hexdigit()),
        // password, uri, email, duration, isbn*, creditcard, rgbcolor: not checked here.
        _ => true,
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => {
            if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) {
                29
            } else {
                28
            }
        }
        _ => 0,
    }
}

/// Go `time.Parse("2006-01-02", s)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

/// strfmt `IsDateTime`.
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    let (Some(date), Some(time)) = (parts.first(), parts.get(1)) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    if !regex_is_match(
        r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$",
        time,
    )
    .unwrap_or(false)
    {
        return false;
    }
    let h = time.get(0..2).unwrap_or("99");
    let m = time.get(3..5).unwrap_or("99");
    let sec = time.get(6..8).unwrap_or("99");
    h <= "23" && m <= "59" && sec <= "59"
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Go `net.ParseMAC`.
fn is_mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|c| c.is_ascii_hexdigit());
    let ok_count = |n: usize| n == 6 || n == 8 || n == 20;
    for sep in [':', '-'] {
        if s.contains(sep) {
            let parts: Vec<&str> = s.split(sep).collect();
            return ok_count(parts.len()) && parts.iter().all(|p| hex(p, 2));
        }
    }
    if s.contains('.') {
        let parts: Vec<&str> = s.split('.').collect();
        return ok_count(parts.len() * 2) && parts.iter().all(|p| hex(p, 4));
    }
    false
}

/// Approximation of strfmt `IsHostname`.
fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    labels.iter().all(|l| {
        let n = l.chars().count();
        (1..=63).contains(&n)
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    })
}

/// Go `base64.StdEncoding.DecodeString` succeeds (newlines are ignored, padding required).
fn is_base64(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|c| *c != b'\n' && *c != b'\r').collect();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    if pad > 2 {
        return false;
    }
    b.get(..b.len().saturating_sub(pad))
        .unwrap_or(&[])
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

// ---------------------------------------------------------------------------
// Regex cache
// ---------------------------------------------------------------------------

type RegexCache = HashMap<String, Result<regex::Regex, String>>;

thread_local! {
    static REGEX_CACHE: RefCell<RegexCache> = RefCell::new(HashMap::new());
}

fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 22)
        .dfa_size_limit(1 << 22)
        .build()
        .map_err(|e| {
            // Flatten the multi-line diagnostic into one line.
            e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
        })
}

/// Unanchored match like Go's `regexp.MatchString`; `Err` holds the compile error.
fn regex_is_match(pattern: &str, text: &str) -> Result<bool, String> {
    let cached = REGEX_CACHE
        .try_with(|c| {
            let mut cache = c.try_borrow_mut().ok()?;
            if cache.len() > 512 {
                cache.clear();
            }
            let re = cache
                .entry(pattern.to_string())
                .or_insert_with(|| compile_regex(pattern));
            Some(re.as_ref().map(|r| r.is_match(text)).map_err(Clone::clone))
        })
        .ok()
        .flatten();
    match cached {
        Some(r) => r,
        None => compile_regex(pattern).map(|r| r.is_match(text)),
    }
}

// ---------------------------------------------------------------------------
// Go-compatible value rendering
// ---------------------------------------------------------------------------

/// A bad value as `field.Error.ErrorBody` prints it.
fn render_bad(v: &Value) -> String {
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
fn go_json(v: &Value) -> String {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e21 {
                format!("{f:.0}")
            } else {
                n.to_string()
            }
        }
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// Go `strconv.Quote` / `%q`.
fn go_quote(s: &str) -> String {
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

/// Go `%v` for a float64 (strconv 'g' with shortest precision: exponent form when the decimal
/// exponent is < -4 or >= 6, e.g. `1e+06`, `1.5e-05`; otherwise plain, e.g. `0.5`, `123456`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{f:e}");
    let Some((mant, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(digits.get(..1).unwrap_or("0"));
        if digits.len() > 1 {
            out.push('.');
            out.push_str(digits.get(1..).unwrap_or_default());
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(digits.get(..int_len).unwrap_or_default());
            out.push('.');
            out.push_str(digits.get(int_len..).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests;
