//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`).
//!
//! Why: client-go's typed clients send protobuf for built-in kinds. Helm's Secret storage
//! driver writes its release record that way (`POST`/`PUT` of a core/v1 Secret), so without
//! this the simulator could not hold Helm releases. Only what those clients send is decoded:
//! core/v1 `Secret` and `ConfigMap`, and the `DeleteOptions` body of a delete. Each is turned
//! into the JSON that the same object would have been sent as, and then takes the ordinary
//! JSON write path (validation, admission, ...) unchanged. Other kinds get 415 naming the kind;
//! responses are always JSON, which client-go accepts whatever it asked for.
//!
//! Wire format: the 4-byte magic `k8s\0`, then a `runtime.Unknown` message whose `raw` field
//! is the object's own message. The message structs below copy the field numbers of
//! k8s.io/apimachinery `runtime/generated.proto` and `apis/meta/v1/generated.proto`, and of
//! k8s.io/api `core/v1/generated.proto` (all proto2, so scalars are `optional`: presence is
//! kept where the Go type has a pointer and JSON would show an unset field as absent). Fields
//! not listed are skipped by prost, as Go skips unknown fields.
use std::collections::BTreeMap;

use base64::Engine as _;
use prost::Message;
use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// The media type client-go sends protobuf bodies as.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these bytes (k8s.io/apimachinery protobuf serializer).
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// `runtime.Unknown`: the envelope around every object.
#[derive(Clone, PartialEq, Message)]
pub struct Unknown {
    #[prost(message, optional, tag = "1")]
    pub type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    pub content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub content_type: Option<String>,
}

/// `runtime.TypeMeta` (note: apiVersion is 1 here, unlike meta/v1's TypeMeta).
#[derive(Clone, PartialEq, Message)]
pub struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    pub api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub kind: Option<String>,
}

/// `meta/v1.Time`: seconds and nanos since the Unix epoch.
#[derive(Clone, PartialEq, Message)]
pub struct Time {
    #[prost(int64, optional, tag = "1")]
    pub seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    pub nanos: Option<i32>,
}

/// `meta/v1.ObjectMeta`.
#[derive(Clone, PartialEq, Message)]
pub struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub generate_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub namespace: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub self_link: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub uid: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub resource_version: Option<String>,
    #[prost(int64, optional, tag = "7")]
    pub generation: Option<i64>,
    #[prost(message, optional, tag = "8")]
    pub creation_timestamp: Option<Time>,
    #[prost(message, optional, tag = "9")]
    pub deletion_timestamp: Option<Time>,
    #[prost(int64, optional, tag = "10")]
    pub deletion_grace_period_seconds: Option<i64>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    pub annotations: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "13")]
    pub owner_references: Vec<OwnerReference>,
    #[prost(string, repeated, tag = "14")]
    pub finalizers: Vec<String>,
    #[prost(message, repeated, tag = "17")]
    pub managed_fields: Vec<ManagedFieldsEntry>,
}

/// `meta/v1.OwnerReference`.
#[derive(Clone, PartialEq, Message)]
pub struct OwnerReference {
    #[prost(string, optional, tag = "1")]
    pub kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub uid: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub api_version: Option<String>,
    #[prost(bool, optional, tag = "6")]
    pub controller: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    pub block_owner_deletion: Option<bool>,
}

/// `meta/v1.ManagedFieldsEntry`; `fieldsV1` is `FieldsV1 { bytes Raw = 1 }`, JSON inside.
#[derive(Clone, PartialEq, Message)]
pub struct ManagedFieldsEntry {
    #[prost(string, optional, tag = "1")]
    pub manager: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub operation: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub api_version: Option<String>,
    #[prost(message, optional, tag = "4")]
    pub time: Option<Time>,
    #[prost(string, optional, tag = "6")]
    pub fields_type: Option<String>,
    #[prost(message, optional, tag = "7")]
    pub fields_v1: Option<FieldsV1>,
    #[prost(string, optional, tag = "8")]
    pub subresource: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct FieldsV1 {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub raw: Option<Vec<u8>>,
}

/// `core/v1.Secret`.
#[derive(Clone, PartialEq, Message)]
pub struct Secret {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    pub data: BTreeMap<String, Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    pub r#type: Option<String>,
    #[prost(btree_map = "string, string", tag = "4")]
    pub string_data: BTreeMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    pub immutable: Option<bool>,
}

/// `core/v1.ConfigMap`.
#[derive(Clone, PartialEq, Message)]
pub struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    pub data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    pub binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    pub immutable: Option<bool>,
}

