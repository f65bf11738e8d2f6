//! `PATCH` in the merge, JSON and strategic-merge formats (apply patches go to `apply`).

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::resources::ResourceType;

use super::update::Missing;
use super::{str_field, Core, Opts, PatchType, Reply, Sub};

impl Core {
    /// `PATCH` in any of the four patch formats.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        pt: PatchType,
        patch: Value,
        sub: Sub,
        opts: &Opts,
    ) -> Result<Reply, ApiError> {
        let ns = if rt.namespaced { ns } else { "" };
        if rt.view.is_some() {
            let patch = crate::resources::views::patch_to_storage(rt, pt, patch);
            return self.through_view(rt, |s| self.patch(s, ns, name, pt, patch, sub, opts));
        }
        if pt == PatchType::Strategic && rt.custom {
            return Err(ApiError::unsupported_media_type(crate::error::CUSTOM_PATCH_TYPES));
        }
        if pt == PatchType::Apply {
            return self.apply(rt, ns, name, patch, sub, opts);
        }
        // A patch without a resourceVersion applies to whatever is stored when it lands: like
        // kube-apiserver, retry it when another writer got in between our read and our write.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = self.get(rt, ns, name)?;
            let cur_val = current.value();
            let base = if sub == Sub::Scale {
                self.scale_of(rt, &cur_val)?
            } else {
                cur_val.clone()
            };
            let patched = Self::apply_patch(rt, name, pt, &patch, base)?;
            if sub == Sub::Scale {
                return self.write_scale(rt, ns, name, &cur_val, &patched, opts);
            }
            let mut body = patched;
            let patch_rv = str_field(&body, "/metadata/resourceVersion")
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            let sets_rv = patch_rv.is_some() && patch_rv != Some(current.rv.to_string());
            if patch_rv.is_none() {
                if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("resourceVersion".into(), json!(current.rv.to_string()));
                }
            }
            match self.replace(rt, ns, name, body, sub, opts, Missing::NotFound) {
                Err(e) if e.code == 409 && e.reason == "Conflict" && !sets_rv && attempts < 8 => continue,
                other => return other,
            }
        }
    }

    fn apply_patch(
        rt: &ResourceType,
        name: &str,
        pt: PatchType,
        patch: &Value,
        base: Value,
    ) -> Result<Value, ApiError> {
        Ok(match pt {
            PatchType::Merge => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request(
                        "json: cannot unmarshal into Go value of type map[string]interface {}",
                    ));
                }
                let mut t = base;
                json_patch::merge(&mut t, patch);
                t
            }
            PatchType::Json => {
                let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                    let what = match patch {
                        Value::Array(_) => e.to_string(),
                        // Go's words for a JSON patch that is no list of operations.
                        other => format!(
                            "json: cannot unmarshal {} into Go value of type []handlers.jsonPatchOp",
                            go_json_type(other)
                        ),
                    };
                    ApiError::bad_request(format!("error decoding patch: {what}"))
                })?;
                let mut t = base;
                // kube-apiserver answers a patch that cannot be applied (a failed `test`, a
                // missing path) with a generic 422, without the reason.
                json_patch::patch(&mut t, &ops).map_err(|_| {
                    let mut e = ApiError::invalid(&rt.kind, &rt.group, name, vec![]);
                    e.message = "the server rejected our request due to an error in our request".into();
                    e.details = Some(serde_json::json!({}));
                    e
                })?;
                t
            }
            PatchType::Strategic => {
                crate::strategic::strategic_merge_patch(&base, patch, &rt.kind).map_err(ApiError::bad_request)?
            }
            PatchType::Apply => return Err(ApiError::internal("apply is not a merge patch")),
        })
    }
}

/// The JSON type of `v` as Go's `encoding/json` names it in an unmarshal error.
fn go_json_type(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}
