//! core/v1 Events as kube-controller-manager's event recorders write them (what
//! `kubectl describe` and `kubectl get events` show).
use serde_json::{json, Value};

use crate::handlers::{Core, Opts};

/// One event a plan asks for, about the object it reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `Normal` or `Warning`.
    pub ty: &'static str,
    pub reason: String,
    pub message: String,
}

impl Recorded {
    pub fn normal(reason: &str, message: String) -> Recorded {
        Recorded {
            ty: "Normal",
            reason: reason.to_string(),
            message,
        }
    }

    pub fn warning(reason: &str, message: String) -> Recorded {
        Recorded {
            ty: "Warning",
            reason: reason.to_string(),
            message,
        }
    }
}

/// Write `ev` about `obj` (a stored object), as `component` reports it. Best effort, as the
/// recorder's: an event that cannot be written is dropped.
pub fn record(core: &Core, obj: &Value, component: &str, ev: &Recorded) {
    let Some(rt) = core.resource("", "events") else {
        return;
    };
    let s = |p: &str| obj.pointer(p).cloned().unwrap_or(Value::Null);
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let now = crate::meta::now_rfc3339();
    // kube names an event after its object and the time in nanoseconds, in hexadecimal.
    let nanos = jiff::Timestamp::now().as_nanosecond();
    let body = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
        "involvedObject": {
            "apiVersion": s("/apiVersion"), "kind": s("/kind"), "name": name, "namespace": ns,
            "uid": s("/metadata/uid"), "resourceVersion": s("/metadata/resourceVersion"),
        },
        "reason": ev.reason, "message": ev.message, "type": ev.ty,
        "source": {"component": component},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "eventTime": null, "reportingComponent": component, "reportingInstance": "",
    });
    let opts = Opts {
        field_manager: "kube-controller-manager".into(),
        ..Opts::default()
    };
    let _ = core.create(&rt, Some(ns), body, &opts);
}
