//! Field errors as kube-apiserver reports them: kube-openapi validation errors turned into
//! `field.Error`s by `kubeOpenAPIResultToFieldErrors`.

use super::render::go_quote;

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

pub(super) const REASON_REQUIRED: &str = "FieldValueRequired";
pub(super) const REASON_INVALID: &str = "FieldValueInvalid";
pub(super) const REASON_NOT_SUPPORTED: &str = "FieldValueNotSupported";
pub(super) const REASON_TOO_LONG: &str = "FieldValueTooLong";
pub(super) const REASON_TOO_MANY: &str = "FieldValueTooMany";
pub(super) const REASON_TYPE_INVALID: &str = "FieldValueTypeInvalid";

/// kube-openapi's error name ("path") to a field path, as `kubeOpenAPIResultToFieldErrors`
/// does with a nil root path.
fn field_of(path: &str) -> String {
    if path.is_empty() || path == "." {
        "<nil>".to_string()
    } else {
        path.strip_prefix('.').unwrap_or(path).to_string()
    }
}

pub(super) fn cause(reason: &str, path: &str, message: String) -> Cause {
    Cause {
        reason: reason.to_string(),
        message,
        field: field_of(path),
    }
}

/// `field.Invalid(path, value, detail)`; `bad` is the already rendered value.
pub(super) fn invalid(path: &str, bad: &str, detail: &str) -> Cause {
    cause(REASON_INVALID, path, format!("Invalid value: {bad}: {detail}"))
}

/// `errors.InvalidType(path, "body", typ, got)` turned into `field.TypeInvalid`.
pub(super) fn type_invalid(path: &str, typ: &str, got: &str) -> Cause {
    let q = go_quote(got);
    cause(
        REASON_TYPE_INVALID,
        path,
        format!("Invalid value: {q}: {path} in body must be of type {typ}: {q}"),
    )
}

/// Errors kube-openapi reports as plain `errors.New` values (anyOf & co): the real server maps
/// them to `field.Invalid(nil, "", msg)`.
pub(super) fn composite(detail: String) -> Cause {
    Cause {
        reason: REASON_INVALID.to_string(),
        message: format!("Invalid value: \"\": {detail}"),
        field: "<nil>".to_string(),
    }
}

pub(super) fn too_many(path: &str, actual: usize, max: i64) -> Cause {
    cause(
        REASON_TOO_MANY,
        path,
        format!("Too many: {actual}: must have at most {max} items"),
    )
}

/// `errors.InvalidType(path, in, format, data)` as produced by a failed format check: the value
/// is the data itself.
pub(super) fn type_invalid_value(path: &str, typ: &str, data: &str) -> Cause {
    let q = go_quote(data);
    cause(
        REASON_TYPE_INVALID,
        path,
        format!("Invalid value: {q}: {path} in body must be of type {typ}: {q}"),
    )
}