/// `meta/v1.DeleteOptions`: client-go encodes a delete's options body like any object.
#[derive(Clone, PartialEq, Message)]
pub struct DeleteOptions {
    #[prost(int64, optional, tag = "1")]
    pub grace_period_seconds: Option<i64>,
    #[prost(message, optional, tag = "2")]
    pub preconditions: Option<Preconditions>,
    #[prost(bool, optional, tag = "3")]
    pub orphan_dependents: Option<bool>,
    #[prost(string, optional, tag = "4")]
    pub propagation_policy: Option<String>,
    #[prost(string, repeated, tag = "5")]
    pub dry_run: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Preconditions {
    #[prost(string, optional, tag = "1")]
    pub uid: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub resource_version: Option<String>,
}

/// Whether objects of this resource can be answered in protobuf.
pub fn encodable(_rt: &crate::resources::ResourceType) -> bool {
    false
}

/// Decode a protobuf request body into the JSON object it stands for.
///
/// Errors: a malformed body is 400 BadRequest; a well-formed body of a kind not decoded here
/// is 415 UnsupportedMediaType naming the kind.
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
    let what = |e: prost::DecodeError| bad(format!("{api_version} {kind}: {e}"));
    let mut v = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret_json(Secret::decode(raw.as_slice()).map_err(what)?)?,
        ("v1", "ConfigMap") => config_map_json(ConfigMap::decode(raw.as_slice()).map_err(what)?)?,
        // client-go sends the options of a delete under either group version.
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => {
            delete_options_json(DeleteOptions::decode(raw.as_slice()).map_err(what)?)
        }
        _ => return Err(unsupported_kind(&api_version, &kind)),
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("apiVersion".into(), Value::String(api_version.clone()));
        obj.insert("kind".into(), Value::String(kind.clone()));
    }
    Ok(v)
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
            "the body of the request was in an unknown format - baton-sim decodes {MEDIA_TYPE} only for \
             v1 Secret, ConfigMap and DeleteOptions; got kind {kind:?} (apiVersion {api_version:?}): \
             send it as application/json"
        ),
        details: Some(json!({"kind": kind, "group": group})),
    }
}

/// Insert `v` under `key` unless it is None (Go's `omitempty` / nil pointer).
fn put(obj: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        obj.insert(key.to_string(), v);
    }
}

/// A string field as Go's JSON shows it: omitted when empty.
fn string(s: Option<String>) -> Option<Value> {
    s.filter(|s| !s.is_empty()).map(Value::String)
}

fn string_map(m: BTreeMap<String, String>) -> Option<Value> {
    (!m.is_empty()).then(|| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
}

/// `map<string, bytes>` as JSON: base64 (standard alphabet, padded), as Go's `[]byte`.
fn bytes_map(m: BTreeMap<String, Vec<u8>>) -> Option<Value> {
    let b64 = base64::engine::general_purpose::STANDARD;
    (!m.is_empty()).then(|| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(b64.encode(v)))).collect()))
}

/// Seconds of Go's zero `time.Time` (year 1): what an unset non-pointer `Time` is sent as.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// `Time` in JSON: RFC 3339 to the second in UTC; the zero time is unset.
fn time(t: Option<Time>) -> Result<Option<Value>, ApiError> {
    let Some(t) = t else { return Ok(None) };
    let seconds = t.seconds.unwrap_or(0);
    if seconds == GO_ZERO_TIME_SECONDS {
        return Ok(None);
    }
    let ts = jiff::Timestamp::new(seconds, t.nanos.unwrap_or(0)).map_err(|e| bad(format!("time {seconds}s: {e}")))?;
    Ok(Some(Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())))
}

