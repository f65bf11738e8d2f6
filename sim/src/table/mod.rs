//! Server-side `meta.k8s.io/v1` Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
//!
//! Built-in kinds follow `pkg/printers/internalversion/printers.go` as served by the
//! apiserver (which always generates the wide, priority-1 columns too); custom resources
//! follow `apiextensions-apiserver/pkg/registry/customresource/tableconvertor`; anything
//! else gets the default convertor's `Name` + `Created At` columns.
//!
//! Columns and cells come from `builtin_columns`/`builtin_cells` (with `pod_cells`) or `crd`;
//! this module assembles them into the Table object.

use serde_json::{json, Map, Value};

mod builtin_cells;
mod builtin_columns;
mod crd;
mod lookup;
mod pod_cells;
mod timestamp;

pub use builtin_columns::{builtin_columns, has_builtin_printer};
pub use crd::crd_columns;
pub use timestamp::{human_duration, short_human_duration, translate_timestamp_since};

use builtin_cells::builtin_cells;
use crd::crd_cells;
use lookup::s_at;

/// One table column definition. `json_path` is set for CRD printer columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// "string" | "integer" | "number" | "boolean" | "date"
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: Option<String>,
}

/// `metav1.ObjectMeta{}.SwaggerDoc()["name"]`.
pub const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]`.
pub const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn col(name: &str, type_: &str, description: &str, priority: i32) -> Column {
    Column {
        name: name.to_string(),
        type_: type_.to_string(),
        format: String::new(),
        description: description.to_string(),
        priority,
        json_path: None,
    }
}

fn name_col() -> Column {
    Column {
        format: "name".to_string(),
        ..col("Name", "string", NAME_DESCRIPTION, 0)
    }
}

fn age_col() -> Column {
    col("Age", "string", CREATION_TIMESTAMP_DESCRIPTION, 0)
}

/// Cells for one object. Columns carrying a `json_path` (CRD columns) are evaluated with
/// the CRD table convertor's rules; otherwise the built-in printer for `kind` is used
/// (the default convertor for kinds without one). `now` is used for ages.
pub fn cells(kind: &str, columns: &[Column], obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    if columns.iter().any(|c| c.json_path.is_some()) {
        return crd_cells(columns, obj, now);
    }
    builtin_cells(kind, obj, now)
}

/// True if `v` is an accepted `includeObject` value (`""`, `None`, `Metadata`, `Object`);
/// the real server answers 400 `unrecognized includeObject value: "..."` otherwise.
pub fn valid_include_object(v: &str) -> bool {
    matches!(v, "" | "None" | "Metadata" | "Object")
}

/// Column definitions as serialized in a Table.
pub fn column_definitions(columns: &[Column]) -> Value {
    Value::Array(
        columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.type_,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

fn row_conditions(obj: &Value) -> Option<Value> {
    if obj.get("kind").and_then(Value::as_str) != Some("Pod") {
        return None;
    }
    match s_at(obj, &["status", "phase"]) {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."
        }])),
        _ => None,
    }
}

/// Build a `meta.k8s.io/v1` Table. `include_object` is the `includeObject` query
/// parameter: `"None"` (row object `null`), `"Metadata"`/`""` (default; a
/// PartialObjectMetadata) or `"Object"` (the whole object). Unknown values are treated
/// as `Metadata` (see [`valid_include_object`]).
pub fn table(
    columns: &[Column],
    rows: &[(Vec<Value>, &Value)],
    resource_version: &str,
    continue_token: Option<&str>,
    include_object: &str,
) -> Value {
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert(
            "resourceVersion".to_string(),
            Value::String(resource_version.to_string()),
        );
    }
    if let Some(c) = continue_token.filter(|c| !c.is_empty()) {
        metadata.insert("continue".to_string(), Value::String(c.to_string()));
    }
    let rows: Vec<Value> = rows
        .iter()
        .map(|(cells, obj)| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => (*obj).clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            };
            let mut row = Map::new();
            row.insert("cells".to_string(), Value::Array(cells.clone()));
            if let Some(conds) = row_conditions(obj) {
                row.insert("conditions".to_string(), conds);
            }
            row.insert("object".to_string(), object);
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": Value::Object(metadata),
        "columnDefinitions": column_definitions(columns),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests;
