//! `apps/v1` Deployments, ReplicaSets and StatefulSets: the defaults of
//! `pkg/apis/apps/v1/defaults.go` and the checks of `pkg/apis/apps/validation` that a client can
//! meet — a selector that selects the template, counts that are not negative, a rolling update
//! that can make progress, and the fields an update may not change.
use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{cause, containers, default_pod_spec};
use crate::error::StatusCause;

/// Default and validate a Deployment, ReplicaSet or StatefulSet (`plural`); `old` on updates.
pub(super) fn workload(plural: &str, old: Option<&Value>, new: &mut Value) -> Vec<StatusCause> {
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        defaults(plural, spec);
    }
    let spec = new.get("spec").cloned().unwrap_or(Value::Null);
    let mut out = common(plural, &spec);
    match plural {
        "deployments" => out.extend(deployment(&spec)),
        "statefulsets" => out.extend(statefulset(&spec)),
        _ => {}
    }
    if let Some(old_spec) = old.and_then(|o| o.get("spec")) {
        out.extend(update(plural, old_spec, &spec));
    }
    out
}

fn defaults(plural: &str, spec: &mut Map<String, Value>) {
    spec.entry("replicas").or_insert(json!(1));
    if let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        default_pod_spec(pod);
    }
    match plural {
        "deployments" => {
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
            if let Some(s) = strategy.as_object_mut() {
                s.entry("type").or_insert(json!("RollingUpdate"));
                if s.get("type") == Some(&json!("RollingUpdate")) {
                    let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        ru.entry("maxUnavailable").or_insert(json!("25%"));
                        ru.entry("maxSurge").or_insert(json!("25%"));
                    }
                }
            }
        }
        "statefulsets" => {
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("podManagementPolicy").or_insert(json!("OrderedReady"));
            spec.entry("persistentVolumeClaimRetentionPolicy")
                .or_insert(json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
            let strategy = spec.entry("updateStrategy").or_insert_with(|| json!({}));
            if let Some(s) = strategy.as_object_mut() {
                s.entry("type").or_insert(json!("RollingUpdate"));
                if s.get("type") == Some(&json!("RollingUpdate")) {
                    let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        ru.entry("partition").or_insert(json!(0));
                    }
                }
            }
        }
        _ => {}
    }
}

fn singular(plural: &str) -> &str {
    match plural {
        "deployments" => "deployment",
        "replicasets" => "replicaset",
        _ => "statefulset",
    }
}

/// Go's `%#v` of a `map[string]string`, as field errors print template labels.
fn go_map(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    format!("map[string]string{{{}}}", parts.join(", "))
}

use crate::meta::string_map as labels_of;

