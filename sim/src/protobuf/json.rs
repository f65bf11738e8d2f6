//! Between k8s-pb's prost messages and the JSON the API uses: the [`Pb`] trait the generated
//! code implements per message, the field helpers it calls, and the messages whose JSON form is
//! not an object (Time, MicroTime, Quantity, IntOrString, RawExtension, FieldsV1).
//!
//! JSON follows what kube-apiserver's Go makes of the same message: client-go writes every
//! non-pointer field, so a non-pointer `omitempty` scalar is left out at its zero value (`n`,
//! `s`: `stdin: false`, `generation: 0`, `""`), while a scalar Go keeps at zero — a pointer, or
//! a field without `omitempty`, listed in `go_fields.rs` — is kept whenever sent (`keep`:
//! `replicas: 0`). A message that was sent is written even when empty, as Go writes a struct
//! (`resources: {}`), and a zero time is `null`. Lists and maps are left out when empty,
//! `bytes` are base64, times are RFC 3339.
use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_pb as pb;
use serde_json::{Map, Value};

/// A k8s-pb message with a JSON form.
pub trait Pb: prost::Message + Default + Sized {
    fn to_json(&self) -> Result<Value, String>;
    fn from_json(v: &Value) -> Result<Self, String>;
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

// --- to JSON ---

pub fn s(o: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
        o.insert(key.to_string(), Value::String(v.clone()));
    }
}

/// A non-pointer `omitempty` number or bool: left out at zero, as Go's `omitempty` does.
pub fn n<T: Copy + Default + PartialEq + Into<Value>>(o: &mut Map<String, Value>, key: &str, v: &Option<T>) {
    if let Some(v) = v.filter(|v| *v != T::default()) {
        o.insert(key.to_string(), v.into());
    }
}

/// A scalar Go keeps at zero (a pointer, or a field without `omitempty`): written whenever it
/// was sent.
pub fn keep<T: Clone + Into<Value>>(o: &mut Map<String, Value>, key: &str, v: &Option<T>) {
    if let Some(v) = v {
        o.insert(key.to_string(), v.clone().into());
    }
}

pub fn f(o: &mut Map<String, Value>, key: &str, v: &Option<f64>) {
    if let Some(x) = v.filter(|x| *x != 0.0).and_then(serde_json::Number::from_f64) {
        o.insert(key.to_string(), Value::Number(x));
    }
}

pub fn by(o: &mut Map<String, Value>, key: &str, v: &Option<Vec<u8>>) {
    if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
        o.insert(key.to_string(), Value::String(b64().encode(v)));
    }
}

pub fn list<T: Clone + Into<Value>>(o: &mut Map<String, Value>, key: &str, v: &[T]) {
    if !v.is_empty() {
        o.insert(
            key.to_string(),
            Value::Array(v.iter().cloned().map(Into::into).collect()),
        );
    }
}

/// A message that was sent: Go writes a struct whatever its content (`omitempty` does not
/// leave structs out) and a set pointer to one, so it is written even when empty — or `null`,
/// as a zero time is.
pub fn m<T: Pb>(o: &mut Map<String, Value>, key: &str, v: &Option<T>) -> Result<(), String> {
    if let Some(v) = v {
        o.insert(key.to_string(), v.to_json().map_err(|e| format!("{key}: {e}"))?);
    }
    Ok(())
}

pub fn mb<T: Pb>(o: &mut Map<String, Value>, key: &str, v: &Option<Box<T>>) -> Result<(), String> {
    if let Some(v) = v {
        o.insert(key.to_string(), v.to_json().map_err(|e| format!("{key}: {e}"))?);
    }
    Ok(())
}

