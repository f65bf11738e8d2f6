//! Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`) for the built-in kinds
//! the simulator serves, through the k8s-pb crate's prost messages.
//!
//! Why: client-go's typed clients — kubectl's `create`, Helm's release storage — send protobuf
//! bodies for built-in kinds and may ask for protobuf answers. A protobuf body is turned into
//! the JSON the same object would have been sent as and then takes the ordinary JSON path
//! (validation, admission, ...); an answer is encoded from the stored JSON when `Accept` asks
//! for protobuf first. The JSON ⇄ message conversions are generated (`generated.rs`, by
//! `make protobuf`) from k8s-pb's messages and k8s-openapi's field names; `json.rs` has the
//! helpers and the types whose JSON is not an object (times, quantities, int-or-string, raw
//! JSON).
//!
//! A body reads as kube-apiserver reads it — into the Go struct, then out as Go's JSON:
//! client-go writes every non-pointer field, and a zero one (`stdin: false`, `hostNetwork:
//! false`, a nested `generation: 0`) is left out as `omitempty` leaves it out, while a pointer
//! set to zero (`replicas: 0`, `terminationGracePeriodSeconds: 0`) or a field without
//! `omitempty` (`containerPort`) is kept; a zero time is `null` (a pod template's
//! `creationTimestamp`). Which fields are pointers is not in k8s-pb nor k8s-openapi: the
//! generator takes it from `go_fields.rs`, derived from the Go structs' tags.
//!
//! Custom resources have no protobuf form, as on kube-apiserver: a protobuf body of a kind not
//! served here is 415 naming the kind; a malformed body is 400.
//!
//! Wire format: the 4-byte magic `k8s\0`, then a `runtime.Unknown` whose `raw` field is the
//! object's own message.
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::resources::ResourceType;

mod generated;
pub mod json;

pub use generated::KINDS;
pub use json::GO_ZERO_TIME_SECONDS;

/// The media type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these bytes (k8s.io/apimachinery protobuf serializer).
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Whether objects of this resource have a protobuf encoding.
pub fn encodable(rt: &ResourceType) -> bool {
    !rt.custom && KINDS.contains(&(rt.api_version().as_str(), rt.kind.as_str()))
}

/// Decode a protobuf request body into the JSON object it stands for.
///
/// Errors: a malformed body is 400 BadRequest; a well-formed body of a kind not served here is
/// 415 UnsupportedMediaType naming the kind.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| bad("the body does not start with the protobuf magic \"k8s\\x00\""))?;
    let unknown = Unknown::decode(rest).map_err(|e| bad(format!("runtime.Unknown: {e}")))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if kind.is_empty() {
        return Err(bad("the object has no kind in its typeMeta"));
    }
    match unknown.content_encoding.as_deref() {
        None | Some("") => {}
        Some(other) => return Err(bad(format!("contentEncoding {other:?} is not supported"))),
    }
    match unknown.content_type.as_deref() {
        None | Some("") | Some(MEDIA_TYPE) => {}
        Some(other) => {
            return Err(bad(format!(
                "contentType {other:?} of the inner object is not supported"
            )))
        }
    }
    let raw = unknown.raw.unwrap_or_default();
    let mut v = match generated::decode_kind(&api_version, &kind, &raw) {
        Some(r) => r.map_err(|e| bad(format!("{api_version} {kind}: {e}")))?,
        None => return Err(unsupported_kind(&api_version, &kind)),
    };
    // The object's own creation time is the server's to set (on create; carried over on
    // update): the zero one every Go client sends is no part of the request.
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        if meta.get("creationTimestamp").is_some_and(Value::is_null) {
            meta.remove("creationTimestamp");
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.insert("apiVersion".into(), Value::String(api_version.clone()));
        obj.insert("kind".into(), Value::String(kind.clone()));
    }
    Ok(v)
}

/// An object (or list) in protobuf, envelope included; None when its kind has no encoding.
pub fn encode(v: &Value) -> Option<Result<Vec<u8>, String>> {
    let api_version = v.get("apiVersion").and_then(Value::as_str)?;
    let kind = v.get("kind").and_then(Value::as_str)?;
    let raw = match generated::encode_kind(api_version, kind, v)? {
        Ok(raw) => raw,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(envelope(api_version, kind, raw)))
}

/// The body of a protobuf request or answer: [`MAGIC`], then `runtime.Unknown{typeMeta, raw}`
/// (`raw` an encoded object of `kind`).
pub fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [MAGIC.as_slice(), &unknown.encode_to_vec()].concat()
}

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("the protobuf body could not be decoded: {message}"))
}

fn unsupported_kind(api_version: &str, kind: &str) -> ApiError {
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType",
        message: format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; \
             {MEDIA_TYPE} is served for built-in kinds only, got kind {kind:?} (apiVersion {api_version:?})"
        ),
        details: Some(json!({"kind": kind, "group": group})),
    }
}

#[cfg(test)]
mod tests;
