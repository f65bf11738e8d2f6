//! Integer bounds for the generated CRD schemas.
//!
//! kube-apiserver does not enforce `format: int32`/`int64` on custom resources (it strips those
//! formats before validating; kubernetes#136091), so a value such as 2147483648 in an `i32`
//! field is stored, and then no controller can decode the object. Every integer in baton's
//! schemas therefore gets `minimum`/`maximum` that the server does enforce: the range of its
//! format (int32, or int64 for integers without one), or a product bound already declared on
//! the field, whichever is narrower. `x-kubernetes-int-or-string` values are int32.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{json, Value};

/// `i32` range.
pub const INT32_MIN: i64 = i32::MIN as i64;
pub const INT32_MAX: i64 = i32::MAX as i64;
/// The largest magnitude below 2⁶³ that a float64 holds exactly: kube-apiserver compares bounds
/// as float64, where `9223372036854775807` rounds up to 2⁶³ and would let 2⁶³ through.
pub const INT64_BOUND: i64 = 9_223_372_036_854_774_784;

/// The CRD with every integer bounded (see the module docs).
pub fn bound_integers(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    super::edit_schemas(crd, walk)
}

fn walk(node: &mut Value) {
    match node {
        Value::Object(m) => {
            let int_or_string = m.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
            if int_or_string || m.get("type").and_then(Value::as_str) == Some("integer") {
                let (lo, hi) = match m.get("format").and_then(Value::as_str) {
                    Some("int32") => (INT32_MIN, INT32_MAX),
                    _ if int_or_string => (INT32_MIN, INT32_MAX),
                    _ => (-INT64_BOUND, INT64_BOUND),
                };
                let min = m
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .map_or(lo, |x| (x.ceil() as i64).max(lo));
                let max = m
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .map_or(hi, |x| (x.floor() as i64).min(hi));
                m.insert("minimum".into(), json!(min));
                m.insert("maximum".into(), json!(max));
            }
            for (_, child) in m.iter_mut() {
                walk(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

/// Where a stored object breaks the integer bounds of `crd`'s schema (its first version):
/// `"spec.replicas is 2147483648, outside 0..10000"`, at most `limit` of them. An object stored
/// before the bounds existed does not decode; this names the fields to fix.
pub fn out_of_bounds(crd: &CustomResourceDefinition, object: &Value, limit: usize) -> Vec<String> {
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok());
    let mut out = Vec::new();
    if let Some(schema) = schema {
        check(object, &schema, "", limit, &mut out);
    }
    out
}

fn check(v: &Value, schema: &Value, path: &str, limit: usize, out: &mut Vec<String>) {
    if out.len() >= limit {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Number(n) => {
            let (min, max) = (schema.get("minimum"), schema.get("maximum"));
            let below = min.and_then(Value::as_f64).zip(n.as_f64()).is_some_and(|(m, x)| x < m);
            let above = max.and_then(Value::as_f64).zip(n.as_f64()).is_some_and(|(m, x)| x > m);
            if below || above {
                let bound = |b: Option<&Value>| b.and_then(Value::as_f64).map_or(String::new(), |x| x.to_string());
                out.push(format!("{path} is {n}, outside {}..{}", bound(min), bound(max)));
            }
        }
        Value::Object(m) => {
            let props = schema.get("properties");
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m {
                if let Some(s) = props.and_then(|p| p.get(k)).or(extra) {
                    check(child, s, &join(k), limit, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, child) in items.iter().enumerate() {
                    check(child, s, &format!("{path}[{i}]"), limit, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_names_each_field_and_its_range() {
        let crd = crate::rollout::crd();
        let obj = json!({"spec": {
            "replicas": 2_147_483_648_i64,
            "minReadySeconds": -1,
            "strategy": {"batches": [1, 9_223_372_036_854_775_808_u64], "maxSurge": "50%"},
            "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 70000}]}]}},
        }});
        let found = out_of_bounds(&crd, &obj, 10);
        assert!(
            found.contains(&"spec.replicas is 2147483648, outside 0..10000".to_string()),
            "{found:?}"
        );
        assert!(
            found.iter().any(|f| f.starts_with("spec.minReadySeconds is -1")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("spec.strategy.batches[1] is 9223372036854775808")),
            "{found:?}"
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(out_of_bounds(&crd, &obj, 1).len(), 1);
        let fine = json!({"spec": {"replicas": 3}});
        assert!(out_of_bounds(&crd, &fine, 10).is_empty());
    }

    fn every_integer(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                let ios = m.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
                if ios || m.get("type").and_then(Value::as_str) == Some("integer") {
                    out.push((path.to_string(), v.clone()));
                }
                for (k, c) in m {
                    every_integer(c, &format!("{path}/{k}"), out);
                }
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, c)| every_integer(c, &format!("{path}/{i}"), out)),
            _ => {}
        }
    }

    #[test]
    fn every_integer_of_every_crd_is_bounded() {
        for crd in [crate::rollout::crd(), crate::listenerset::crd()] {
            let v = serde_json::to_value(&crd).expect("json");
            let mut ints = Vec::new();
            for (i, version) in v["spec"]["versions"].as_array().expect("versions").iter().enumerate() {
                every_integer(&version["schema"], &format!("/versions/{i}"), &mut ints);
            }
            assert!(ints.len() >= 5, "{} integers", ints.len());
            for (path, s) in ints {
                let (min, max) = (s["minimum"].as_f64(), s["maximum"].as_f64());
                assert!(min.is_some() && max.is_some(), "{path} is unbounded: {s}");
                let hi = if s["format"] == "int64" {
                    INT64_BOUND as f64
                } else {
                    INT32_MAX as f64
                };
                assert!(max.unwrap_or(f64::MAX) <= hi, "{path}: {s}");
            }
        }
    }
}
