//! The `/scale` subresource: the `autoscaling/v1` Scale view and writes through it.

use serde_json::{json, Value};

use crate::error::{ApiError, StatusCause};
use crate::resources::ResourceType;

use super::{meta_mut, meta_of, set_pointer, Core, Opts, Reply, Sub};

impl Core {
    /// The `autoscaling/v1` Scale view of an object with a scale subresource.
    pub fn scale_of(&self, rt: &ResourceType, obj: &Value) -> Result<Value, ApiError> {
        let scale = rt.scale.as_ref().ok_or_else(ApiError::no_route)?;
        let ptr = |p: &str| p.replace('.', "/");
        let spec = obj
            .pointer(&ptr(&scale.spec_replicas_path))
            .cloned()
            .unwrap_or(json!(0));
        let status = obj
            .pointer(&ptr(&scale.status_replicas_path))
            .cloned()
            .unwrap_or(json!(0));
        let mut st = json!({"replicas": status});
        if let Some(sel) = scale.label_selector_path.as_ref().and_then(|p| obj.pointer(&ptr(p))) {
            st["selector"] = sel.clone();
        } else if !rt.custom {
            // A workload's Scale carries its `spec.selector` in the string form, as the apps
            // registry's scale strategy writes it.
            let sel = obj
                .pointer("/spec/selector")
                .map(crate::selector::from_label_selector_json);
            if let Some(Ok(sel)) = sel {
                st["selector"] = json!(sel.to_string());
            }
        }
        let m = meta_of(obj).cloned().unwrap_or_default();
        Ok(json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"), "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp")},
            "spec": {"replicas": spec}, "status": st,
        }))
    }

    /// PUT/PATCH on `/scale`: set spec replicas on the object.
    pub fn write_scale(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        current: &Value,
        scale: &Value,
        opts: &Opts,
    ) -> Result<Reply, ApiError> {
        let spec_path = rt
            .scale
            .as_ref()
            .map(|s| s.spec_replicas_path.clone())
            .ok_or_else(ApiError::no_route)?;
        let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).ok_or_else(|| {
            ApiError::invalid(
                "Scale",
                "autoscaling",
                name,
                vec![StatusCause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "spec.replicas".into(),
                }],
            )
        })?;
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                name,
                vec![StatusCause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    field: "spec.replicas".into(),
                }],
            ));
        }
        let mut body = current.clone();
        if let Some(rv) = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
            meta_mut(&mut body)?.insert("resourceVersion".into(), json!(rv));
        }
        let ptr = spec_path.replace('.', "/");
        set_pointer(&mut body, &ptr, json!(replicas));
        let reply = self.update(rt, ns, name, body, Sub::Main, opts)?;
        Ok(Reply {
            code: 200,
            body: self.scale_of(rt, &reply.body)?,
            warnings: reply.warnings,
        })
    }
}