pub fn ml<T: Pb>(o: &mut Map<String, Value>, key: &str, v: &[T]) -> Result<(), String> {
    if !v.is_empty() {
        let items = v
            .iter()
            .map(Pb::to_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{key}: {e}"))?;
        o.insert(key.to_string(), Value::Array(items));
    }
    Ok(())
}

pub fn map_s(o: &mut Map<String, Value>, key: &str, v: &BTreeMap<String, String>) {
    if !v.is_empty() {
        o.insert(
            key.to_string(),
            Value::Object(v.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
        );
    }
}

pub fn map_b(o: &mut Map<String, Value>, key: &str, v: &BTreeMap<String, Vec<u8>>) {
    if !v.is_empty() {
        o.insert(
            key.to_string(),
            Value::Object(
                v.iter()
                    .map(|(k, v)| (k.clone(), Value::String(b64().encode(v))))
                    .collect(),
            ),
        );
    }
}

pub fn map_m<T: Pb>(o: &mut Map<String, Value>, key: &str, v: &BTreeMap<String, T>) -> Result<(), String> {
    if !v.is_empty() {
        let mut out = Map::new();
        for (k, x) in v {
            out.insert(k.clone(), x.to_json().map_err(|e| format!("{key}[{k}]: {e}"))?);
        }
        o.insert(key.to_string(), Value::Object(out));
    }
    Ok(())
}

/// An embedded (`json:",inline"`) struct: its fields go into the parent object.
pub fn inline<T: Pb>(o: &mut Map<String, Value>, v: &Option<T>) -> Result<(), String> {
    if let Some(Value::Object(inner)) = v.as_ref().map(Pb::to_json).transpose()? {
        o.extend(inner);
    }
    Ok(())
}

// --- from JSON ---

/// An embedded struct read from the parent object.
pub fn get_inline<T: Pb>(v: &Value) -> Result<Option<T>, String> {
    T::from_json(v).map(Some)
}

fn type_error(key: &str, want: &str, got: &Value) -> String {
    let what = match got {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    };
    format!("field {key}: cannot decode {what} as {want}")
}

pub fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or_else(|| type_error(what, "object", v))
}

pub fn get_s(key: &str, v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(type_error(key, "string", other)),
    }
}

pub fn get_i32(key: &str, v: &Value) -> Result<Option<i32>, String> {
    match v {
        Value::Null => Ok(None),
        other => other
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| type_error(key, "int32", other)),
    }
}

pub fn get_i64(key: &str, v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        other => other.as_i64().map(Some).ok_or_else(|| type_error(key, "int64", other)),
    }
}

pub fn get_f64(key: &str, v: &Value) -> Result<Option<f64>, String> {
    match v {
        Value::Null => Ok(None),
        other => other
            .as_f64()
            .map(Some)
            .ok_or_else(|| type_error(key, "float64", other)),
    }
}

pub fn get_bool(key: &str, v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        other => other.as_bool().map(Some).ok_or_else(|| type_error(key, "bool", other)),
    }
}

pub fn get_by(key: &str, v: &Value) -> Result<Option<Vec<u8>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => b64().decode(s).map(Some).map_err(|e| format!("field {key}: {e}")),
        other => Err(type_error(key, "base64 string", other)),
    }
}

/// A list of scalars through one of the `get_*` readers.
pub fn get_list<T>(
    key: &str,
    v: &Value,
    one: impl Fn(&str, &Value) -> Result<Option<T>, String>,
) -> Result<Vec<T>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a.iter().filter_map(|x| one(key, x).transpose()).collect(),
        other => Err(type_error(key, "list", other)),
    }
}

pub fn get_m<T: Pb>(key: &str, v: &Value) -> Result<Option<T>, String> {
    match v {
        Value::Null => Ok(None),
        other => T::from_json(other).map(Some).map_err(|e| format!("{key}: {e}")),
    }
}

pub fn get_mb<T: Pb>(key: &str, v: &Value) -> Result<Option<Box<T>>, String> {
    Ok(get_m::<T>(key, v)?.map(Box::new))
}

pub fn get_ml<T: Pb>(key: &str, v: &Value) -> Result<Vec<T>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| T::from_json(x).map_err(|e| format!("{key}: {e}")))
            .collect(),
        other => Err(type_error(key, "list", other)),
    }
}

fn get_map<T>(
    key: &str,
    v: &Value,
    one: impl Fn(&str, &Value) -> Result<Option<T>, String>,
) -> Result<BTreeMap<String, T>, String> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(o) => o
            .iter()
            .filter_map(|(k, x)| one(key, x).transpose().map(|r| r.map(|x| (k.clone(), x))))
            .collect(),
        other => Err(type_error(key, "map", other)),
    }
}

pub fn get_map_s(key: &str, v: &Value) -> Result<BTreeMap<String, String>, String> {
    get_map(key, v, get_s)
}

pub fn get_map_b(key: &str, v: &Value) -> Result<BTreeMap<String, Vec<u8>>, String> {
    get_map(key, v, get_by)
}

pub fn get_map_m<T: Pb>(key: &str, v: &Value) -> Result<BTreeMap<String, T>, String> {
    get_map(key, v, get_m::<T>)
}

// --- messages with a non-object JSON form ---

