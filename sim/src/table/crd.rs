//! Custom resources' columns and cells, as
//! `apiextensions-apiserver/pkg/registry/customresource/tableconvertor`: `additionalPrinterColumns`
//! evaluated with JSONPath.

use serde_json::{json, Value};

use super::lookup::name_of;
use super::timestamp::human_duration;
use super::{col, name_col, Column, CREATION_TIMESTAMP_DESCRIPTION};
use crate::jsonpath;

/// Columns for a CRD version from its `additionalPrinterColumns` JSON array. `Name` is
/// prepended; with no columns declared the server serves `Age` (`.metadata.creationTimestamp`).
pub fn crd_columns(printer_columns: &Value) -> Vec<Column> {
    let mut cols = vec![name_col()];
    let declared: &[Value] = printer_columns.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if declared.is_empty() {
        cols.push(Column {
            json_path: Some(".metadata.creationTimestamp".to_string()),
            ..col("Age", "date", CREATION_TIMESTAMP_DESCRIPTION, 0)
        });
        return cols;
    }
    for c in declared {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let path = s("jsonPath");
        let mut description = s("description");
        if description.is_empty() {
            description = format!("Custom resource definition column (in JSONPath format): {path}");
        }
        let priority = c
            .get("priority")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0);
        cols.push(Column {
            name: s("name"),
            type_: s("type"),
            format: s("format"),
            description,
            priority,
            json_path: Some(path),
        });
    }
    cols
}

/// CRD table convertor cells: the name, then the first result of each column's JSONPath.
pub(super) fn crd_cells(columns: &[Column], obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    columns
        .iter()
        .map(|c| match &c.json_path {
            None => {
                if c.name == "Name" || c.format == "name" {
                    name_of(obj)
                } else {
                    Value::Null
                }
            }
            Some(path) => {
                let first = match jsonpath::eval_results(obj, &format!("{{{path}}}")) {
                    Ok(segments) => segments.into_iter().next().and_then(|s| s.into_iter().next()),
                    Err(_) => None,
                };
                match first {
                    None => Value::Null,
                    Some(v) => cell_for_json_value(&c.type_, v, now),
                }
            }
        })
        .collect()
}

/// `cellForJSONValue`, plus the `string` branch of `ConvertToTable` (which prints the
/// value with the JSONPath printer).
fn cell_for_json_value(type_: &str, v: Value, now: jiff::Timestamp) -> Value {
    if type_ == "string" {
        return match v {
            Value::Null => Value::String("<no value>".to_string()),
            Value::String(_) => v,
            other => Value::String(jsonpath::to_text(&other)),
        };
    }
    match (type_, &v) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else {
                // Go: int64(float64) truncates.
                json!(n.as_f64().unwrap_or(0.0) as i64)
            }
        }
        ("number", Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(0.0);
            // Go marshals float64(3) as `3`.
            if f.fract() == 0.0 && f.abs() < 1e15 {
                json!(f as i64)
            } else {
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        ("boolean", Value::Bool(_)) => v,
        ("date", Value::String(s)) => date_cell(s, now),
        _ => Value::Null,
    }
}

/// `metatable.ConvertToHumanReadableDateType` on a CRD `date` column value.
fn date_cell(s: &str, now: jiff::Timestamp) -> Value {
    if s.is_empty() || s == "null" {
        return Value::String("<unknown>".to_string());
    }
    match s.parse::<jiff::Timestamp>() {
        Ok(t) => Value::String(human_duration(now.duration_since(t))),
        Err(_) => Value::String("<invalid>".to_string()),
    }
}
