//! Custom resource data as CEL values, typed by the schema as `UnstructuredToVal` types them:
//! integers are `int`, numbers `double`, `format: byte` strings `bytes`, `date`/`date-time`
//! strings timestamps, `duration` strings durations, and object properties are reachable by
//! their escaped names (undeclared properties are not visible).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use cel::objects::{Key, Map};
use cel::Value;
use serde_json::Value as Json;

use super::decl::{Decl, DeclKind};

pub(crate) fn to_cel(v: &Json, decl: &Decl) -> Value {
    match (v, &decl.kind) {
        (Json::Null, _) => Value::Null,
        (Json::Object(m), DeclKind::Object(fields)) => {
            let mut out: HashMap<Key, Value> = HashMap::new();
            for (name, field) in fields {
                if let Some(x) = m.get(&field.json_name) {
                    out.insert(Key::String(Arc::new(name.clone())), to_cel(x, &field.decl));
                }
            }
            Value::Map(Map { map: Arc::new(out) })
        }
        (Json::Object(m), DeclKind::Map(elem)) => {
            let out: HashMap<Key, Value> = m
                .iter()
                .map(|(k, x)| (Key::String(Arc::new(k.clone())), to_cel(x, elem)))
                .collect();
            Value::Map(Map { map: Arc::new(out) })
        }
        (Json::Array(items), DeclKind::List(elem)) => {
            Value::List(Arc::new(items.iter().map(|x| to_cel(x, elem)).collect()))
        }
        (Json::Number(n), DeclKind::Int | DeclKind::IntOrString) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map_or_else(
                || Value::Float(n.as_f64().unwrap_or(f64::NAN)),
                |f| Value::Int(f as i64),
            ),
        },
        (Json::Number(n), _) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        (Json::String(s), DeclKind::Bytes) => match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(b) => Value::Bytes(Arc::new(b)),
            Err(_) => Value::from(s.as_str()),
        },
        (Json::String(s), DeclKind::Timestamp) => timestamp(s).unwrap_or_else(|| Value::from(s.as_str())),
        (Json::String(s), DeclKind::Duration) => duration(s).unwrap_or_else(|| Value::from(s.as_str())),
        (Json::String(s), _) => Value::from(s.as_str()),
        (Json::Bool(b), _) => Value::Bool(*b),
        // A value whose shape the schema does not describe (already refused by the schema
        // validation, or preserved unknown): plain JSON.
        (other, _) => plain(other),
    }
}

pub(crate) fn plain(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::List(Arc::new(a.iter().map(plain).collect())),
        Json::Object(m) => {
            let out: HashMap<Key, Value> = m
                .iter()
                .map(|(k, x)| (Key::String(Arc::new(k.clone())), plain(x)))
                .collect();
            Value::Map(Map { map: Arc::new(out) })
        }
    }
}

fn timestamp(s: &str) -> Option<Value> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(Value::Timestamp(t));
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let t = d.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset();
    Some(Value::Timestamp(t))
}

fn duration(s: &str) -> Option<Value> {
    let d: kube::core::Duration = s.parse().ok()?;
    let std: std::time::Duration = d.into();
    let c = chrono::Duration::from_std(std).ok()?;
    Some(Value::Duration(if d.is_negative() { -c } else { c }))
}