/// Seconds of Go's zero `time.Time` (year 1): Go reads a message carrying them as the zero
/// time, and a `null` time is encoded with them.
pub const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// A time as Go's JSON has it; the zero time is `null`. client-go sends a zero `metav1.Time`
/// as an empty message (no seconds, no nanos), which Go reads back as the zero time, not as
/// 1970.
fn time_json(seconds: Option<i64>, nanos: Option<i32>, micro: bool) -> Result<Value, String> {
    if seconds.is_none() && nanos.is_none() {
        return Ok(Value::Null);
    }
    let secs = seconds.unwrap_or(0);
    if secs == GO_ZERO_TIME_SECONDS {
        return Ok(Value::Null);
    }
    let ts = jiff::Timestamp::new(secs, if micro { nanos.unwrap_or(0) } else { 0 })
        .map_err(|e| format!("time {secs}s: {e}"))?;
    let fmt = if micro {
        "%Y-%m-%dT%H:%M:%S.%6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Value::String(ts.strftime(fmt).to_string()))
}

fn time_from(v: &Value) -> Result<(Option<i64>, Option<i32>), String> {
    match v {
        Value::Null => Ok((Some(GO_ZERO_TIME_SECONDS), Some(0))),
        Value::String(s) => {
            let ts: jiff::Timestamp = s.parse().map_err(|e| format!("time {s:?}: {e}"))?;
            Ok((Some(ts.as_second()), Some(ts.subsec_nanosecond())))
        }
        other => Err(type_error("time", "RFC 3339 string", other)),
    }
}

impl Pb for pb::apimachinery::pkg::apis::meta::v1::Time {
    fn to_json(&self) -> Result<Value, String> {
        time_json(self.seconds, self.nanos, false)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        let (seconds, nanos) = time_from(v)?;
        Ok(Self { seconds, nanos })
    }
}

impl Pb for pb::apimachinery::pkg::apis::meta::v1::MicroTime {
    fn to_json(&self) -> Result<Value, String> {
        time_json(self.seconds, self.nanos, true)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        let (seconds, nanos) = time_from(v)?;
        Ok(Self { seconds, nanos })
    }
}

impl Pb for pb::apimachinery::pkg::api::resource::Quantity {
    fn to_json(&self) -> Result<Value, String> {
        Ok(self.string.clone().map(Value::String).unwrap_or(Value::Null))
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        let string = match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Null => None,
            other => return Err(type_error("quantity", "string", other)),
        };
        Ok(Self { string })
    }
}

impl Pb for pb::apimachinery::pkg::util::intstr::IntOrString {
    fn to_json(&self) -> Result<Value, String> {
        Ok(match self.r#type {
            Some(1) => Value::String(self.str_val.clone().unwrap_or_default()),
            _ => Value::from(self.int_val.unwrap_or(0)),
        })
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(Self {
                r#type: Some(1),
                int_val: Some(0),
                str_val: Some(s.clone()),
            }),
            other => Ok(Self {
                r#type: Some(0),
                int_val: get_i32("intOrString", other)?,
                str_val: Some(String::new()),
            }),
        }
    }
}

/// Embedded JSON: the raw bytes are the JSON text.
fn raw_json(raw: &Option<Vec<u8>>) -> Result<Value, String> {
    match raw {
        None => Ok(Value::Null),
        Some(r) => serde_json::from_slice(r).map_err(|e| format!("embedded JSON: {e}")),
    }
}

fn raw_from(v: &Value) -> Result<Option<Vec<u8>>, String> {
    if v.is_null() {
        return Ok(None);
    }
    serde_json::to_vec(v).map(Some).map_err(|e| e.to_string())
}

impl Pb for pb::apimachinery::pkg::runtime::RawExtension {
    fn to_json(&self) -> Result<Value, String> {
        raw_json(&self.raw)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        Ok(Self { raw: raw_from(v)? })
    }
}

impl Pb for pb::apimachinery::pkg::apis::meta::v1::FieldsV1 {
    fn to_json(&self) -> Result<Value, String> {
        raw_json(&self.raw)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        Ok(Self { raw: raw_from(v)? })
    }
}

/// `ExtraValue` (a user's extra values) is `{items: [...]}` in protobuf, a plain list in JSON.
macro_rules! extra_value {
    ($t:ty) => {
        impl Pb for $t {
            fn to_json(&self) -> Result<Value, String> {
                Ok(Value::from(self.items.clone()))
            }
            fn from_json(v: &Value) -> Result<Self, String> {
                Ok(Self {
                    items: get_list("extra", v, get_s)?,
                })
            }
        }
    };
}
extra_value!(pb::api::authentication::v1::ExtraValue);
extra_value!(pb::api::authorization::v1::ExtraValue);

/// A message's bytes as JSON.
pub fn decode<T: Pb>(raw: &[u8]) -> Result<Value, String> {
    T::decode(raw).map_err(|e| e.to_string())?.to_json()
}

/// JSON as a message's bytes.
pub fn encode<T: Pb>(v: &Value) -> Result<Vec<u8>, String> {
    T::from_json(v).map(|m| m.encode_to_vec())
}
