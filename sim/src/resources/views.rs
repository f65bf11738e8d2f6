//! Resources served as a second view of another resource's objects, as kube-apiserver serves
//! `events.k8s.io/v1` Events and core/v1 Events from one store.
//!
//! Objects are stored in the storage resource's shape (core/v1 Event); a view renames fields
//! on the way in and out, following `pkg/apis/events/v1/conversion.go`: `regarding` ↔
//! `involvedObject`, `note` ↔ `message`, `deprecatedSource` ↔ `source`,
//! `deprecatedFirstTimestamp`/`deprecatedLastTimestamp`/`deprecatedCount` ↔
//! `firstTimestamp`/`lastTimestamp`/`count`; `reportingController` is core/v1's
//! `reportingComponent`. Everything else (`eventTime`, `series`, `action`, `reason`, `type`,
//! `related`, `reportingInstance`, metadata) is the same in both.
use serde_json::{Map, Value};

use super::ResourceType;
use crate::meta::PatchType;

/// Which view a resource type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `events.k8s.io/v1` Event over core/v1 Events.
    EventsV1,
}

/// (view field, storage field), top-level keys.
const EVENTS_V1: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

impl View {
    fn renames(self) -> &'static [(&'static str, &'static str)] {
        match self {
            View::EventsV1 => EVENTS_V1,
        }
    }

    /// apiVersion of the stored shape.
    pub fn storage_api_version(self) -> &'static str {
        match self {
            View::EventsV1 => "v1",
        }
    }

    /// (group, plural) of the storage resource.
    pub fn storage(self) -> (&'static str, &'static str) {
        match self {
            View::EventsV1 => ("", "events"),
        }
    }

    /// A field selector label of the view, as the storage resource names it.
    pub fn storage_field(self, field: &str) -> String {
        for (view, stored) in self.renames() {
            if field == *view {
                return (*stored).to_string();
            }
            if let Some(rest) = field.strip_prefix(&format!("{view}.")) {
                return format!("{stored}.{rest}");
            }
        }
        field.to_string()
    }
}

fn rename(v: Value, pairs: &[(&str, &str)], to_storage: bool) -> Value {
    let Value::Object(m) = v else { return v };
    let mut out = Map::with_capacity(m.len());
    for (k, val) in m {
        let key = pairs
            .iter()
            .find_map(|(view, stored)| {
                let (from, to) = if to_storage { (view, stored) } else { (stored, view) };
                (k == *from).then(|| (*to).to_string())
            })
            .unwrap_or(k);
        out.insert(key, val);
    }
    Value::Object(out)
}

/// The stored object as the view shows it.
pub fn to_view(rt: &ResourceType, stored: Value) -> Value {
    let Some(view) = rt.view else { return stored };
    // Only objects of the kind are converted (not `Status` answers).
    if stored.get("kind").and_then(Value::as_str) != Some(rt.kind.as_str()) {
        return stored;
    }
    let mut v = rename(stored, view.renames(), false);
    if let Some(o) = v.as_object_mut() {
        if o.contains_key("apiVersion") {
            o.insert("apiVersion".into(), Value::String(rt.api_version()));
        }
    }
    v
}

/// An object in the view's shape as it is stored.
pub fn to_storage(rt: &ResourceType, viewed: Value) -> Value {
    let Some(view) = rt.view else { return viewed };
    let mut v = rename(viewed, view.renames(), true);
    if let Some(o) = v.as_object_mut() {
        if o.contains_key("apiVersion") {
            o.insert("apiVersion".into(), Value::String(view.storage_api_version().into()));
        }
    }
    v
}

/// A patch written against the view, as a patch of the stored object.
pub fn patch_to_storage(rt: &ResourceType, pt: PatchType, patch: Value) -> Value {
    let Some(view) = rt.view else { return patch };
    match pt {
        PatchType::Json => match patch {
            Value::Array(ops) => Value::Array(
                ops.into_iter()
                    .map(|mut op| {
                        for k in ["path", "from"] {
                            if let Some(p) = op.get(k).and_then(Value::as_str).map(str::to_string) {
                                op[k] = Value::String(json_pointer_to_storage(view, &p));
                            }
                        }
                        op
                    })
                    .collect(),
            ),
            other => other,
        },
        _ => to_storage(rt, patch),
    }
}

fn json_pointer_to_storage(view: View, p: &str) -> String {
    let mut parts = p.splitn(3, '/');
    let (Some(""), Some(first)) = (parts.next(), parts.next()) else {
        return p.to_string();
    };
    let mapped = view
        .renames()
        .iter()
        .find(|(v, _)| *v == first)
        .map(|(_, s)| *s)
        .unwrap_or(first);
    match parts.next() {
        Some(rest) => format!("/{mapped}/{rest}"),
        None => format!("/{mapped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events_v1() -> ResourceType {
        crate::resources::builtins()
            .into_iter()
            .find(|t| t.group == "events.k8s.io")
            .expect("events.k8s.io is built in")
    }

    #[test]
    fn events_v1_round_trips_through_the_core_shape() {
        let rt = events_v1();
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "reportingController": "c",
            "reportingInstance": "i", "deprecatedCount": 2, "reason": "R", "type": "Normal",
            "eventTime": "2026-01-01T00:00:00.000000Z", "action": "A"});
        let core = to_storage(&rt, v1.clone());
        assert_eq!(
            core,
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "reportingComponent": "c",
                "reportingInstance": "i", "count": 2, "reason": "R", "type": "Normal",
                "eventTime": "2026-01-01T00:00:00.000000Z", "action": "A"})
        );
        assert_eq!(to_view(&rt, core), v1);
    }

    #[test]
    fn json_patch_paths_and_field_labels_are_renamed() {
        let rt = events_v1();
        let p = patch_to_storage(
            &rt,
            PatchType::Json,
            json!([{"op": "replace", "path": "/note", "value": "x"}, {"op": "add", "path": "/regarding/name", "value": "y"}]),
        );
        assert_eq!(p[0]["path"], "/message");
        assert_eq!(p[1]["path"], "/involvedObject/name");
        assert_eq!(View::EventsV1.storage_field("regarding.kind"), "involvedObject.kind");
        assert_eq!(
            View::EventsV1.storage_field("reportingController"),
            "reportingComponent"
        );
        assert_eq!(View::EventsV1.storage_field("type"), "type");
    }
}
