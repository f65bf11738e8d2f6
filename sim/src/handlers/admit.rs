//! The checks every write passes before it is stored: endpoint type, namespace, schema
//! (pruning, defaulting, validation), metadata and per-kind admission.

use serde_json::{json, Value};

use crate::admission::{Attributes, Stage};
use crate::error::{ApiError, StatusCause};
use crate::meta;
use crate::resources::{ResKey, ResourceType};
use crate::schema;

use super::{meta_of, Core, FieldValidation, Opts, Sub};

impl Core {
    pub(super) fn ensure_namespace(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let key = ResKey {
            group: String::new(),
            plural: "namespaces".into(),
        };
        match self.store.get(&key, "", ns) {
            Some(n) if n.deleting => {
                // The NamespaceLifecycle admission plugin's refusal.
                let mut e = ApiError::forbidden(
                    &rt.group,
                    &rt.plural,
                    name,
                    format!("unable to create new content in namespace {ns} because it is being terminated"),
                );
                if let Some(d) = e.details.as_mut().and_then(Value::as_object_mut) {
                    d.insert(
                        "causes".into(),
                        json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]),
                    );
                }
                Err(e)
            }
            Some(_) => Ok(()),
            None => Err(ApiError::not_found("namespaces", ns)),
        }
    }

    /// Check apiVersion/kind of a request body against the endpoint.
    pub(super) fn check_type(rt: &ResourceType, body: &mut Value) -> Result<(), ApiError> {
        let obj = body
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("the body must be a JSON object"))?;
        let want_av = rt.api_version();
        match obj.get("kind").and_then(Value::as_str) {
            None => {
                obj.insert("kind".into(), json!(rt.kind));
            }
            Some(k) if k == rt.kind => {}
            // A built-in body of another kind fails the conversion to the endpoint's internal
            // type, in the decoder's words.
            Some(k) if !rt.custom => {
                let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or(&want_av);
                let version = av.rsplit('/').next().unwrap_or(av);
                let internal = rt.group.split('.').next().filter(|g| !g.is_empty()).unwrap_or("core");
                return Err(ApiError::bad_request(format!(
                    "{k} in version {version:?} cannot be handled as a {kind}: converting ({version}.{k}) to ({internal}.{kind}): unknown conversion",
                    kind = rt.kind
                )));
            }
            Some(k) => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    rt.kind
                )))
            }
        }
        match obj.get("apiVersion").and_then(Value::as_str) {
            None => {
                obj.insert("apiVersion".into(), json!(want_av));
            }
            Some(av) if av == want_av => {}
            Some(av) => {
                // Another served version of the same group is converted (trivially).
                let same_group = av.rsplit_once('/').map(|(g, _)| g).unwrap_or("") == rt.group;
                if !same_group {
                    return Err(ApiError::bad_request(format!(
                        "the API version in the data ({av}) does not match the expected API version ({want_av})"
                    )));
                }
                obj.insert("apiVersion".into(), json!(want_av));
            }
        }
        Ok(())
    }

    /// `x-kubernetes-list-type` set/map uniqueness; on updates only when the old object
    /// satisfied it (kube-apiserver ratchets these errors).
    fn list_types(schema: &Value, old: Option<&Value>, new: &Value) -> Vec<schema::Cause> {
        let errs = schema::validate_list_sets_and_maps(new, schema);
        match old {
            Some(o) if !errs.is_empty() && !schema::validate_list_sets_and_maps(o, schema).is_empty() => Vec::new(),
            _ => errs,
        }
    }

    /// CEL rules, unless an earlier error means the object cannot be trusted to have the schema's
    /// shape (kube-apiserver's `hasBlockingErr`). Returns warnings (ratcheted rule failures).
    fn cel_rules(
        cel: &crate::cel::Validator,
        old: Option<&Value>,
        new: &Value,
        causes: &mut Vec<StatusCause>,
    ) -> Vec<String> {
        const BLOCKING: &[&str] = &[
            "FieldValueNotSupported",
            "FieldValueRequired",
            "FieldValueTooLong",
            "FieldValueTooMany",
            "FieldValueTypeInvalid",
        ];
        if causes.iter().any(|c| BLOCKING.contains(&c.reason.as_str())) {
            causes.push(StatusCause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".into(),
                field: "<nil>".into(),
            });
            return Vec::new();
        }
        let (errs, warnings) = cel.validate(new, old);
        causes.extend(errs);
        warnings
    }

    /// Schema pruning, defaulting and validation for custom resources, plus metadata and
    /// per-kind admission for every kind. Returns warnings.
    pub(super) fn admit(
        &self,
        rt: &ResourceType,
        old: Option<&Value>,
        new: &mut Value,
        opts: &Opts,
        sub: Sub,
    ) -> Result<Vec<String>, ApiError> {
        let mut warnings = Vec::new();
        if let Some(ctx) = &opts.request {
            warnings.extend(ctx.admit(Stage::Registry, &Self::attributes(rt, old, new, opts, sub))?);
        }
        let name = meta_of(new)
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut causes: Vec<StatusCause> = Vec::new();
        if let Some(schema) = &rt.schema {
            let unknown = schema::prune_unknown(new, schema);
            if !unknown.is_empty() && sub != Sub::Status {
                match opts.validation {
                    FieldValidation::Strict => {
                        let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                        return Err(ApiError::bad_request(format!(
                            "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
                            rt.kind,
                            rt.version,
                            rt.kind,
                            list.join(", ")
                        )));
                    }
                    FieldValidation::Warn => {
                        warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
                    }
                    FieldValidation::Ignore => {}
                }
            }
            schema::apply_defaults(new, schema);
            let to_status = |c: schema::Cause| StatusCause {
                reason: c.reason,
                message: c.message,
                field: c.field,
            };
            let errs = schema::validate(new, schema);
            // Values that did not change are ratcheted (kube-apiserver 1.30+).
            let errs = match old {
                Some(o) => schema::ratchet(errs, o, new),
                None => errs,
            };
            causes.extend(errs.into_iter().map(to_status));
            causes.extend(Self::list_types(schema, old, new).into_iter().map(to_status));
            if let Some(cel) = &rt.cel {
                warnings.extend(Self::cel_rules(cel, old, new, &mut causes));
            }
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            namespace_name_label(new);
        }
        if let Some(m) = meta_of(new) {
            let rule = if matches!(rt.plural.as_str(), "namespaces" | "services") && rt.group.is_empty() {
                meta::NameRule::DnsLabel
            } else if rt.group == crate::auth::rbac::GROUP {
                meta::NameRule::PathSegment
            } else {
                meta::NameRule::DnsSubdomain
            };
            // Kinds validated with core's ValidateObjectMeta also check finalizer names
            // without a domain against the standard ones.
            let kube_finalizers = !rt.custom
                && matches!(
                    rt.group.as_str(),
                    "" | "apps" | "batch" | "policy" | "coordination.k8s.io"
                );
            causes.extend(meta::validate_metadata(m, rule, kube_finalizers));
            if let Some(c) = old.and_then(meta_of).and_then(|o| meta::no_new_finalizers(o, m)) {
                // kube-apiserver checks the metadata update twice (the registry's BeforeUpdate,
                // then the kind's ValidateUpdate): the cause is listed twice.
                causes.extend([c.clone(), c]);
            }
        }
        causes.extend(crate::strategy::admit(&self.store, rt, old, new)?);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
        }
        // Validating admission (ValidatingAdmissionPolicies) on the object as it would be stored.
        if let Some(ctx) = &opts.request {
            warnings.extend(ctx.admit(Stage::Validating, &Self::attributes(rt, old, new, opts, sub))?);
        }
        Ok(warnings)
    }

    /// A create or update as the admission chain sees it.
    fn attributes<'a>(
        rt: &'a ResourceType,
        old: Option<&'a Value>,
        new: &'a Value,
        opts: &Opts,
        sub: Sub,
    ) -> Attributes<'a> {
        let meta = |k: &str| {
            meta_of(new)
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        Attributes {
            operation: if old.is_some() { "UPDATE" } else { "CREATE" },
            rt,
            namespace: meta("namespace"),
            name: meta("name"),
            subresource: match sub {
                Sub::Status => "status",
                Sub::Scale => "scale",
                Sub::EphemeralContainers => "ephemeralcontainers",
                Sub::Main => "",
            },
            object: Some(new),
            old_object: old,
            dry_run: opts.dry_run,
        }
    }
}

/// core/v1's `SetDefaults_Namespace`: every namespace carries `kubernetes.io/metadata.name`
/// with its name (set when decoding, so the writer owns it; a change or removal is undone).
fn namespace_name_label(ns: &mut Value) {
    let Some(name) = ns.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string) else {
        return;
    };
    let Some(meta) = ns.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Some(l) = labels.as_object_mut() {
        l.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
}