fn object_meta_json(m: ObjectMeta) -> Result<Value, ApiError> {
    let mut o = Map::new();
    put(&mut o, "name", string(m.name));
    put(&mut o, "generateName", string(m.generate_name));
    put(&mut o, "namespace", string(m.namespace));
    put(&mut o, "selfLink", string(m.self_link));
    put(&mut o, "uid", string(m.uid));
    put(&mut o, "resourceVersion", string(m.resource_version));
    put(&mut o, "generation", m.generation.filter(|g| *g != 0).map(Value::from));
    put(&mut o, "creationTimestamp", time(m.creation_timestamp)?);
    put(&mut o, "deletionTimestamp", time(m.deletion_timestamp)?);
    put(
        &mut o,
        "deletionGracePeriodSeconds",
        m.deletion_grace_period_seconds.map(Value::from),
    );
    put(&mut o, "labels", string_map(m.labels));
    put(&mut o, "annotations", string_map(m.annotations));
    if !m.owner_references.is_empty() {
        let refs = m.owner_references.into_iter().map(|r| {
            // apiVersion, kind, name and uid have no omitempty in Go.
            let mut o = Map::new();
            o.insert("apiVersion".into(), Value::String(r.api_version.unwrap_or_default()));
            o.insert("kind".into(), Value::String(r.kind.unwrap_or_default()));
            o.insert("name".into(), Value::String(r.name.unwrap_or_default()));
            o.insert("uid".into(), Value::String(r.uid.unwrap_or_default()));
            put(&mut o, "controller", r.controller.map(Value::Bool));
            put(&mut o, "blockOwnerDeletion", r.block_owner_deletion.map(Value::Bool));
            Value::Object(o)
        });
        o.insert("ownerReferences".into(), Value::Array(refs.collect()));
    }
    if !m.finalizers.is_empty() {
        o.insert("finalizers".into(), Value::from(m.finalizers));
    }
    if !m.managed_fields.is_empty() {
        let mut entries = Vec::with_capacity(m.managed_fields.len());
        for f in m.managed_fields {
            let mut e = Map::new();
            put(&mut e, "manager", string(f.manager));
            put(&mut e, "operation", string(f.operation));
            put(&mut e, "apiVersion", string(f.api_version));
            put(&mut e, "time", time(f.time)?);
            put(&mut e, "fieldsType", string(f.fields_type));
            if let Some(raw) = f.fields_v1.and_then(|f| f.raw) {
                let fields = serde_json::from_slice(&raw).map_err(|e| bad(format!("managedFields fieldsV1: {e}")))?;
                e.insert("fieldsV1".into(), fields);
            }
            put(&mut e, "subresource", string(f.subresource));
            entries.push(Value::Object(e));
        }
        o.insert("managedFields".into(), Value::Array(entries));
    }
    Ok(Value::Object(o))
}

fn secret_json(s: Secret) -> Result<Value, ApiError> {
    let mut o = Map::new();
    o.insert("metadata".into(), object_meta_json(s.metadata.unwrap_or_default())?);
    put(&mut o, "data", bytes_map(s.data));
    put(&mut o, "type", string(s.r#type));
    put(&mut o, "stringData", string_map(s.string_data));
    put(&mut o, "immutable", s.immutable.map(Value::Bool));
    Ok(Value::Object(o))
}

fn config_map_json(c: ConfigMap) -> Result<Value, ApiError> {
    let mut o = Map::new();
    o.insert("metadata".into(), object_meta_json(c.metadata.unwrap_or_default())?);
    put(&mut o, "data", string_map(c.data));
    put(&mut o, "binaryData", bytes_map(c.binary_data));
    put(&mut o, "immutable", c.immutable.map(Value::Bool));
    Ok(Value::Object(o))
}

fn delete_options_json(d: DeleteOptions) -> Value {
    let mut o = Map::new();
    put(&mut o, "gracePeriodSeconds", d.grace_period_seconds.map(Value::from));
    if let Some(p) = d.preconditions {
        let mut pre = Map::new();
        put(&mut pre, "uid", p.uid.map(Value::String));
        put(&mut pre, "resourceVersion", p.resource_version.map(Value::String));
        o.insert("preconditions".into(), Value::Object(pre));
    }
    put(&mut o, "orphanDependents", d.orphan_dependents.map(Value::Bool));
    put(&mut o, "propagationPolicy", string(d.propagation_policy));
    if !d.dry_run.is_empty() {
        o.insert("dryRun".into(), Value::from(d.dry_run));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests;
