//! API errors rendered as `meta.k8s.io/v1` `Status` objects, the way kube-apiserver reports them.
use serde_json::{json, Value};

/// The media types a create or update body may come in.
pub const BODY_MEDIA_TYPES: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// The patch types of a custom resource (it has no strategic merge patch).
pub const CUSTOM_PATCH_TYPES: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

/// One `details.causes[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// An error answer: HTTP code, `reason`, message and optional details.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found(resource: &str, name: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"));
        e.details =
            Some(json!({"name": name, "kind": resource_kind_field(resource), "group": resource_group_field(resource)}));
        e
    }

    /// 404 for a path nothing serves (unknown resource type): `NewNotFound` of an empty
    /// resource, whose details are empty.
    pub fn no_route() -> Self {
        let mut e = Self::new(404, "NotFound", "the server could not find the requested resource");
        e.details = Some(json!({}));
        e
    }

    pub fn already_exists(resource: &str, name: &str) -> Self {
        let mut e = Self::new(409, "AlreadyExists", format!("{resource} \"{name}\" already exists"));
        e.details =
            Some(json!({"name": name, "kind": resource_kind_field(resource), "group": resource_group_field(resource)}));
        e
    }

    /// Stale `resourceVersion` on an update.
    pub fn conflict(resource: &str, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
        e.details =
            Some(json!({"name": name, "kind": resource_kind_field(resource), "group": resource_group_field(resource)}));
        e
    }

    /// 409 for a DELETE whose precondition (`field`: `UID` or `ResourceVersion`) does not hold,
    /// as kube-apiserver's `BeforeDelete` words it: the conflict names the object's kind.
    pub fn precondition_failed(kind: &str, group: &str, name: &str, field: &str, want: &str, got: &str) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let why = if field == "UID" {
            "deleted and then recreated"
        } else {
            "modified"
        };
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified} {name:?}: the {field} in the precondition ({want}) does not match the {field} in record ({got}). The object might have been {why}"
            ),
        );
        e.details = Some(json!({"name": name, "group": group, "kind": kind}));
        e
    }

    pub fn conflict_message(message: impl Into<String>, causes: Vec<StatusCause>) -> Self {
        let mut e = Self::new(409, "Conflict", message);
        e.details = Some(json!({"causes": causes_json(&causes)}));
        e
    }

    /// 403 Forbidden as `errors.NewForbidden(groupResource, name, err)` words it; empty fields
    /// are left out of `details`, as Go's `omitempty` does.
    pub fn forbidden(group: &str, resource: &str, name: &str, err: impl std::fmt::Display) -> Self {
        let qualified = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        let message = if resource.is_empty() {
            format!("forbidden: {err}")
        } else if name.is_empty() {
            format!("{qualified} is forbidden: {err}")
        } else {
            format!("{qualified} {name:?} is forbidden: {err}")
        };
        let mut e = Self::new(403, "Forbidden", message);
        let mut details = serde_json::Map::new();
        for (k, v) in [("name", name), ("group", group), ("kind", resource)] {
            if !v.is_empty() {
                details.insert(k.into(), json!(v));
            }
        }
        e.details = Some(Value::Object(details));
        e
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    /// 415 for a body in a media type the handler does not decode; `accepted` lists those it
    /// does (`application/json, application/yaml, application/vnd.kubernetes.protobuf` for a
    /// create or update, the patch types for a patch of a custom resource).
    pub fn unsupported_media_type(accepted: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: {accepted}"),
        )
    }

    /// 415 for a PATCH whose `Content-Type` is no patch type (kube-apiserver's generic
    /// `415: Unsupported Media Type`, with empty details).
    pub fn unsupported_patch_type() -> Self {
        let mut e = Self::new(415, "UnsupportedMediaType", "415: Unsupported Media Type");
        e.details = Some(json!({}));
        e
    }

    /// 422 Invalid with a cause per field, like kube-apiserver's `errors.NewInvalid`: the
    /// message lists each distinct cause once (`ErrorList.ToAggregate`), the details all.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let mut summary: Vec<String> = Vec::new();
        for c in &causes {
            let line = if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            };
            if !summary.contains(&line) {
                summary.push(line);
            }
        }
        let what = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let message = if summary.len() == 1 {
            format!("{what} \"{name}\" is invalid: {}", summary[0])
        } else {
            format!("{what} \"{name}\" is invalid: [{}]", summary.join(", "))
        };
        let mut e = Self::new(422, "Invalid", message);
        e.details = Some(json!({"name": name, "group": group, "kind": kind, "causes": causes_json(&causes)}));
        e
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        let mut e = Self::new(429, "TooManyRequests", message);
        e.details = Some(json!({"retryAfterSeconds": 1}));
        e
    }

    /// 500 for an error kube-apiserver passes on as it is (a Go error that is no API
    /// status): the message only, no `reason`.
    pub fn unclassified(message: impl Into<String>) -> Self {
        Self::new(500, "", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(d), Some(obj)) = (&self.details, v.as_object_mut()) {
            obj.insert("details".into(), omit_empty(d.clone()));
        }
        if self.reason.is_empty() {
            if let Some(obj) = v.as_object_mut() {
                obj.remove("reason");
            }
        }
        v
    }
}

/// `StatusDetails` as Go's `encoding/json` writes it: every field is `omitempty`, and so are
/// the fields of each cause.
fn omit_empty(details: Value) -> Value {
    let empty = |v: &Value| match v {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Null => true,
        _ => false,
    };
    match details {
        Value::Object(mut m) => {
            if let Some(Value::Array(causes)) = m.get_mut("causes") {
                for c in causes.iter_mut() {
                    if let Value::Object(cm) = c {
                        cm.retain(|_, v| !empty(v));
                    }
                }
            }
            m.retain(|_, v| !empty(v));
            Value::Object(m)
        }
        other => other,
    }
}

fn causes_json(causes: &[StatusCause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect(),
    )
}

/// `pods` → kind field `pods`; `leases.coordination.k8s.io` → `leases`.
fn resource_kind_field(resource: &str) -> &str {
    resource.split_once('.').map(|(r, _)| r).unwrap_or(resource)
}

fn resource_group_field(resource: &str) -> &str {
    resource.split_once('.').map(|(_, g)| g).unwrap_or("")
}

/// A success `Status` (what DELETE returns for some kinds, and deletecollection bodies).
pub fn success_status(details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": omit_empty(details)})
}
