//! `POST`: creating an object.

use serde_json::{json, Value};

use crate::error::{ApiError, StatusCause};
use crate::managed;
use crate::meta;
use crate::resources::ResourceType;
use crate::store::Write;
use crate::strategy::crd_status;

use super::list_types::SchemaListTypes;
use super::{meta_mut, str_field, Core, Opts, Reply, Sub};

impl Core {
    /// A `POST` of a custom resource whose CRD is `Terminating` is refused before anything else
    /// is looked at (apiextensions-apiserver's handler): 405 MethodNotAllowed. Updates, patches
    /// and deletes are served, so finalizers can still act on the resources being deleted.
    pub fn refuse_create(&self, rt: &ResourceType) -> Result<(), ApiError> {
        if !rt.custom {
            return Ok(());
        }
        let crds = crate::resources::ResKey {
            group: "apiextensions.k8s.io".into(),
            plural: "customresourcedefinitions".into(),
        };
        let terminating = self
            .store
            .get(&crds, "", &format!("{}.{}", rt.plural, rt.group))
            .filter(|c| c.deleting)
            .is_some_and(|c| crd_status::condition_true(&c.value(), crd_status::TERMINATING));
        if !terminating {
            return Ok(());
        }
        let mut e = ApiError::method_not_allowed("create not allowed while custom resource definition is terminating");
        e.details = Some(json!({"group": rt.group, "kind": rt.plural}));
        Err(e)
    }

    /// `POST` a new object.
    pub fn create(&self, rt: &ResourceType, ns: Option<&str>, mut body: Value, opts: &Opts) -> Result<Reply, ApiError> {
        if rt.view.is_some() {
            let body = crate::resources::views::to_storage(rt, body);
            return self.through_view(rt, |s| self.create(s, ns, body, opts));
        }
        Self::check_type(rt, &mut body)?;
        let ns = if rt.namespaced { ns.unwrap_or("default") } else { "" };
        {
            let m = meta_mut(&mut body)?;
            if let Some(bns) = m.get("namespace").and_then(Value::as_str) {
                if rt.namespaced && !bns.is_empty() && bns != ns {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
            if rt.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.remove("namespace");
            }
            if m.get("resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
            {
                return Err(ApiError::bad_request(
                    "resourceVersion should not be set on objects to be created",
                ));
            }
            let has_name = m.get("name").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
            if !has_name {
                match m.get("generateName").and_then(Value::as_str) {
                    Some(g) if !g.is_empty() => {
                        let n = format!("{g}{}", meta::random_suffix(5));
                        m.insert("name".into(), json!(n));
                    }
                    _ => {
                        return Err(ApiError::invalid(
                            &rt.kind,
                            &rt.group,
                            "",
                            vec![StatusCause {
                                reason: "FieldValueRequired".into(),
                                message: "Required value: name or generateName is required".into(),
                                field: "metadata.name".into(),
                            }],
                        ))
                    }
                }
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
            for k in ["deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
                m.remove(k);
            }
            if rt.tracks_generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if rt.status_subresource && rt.custom {
            if let Some(o) = body.as_object_mut() {
                o.remove("status");
            }
        }
        self.ensure_namespace(rt, ns, str_field(&body, "/metadata/name").unwrap_or(""))?;
        let warnings = self.admit(rt, None, &mut body, opts, Sub::Main)?;
        let name = str_field(&body, "/metadata/name").unwrap_or("").to_string();
        managed::record_update(
            None,
            &mut body,
            &opts.field_manager,
            None,
            &SchemaListTypes {
                schema: rt.schema.as_ref(),
            },
            &meta::now_rfc3339(),
        );
        let key = rt.key();
        let qualified = rt.qualified();
        let w = self.store.write(&key, ns, &name, opts.dry_run, |cur| {
            if cur.is_some() {
                return Err(ApiError::already_exists(&qualified, &name));
            }
            Ok(Write::Put(body))
        })?;
        self.after_write(rt, &w, opts.dry_run);
        Ok(Reply {
            code: 201,
            body: w.obj.value(),
            warnings,
        })
    }
}