/// What every workload must satisfy: a non-empty selector matching the template's labels,
/// non-negative counts, a valid pod template that restarts always.
fn common(plural: &str, spec: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    for field in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        if let Some(n) = spec.get(field).and_then(Value::as_i64).filter(|n| *n < 0) {
            out.push(cause(
                "FieldValueInvalid",
                &format!("spec.{field}"),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
    }
    let labels = labels_of(spec.pointer("/template/metadata/labels"));
    match spec.get("selector").filter(|s| !s.is_null()) {
        None => out.push(cause("FieldValueRequired", "spec.selector", "Required value")),
        Some(sel) => match crate::selector::from_label_selector_json(sel) {
            Err(e) => out.push(cause(
                "FieldValueInvalid",
                "spec.selector",
                format!("Invalid value: {e}"),
            )),
            Ok(s) if s.is_empty() => out.push(cause(
                "FieldValueInvalid",
                "spec.selector",
                format!(
                    "Invalid value: {sel}: empty selector is invalid for {}",
                    singular(plural)
                ),
            )),
            Ok(s) if !s.matches(&labels) => out.push(cause(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    go_map(&labels)
                ),
            )),
            Ok(_) => {}
        },
    }
    let template = containers("spec.template.spec", spec.pointer("/template/spec"));
    out.extend(template);
    match spec.pointer("/template/spec/restartPolicy").and_then(Value::as_str) {
        None | Some("Always") => {}
        Some(other) => out.push(cause(
            "FieldValueNotSupported",
            "spec.template.spec.restartPolicy",
            format!("Unsupported value: {other:?}: supported values: \"Always\""),
        )),
    }
    out
}

/// An `intstr` count or percentage: `(value, is_percent)`; `None` if it is neither.
fn int_or_percent(v: &Value) -> Option<(i64, bool)> {
    match v {
        Value::Number(n) => n.as_i64().map(|n| (n, false)),
        Value::String(s) => s.strip_suffix('%')?.parse().ok().map(|n| (n, true)),
        _ => None,
    }
}

fn deployment(spec: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let ty = spec
        .pointer("/strategy/type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate");
    let rolling = spec.pointer("/strategy/rollingUpdate").filter(|r| !r.is_null());
    match ty {
        "Recreate" if rolling.is_some() => out.push(cause(
            "FieldValueForbidden",
            "spec.strategy.rollingUpdate",
            "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        )),
        "Recreate" | "RollingUpdate" => {}
        other => out.push(cause(
            "FieldValueNotSupported",
            "spec.strategy.type",
            format!("Unsupported value: {other:?}: supported values: \"Recreate\", \"RollingUpdate\""),
        )),
    }
    if let Some(ru) = rolling {
        let mut parsed = BTreeMap::new();
        for field in ["maxUnavailable", "maxSurge"] {
            let Some(v) = ru.get(field).filter(|v| !v.is_null()) else {
                continue;
            };
            let at = format!("spec.strategy.rollingUpdate.{field}");
            match int_or_percent(v) {
                None => out.push(cause(
                    "FieldValueInvalid",
                    &at,
                    format!("Invalid value: {v}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
                )),
                Some((n, _)) if n < 0 => out.push(cause(
                    "FieldValueInvalid",
                    &at,
                    format!("Invalid value: {v}: must be greater than or equal to 0"),
                )),
                Some((n, true)) if field == "maxUnavailable" && n > 100 => out.push(cause(
                    "FieldValueInvalid",
                    &at,
                    format!("Invalid value: {v}: must not be greater than 100%"),
                )),
                Some(p) => {
                    parsed.insert(field, p);
                }
            }
        }
        let zero = |f: &str| parsed.get(f).is_some_and(|(n, _)| *n == 0);
        if zero("maxUnavailable") && zero("maxSurge") {
            out.push(cause(
                "FieldValueInvalid",
                "spec.strategy.rollingUpdate.maxUnavailable",
                "Invalid value: 0: may not be 0 when `maxSurge` is 0",
            ));
        }
    }
    let min_ready = spec.get("minReadySeconds").and_then(Value::as_i64).unwrap_or(0);
    if let Some(deadline) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
        if deadline <= min_ready {
            out.push(cause(
                "FieldValueInvalid",
                "spec.progressDeadlineSeconds",
                format!("Invalid value: {deadline}: must be greater than minReadySeconds"),
            ));
        }
    }
    out
}

fn statefulset(spec: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    match spec.get("podManagementPolicy").and_then(Value::as_str) {
        None | Some("OrderedReady" | "Parallel") => {}
        Some(other) => out.push(cause(
            "FieldValueNotSupported",
            "spec.podManagementPolicy",
            format!("Unsupported value: {other:?}: supported values: \"OrderedReady\", \"Parallel\""),
        )),
    }
    let ty = spec
        .pointer("/updateStrategy/type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate");
    match ty {
        "RollingUpdate" => {
            if let Some(p) = spec
                .pointer("/updateStrategy/rollingUpdate/partition")
                .and_then(Value::as_i64)
                .filter(|p| *p < 0)
            {
                out.push(cause(
                    "FieldValueInvalid",
                    "spec.updateStrategy.rollingUpdate.partition",
                    format!("Invalid value: {p}: must be greater than or equal to 0"),
                ));
            }
        }
        "OnDelete"
            if spec
                .pointer("/updateStrategy/rollingUpdate")
                .is_some_and(|r| !r.is_null()) =>
        {
            out.push(cause(
                "FieldValueInvalid",
                "spec.updateStrategy.rollingUpdate",
                "Invalid value: only allowed for updateStrategy 'RollingUpdate'",
            ))
        }
        "OnDelete" => {}
        other => out.push(cause(
            "FieldValueNotSupported",
            "spec.updateStrategy.type",
            format!("Unsupported value: {other:?}: supported values: \"OnDelete\", \"RollingUpdate\""),
        )),
    }
    out
}

/// The selector of every workload is immutable in `apps/v1`; a StatefulSet's spec may change
/// only in the fields `ValidateStatefulSetUpdate` lists.
fn update(plural: &str, old: &Value, new: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    if old.get("selector") != new.get("selector") {
        let labels = labels_of(new.pointer("/selector/matchLabels"));
        out.push(cause(
            "FieldValueInvalid",
            "spec.selector",
            format!(
                "Invalid value: v1.LabelSelector{{MatchLabels:{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}: field is immutable",
                go_map(&labels)
            ),
        ));
        return out;
    }
    if plural == "statefulsets" {
        const MUTABLE: [&str; 7] = [
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
            "revisionHistoryLimit",
        ];
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                for f in MUTABLE {
                    o.remove(f);
                }
            }
            v
        };
        if strip(old) != strip(new) {
            out.push(cause(
                "FieldValueForbidden",
                "spec",
                "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
    out
}
