//! Server-side apply: create or merge with field ownership.

use serde_json::{json, Value};

use crate::error::{ApiError, StatusCause};
use crate::managed;
use crate::meta;
use crate::resources::ResourceType;
use crate::store::Write;

use super::list_types::SchemaListTypes;
use super::update::Missing;
use super::{meta_mut, str_field, Core, Opts, Reply, Sub};

/// The annotation client-side `kubectl apply` keeps its applied configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The field manager kubectl's server-side apply uses.
const KUBECTL: &str = "kubectl";

/// The last-applied configuration an object carries, parsed.
fn last_applied(obj: &Value) -> Option<Value> {
    let text = obj.pointer("/metadata/annotations")?.get(LAST_APPLIED)?.as_str()?;
    serde_json::from_str(text).ok()
}

/// Record `config` (without the annotation itself) as the last-applied configuration.
fn set_last_applied(obj: &mut Value, config: &Value) {
    let mut applied = config.clone();
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            ann.remove(LAST_APPLIED);
            if ann.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    // Written as kube-apiserver's lastAppliedUpdater encodes it (`runtime.Encode`: the JSON
    // and a newline).
    let Ok(text) = serde_json::to_string(&applied).map(|t| t + "\n") else {
        return;
    };
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(ann) = ann.as_object_mut() {
            ann.insert(LAST_APPLIED.into(), Value::String(text));
        }
    }
}

/// The object `config` applied by `opts.field_manager` makes of `live` (None: a create), with
/// its managedFields; field-ownership conflicts are a 409 unless forced.
fn applied(rt: &ResourceType, live: Option<&Value>, config: &Value, sub: Sub, opts: &Opts) -> Result<Value, ApiError> {
    let lt = SchemaListTypes {
        schema: rt.schema.as_ref(),
    };
    let subresource = if sub == Sub::Status { Some("status") } else { None };
    let now = meta::now_rfc3339();
    let run = |force: bool| {
        managed::apply(
            live,
            config,
            &opts.field_manager,
            force,
            subresource,
            rt.status_subresource,
            &lt,
            &now,
        )
    };
    let mut merged = run(opts.force)
        .or_else(|conflicts| {
            // kube-apiserver's lastAppliedManager: kubectl moving from client-side to
            // server-side apply takes over the fields its last client-side apply set
            // (and nobody changed since) without conflicts.
            match live.and_then(last_applied) {
                Some(last) if opts.field_manager == KUBECTL => {
                    let allowed = managed::unchanged_last_applied(&last, live.unwrap_or(&Value::Null), &lt);
                    let rest: Vec<_> = conflicts.into_iter().filter(|c| !allowed.contains(&c.field)).collect();
                    if rest.is_empty() {
                        run(true)
                    } else {
                        Err(rest)
                    }
                }
                _ => Err(conflicts),
            }
        })
        .map_err(|conflicts| conflict_error(rt, &conflicts))?;
    // lastAppliedUpdater: kubectl's server-side apply keeps the annotation current, so a later
    // client-side apply diffs against what was applied last.
    if opts.field_manager == KUBECTL && live.and_then(last_applied).is_some() {
        set_last_applied(&mut merged, config);
    }
    Ok(merged)
}

/// The 409 of an apply whose fields other managers own.
fn conflict_error(rt: &ResourceType, conflicts: &[managed::Conflict]) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|c| StatusCause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", managed::print_manager(c, &rt.api_version())),
            field: c.field.clone(),
        })
        .collect();
    ApiError::conflict_message(managed::conflict_message(conflicts, &rt.api_version()), causes)
}

impl Core {
    /// Server-side apply: create or merge with field ownership.
    pub(super) fn apply(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        config: Value,
        sub: Sub,
        opts: &Opts,
    ) -> Result<Reply, ApiError> {
        // Like kube-apiserver, an apply that raced another writer is redone on the new object;
        // only field-ownership conflicts reach the client.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.apply_once(rt, ns, name, config.clone(), sub, opts) {
                Err(e) if e.code == 409 && e.message.contains("the object has been modified") && attempts < 8 => {
                    continue
                }
                Err(e) if e.code == 409 && e.reason == "AlreadyExists" && attempts < 8 => continue,
                other => return other,
            }
        }
    }

    fn apply_once(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut config: Value,
        sub: Sub,
        opts: &Opts,
    ) -> Result<Reply, ApiError> {
        if opts.field_manager.is_empty() {
            return Err(ApiError::bad_request(
                "PATCH, actionType: apply: fieldManager is required for apply requests",
            ));
        }
        // An applied configuration names its kind: without one the decoder has no type for it.
        let type_of = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (api_version, kind) = (type_of("apiVersion"), type_of("kind"));
        if api_version.is_empty() || kind.is_empty() {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
            return Err(ApiError::bad_request(format!(
                "invalid object type: {group}/{version}, Kind={kind}"
            )));
        }
        Self::check_type(rt, &mut config)?;
        if sub == Sub::Scale {
            return Err(ApiError::unsupported_media_type(crate::error::CUSTOM_PATCH_TYPES));
        }
        let current = self.store.get(&rt.key(), ns, name);
        let live = current.as_ref().map(|c| c.value());
        let merged = applied(rt, live.as_ref(), &config, sub, opts)?;
        let Some(cur) = current else {
            return self.apply_create(rt, ns, name, merged, sub, opts);
        };
        let mut body = merged;
        if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(cur.rv.to_string()));
        }
        let no_manager = Opts {
            unrecorded: true,
            ..opts.clone()
        };
        self.replace(rt, ns, name, body, sub, &no_manager, Missing::NotFound)
    }

    /// An apply of an object that does not exist creates it (never through /status), keeping
    /// the managedFields apply computed.
    fn apply_create(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut body: Value,
        sub: Sub,
        opts: &Opts,
    ) -> Result<Reply, ApiError> {
        if sub == Sub::Status {
            return Err(ApiError::not_found(&rt.qualified(), name));
        }
        // An apply that creates needs `create` as well as `patch`.
        if let Some(refused) = opts.request.as_ref().and_then(|r| r.create_refused.clone()) {
            return Err(refused);
        }
        if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("name".into(), json!(name));
            m.remove("resourceVersion");
        }
        // managedFields were computed by apply; keep them through create.
        let mf = body.pointer("/metadata/managedFields").cloned();
        let mut reply = self.create_keeping_fields(rt, ns, body, opts, mf)?;
        reply.code = 201;
        Ok(reply)
    }

    fn create_keeping_fields(
        &self,
        rt: &ResourceType,
        ns: &str,
        body: Value,
        opts: &Opts,
        mf: Option<Value>,
    ) -> Result<Reply, ApiError> {
        let reply = self.create(rt, Some(ns), body, opts)?;
        let Some(mf) = mf else { return Ok(reply) };
        if opts.dry_run {
            return Ok(reply);
        }
        // create() recorded an Update entry; replace it with apply's Apply entry.
        let name = str_field(&reply.body, "/metadata/name").unwrap_or("").to_string();
        let w = self
            .store
            .write(&rt.key(), if rt.namespaced { ns } else { "" }, &name, false, |cur| {
                let Some(cur) = cur else { return Ok(Write::Keep) };
                let mut v = cur.value();
                meta_mut(&mut v)?.insert("managedFields".into(), mf);
                Ok(Write::Put(v))
            })?;
        Ok(Reply {
            code: 201,
            body: w.obj.value(),
            warnings: reply.warnings,
        })
    }
}
