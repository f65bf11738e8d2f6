//! The API semantics every request goes through, whether it came over HTTP or from the
//! simulator's own controllers (kubelet, garbage collector): create, update, patch, delete.
use std::sync::{Arc, RwLock};

use serde_json::{json, Map, Value};

use crate::admission;
use crate::error::{ApiError, StatusCause};
use crate::managed::{self, ListType, ListTypes};
use crate::meta;
use crate::resources::{Registry, ResKey, ResourceType};
use crate::schema;
use crate::store::{Store, Stored, Write, Written};

/// Which endpoint of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
    Scale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Per-request write options (query parameters).
#[derive(Debug, Clone, Default)]
pub struct Opts {
    pub dry_run: bool,
    pub field_manager: String,
    pub validation: FieldValidation,
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// `DeleteOptions` the server honours.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

/// One entry of [`Core::write_log`].
#[derive(Debug, Clone)]
pub struct WriteRecord {
    pub at: std::time::Instant,
    pub identity: String,
    pub method: String,
    pub path: String,
}

/// Entries kept in [`Core::write_log`].
const WRITE_LOG_LIMIT: usize = 100_000;

/// A successful answer: HTTP code, body, `Warning` headers.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

pub struct Core {
    pub store: Store,
    pub registry: RwLock<Registry>,
    /// Watches currently streaming (tests wait on this rather than sleeping).
    pub open_watches: std::sync::atomic::AtomicUsize,
    /// Writes (non-GET requests) in arrival order: when, who, method, path — tests check who
    /// wrote what when (e.g. that a deposed leader never wrote after its successor). Bounded.
    pub write_log: std::sync::Mutex<std::collections::VecDeque<WriteRecord>>,
    /// Requests served, by client identity and HTTP method (benchmarks count API writes).
    pub requests: std::sync::Mutex<std::collections::HashMap<String, std::collections::HashMap<String, u64>>>,
}

/// List types for server-side apply: built-in merge keys and CRD schema list-map keys.
struct SchemaListTypes<'a> {
    schema: Option<&'a Value>,
}

impl ListTypes for SchemaListTypes<'_> {
    fn list_type(&self, path: &str) -> ListType {
        if let Some(schema) = self.schema {
            let mut node = schema;
            for part in path.split('.').filter(|p| !p.is_empty()) {
                let next = node
                    .get("properties")
                    .and_then(|p| p.get(part))
                    .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
                    .or_else(|| {
                        node.get("items")
                            .and_then(|i| i.get("properties"))
                            .and_then(|p| p.get(part))
                    });
                match next {
                    Some(n) => node = n,
                    None => return ListType::Atomic,
                }
            }
            return match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => ListType::Map(
                    node.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                        .unwrap_or_default(),
                ),
                Some("set") => ListType::Set,
                _ => ListType::Atomic,
            };
        }
        let last = path.rsplit('.').next().unwrap_or(path);
        match last {
            "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => {
                ListType::Map(vec!["name".into()])
            }
            "ports" if path.contains("containers") => ListType::Map(vec!["containerPort".into(), "protocol".into()]),
            "ports" => ListType::Map(vec!["port".into(), "protocol".into()]),
            "volumeMounts" => ListType::Map(vec!["mountPath".into()]),
            "conditions" => ListType::Map(vec!["type".into()]),
            "ownerReferences" => ListType::Map(vec!["uid".into()]),
            "finalizers" => ListType::Set,
            _ => ListType::Atomic,
        }
    }
}

fn meta_of(v: &Value) -> Option<&Map<String, Value>> {
    v.get("metadata").and_then(Value::as_object)
}

fn meta_mut(v: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let obj = v
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object must be a JSON object"))?;
    let m = obj.entry("metadata").or_insert_with(|| json!({}));
    if m.is_null() {
        *m = json!({});
    }
    m.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

fn str_field<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// The part of an object that decides `generation`: spec, or everything but metadata and
/// status for kinds without spec.
fn generation_part(v: &Value) -> Value {
    if let Some(s) = v.get("spec") {
        return s.clone();
    }
    let mut c = v.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    c
}

/// Metadata fields the server owns: carried over from the stored object on every update.
const SERVER_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Compare two objects ignoring resourceVersion and managedFields timestamps (no-op detection).
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut c = v.clone();
        if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
                for e in mf.iter_mut() {
                    if let Some(o) = e.as_object_mut() {
                        o.remove("time");
                    }
                }
            }
        }
        c
    };
    strip(a) == strip(b)
}

impl Core {
    pub fn new(history_limit: usize) -> Arc<Self> {
        let core = Arc::new(Core {
            store: Store::new(history_limit),
            registry: RwLock::new(Registry::with_builtins()),
            open_watches: Default::default(),
            requests: Default::default(),
            write_log: Default::default(),
        });
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let rt = core.resource("", "namespaces");
            if let Some(rt) = rt {
                let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let _ = core.create(
                    &rt,
                    None,
                    body,
                    &Opts {
                        field_manager: "baton-sim".into(),
                        ..Opts::default()
                    },
                );
            }
        }
        core
    }

    /// Requests so far from clients whose identity contains `client`, with this HTTP method.
    pub fn request_count(&self, client: &str, method: &str) -> u64 {
        let g = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        g.iter()
            .filter(|(id, _)| id.contains(client))
            .filter_map(|(_, by)| by.get(method))
            .sum()
    }

    /// Record a write request (see [`Core::write_log`]).
    pub fn log_write(&self, identity: &str, method: &str, path: &str) {
        let mut g = self.write_log.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() >= WRITE_LOG_LIMIT {
            g.pop_front();
        }
        g.push_back(WriteRecord {
            at: std::time::Instant::now(),
            identity: identity.to_string(),
            method: method.to_string(),
            path: path.to_string(),
        });
    }

    /// The writes recorded so far.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.write_log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn count_request(&self, identity: &str, method: &str) {
        let mut g = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        // Look up before inserting: no allocation on the hot path.
        match g.get_mut(identity) {
            Some(by) => match by.get_mut(method) {
                Some(n) => *n += 1,
                None => {
                    by.insert(method.to_string(), 1);
                }
            },
            None => {
                g.insert(
                    identity.to_string(),
                    std::collections::HashMap::from([(method.to_string(), 1)]),
                );
            }
        }
    }

    pub fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Any served version of a resource.
    pub fn resource(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.registry().any_version(group, plural)
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Arc<Stored>, ApiError> {
        self.store
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
    }

    fn ensure_namespace(&self, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let key = ResKey {
            group: String::new(),
            plural: "namespaces".into(),
        };
        match self.store.get(&key, "", ns) {
            Some(n) if n.deleting => Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.qualified()
                ),
                details: None,
            }),
            Some(_) => Ok(()),
            None => Err(ApiError::not_found("namespaces", ns)),
        }
    }

    /// Check apiVersion/kind of a request body against the endpoint.
    fn check_type(rt: &ResourceType, body: &mut Value) -> Result<(), ApiError> {
        let obj = body
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("the body must be a JSON object"))?;
        let want_av = rt.api_version();
        match obj.get("kind").and_then(Value::as_str) {
            None => {
                obj.insert("kind".into(), json!(rt.kind));
            }
            Some(k) if k == rt.kind => {}
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

    /// Schema pruning, defaulting and validation for custom resources, plus metadata and
    /// per-kind admission for every kind. Returns warnings.
    fn admit(
        &self,
        rt: &ResourceType,
        old: Option<&Value>,
        new: &mut Value,
        opts: &Opts,
        sub: Sub,
    ) -> Result<Vec<String>, ApiError> {
        let mut warnings = Vec::new();
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
                            "strict decoding error: {}",
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
            causes.extend(schema::validate(new, schema).into_iter().map(|c| StatusCause {
                reason: c.reason,
                message: c.message,
                field: c.field,
            }));
        }
        if let Some(m) = meta_of(new) {
            let label_names = matches!(rt.plural.as_str(), "namespaces" | "services") && rt.group.is_empty();
            causes.extend(meta::validate_metadata(m, label_names));
        }
        causes.extend(admission::admit(self, rt, old, new)?);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
        }
        Ok(warnings)
    }

    /// `POST` a new object.
    pub fn create(&self, rt: &ResourceType, ns: Option<&str>, mut body: Value, opts: &Opts) -> Result<Reply, ApiError> {
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
        self.ensure_namespace(rt, ns)?;
        let warnings = self.admit(rt, None, &mut body, opts, Sub::Main)?;
        let name = str_field(&body, "/metadata/name").unwrap_or("").to_string();
        if opts.field_manager.is_empty() {
            return Err(ApiError::internal("missing field manager"));
        }
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

    /// `PUT` (and the common tail of every patch): replace the object at `sub`.
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut body: Value,
        sub: Sub,
        opts: &Opts,
    ) -> Result<Reply, ApiError> {
        Self::check_type(rt, &mut body)?;
        let key = rt.key();
        let ns = if rt.namespaced { ns } else { "" };
        if let Some(bname) = str_field(&body, "/metadata/name") {
            if bname != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({bname}) does not match the name on the URL ({name})"
                )));
            }
        }
        let create_on_update = matches!(
            (rt.group.as_str(), rt.plural.as_str()),
            ("coordination.k8s.io", "leases") | ("", "events") | ("events.k8s.io", "events")
        );
        if self.store.get(&key, ns, name).is_none() {
            if create_on_update && sub == Sub::Main {
                if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                    m.insert("name".into(), json!(name));
                }
                return self.create(rt, Some(ns), body, opts);
            }
            return Err(ApiError::not_found(&rt.qualified(), name));
        }
        let qualified = rt.qualified();
        let mut warnings = Vec::new();
        let w = self.store.write(&key, ns, name, opts.dry_run, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found(&qualified, name))?;
            let old = cur.value();
            let want_rv = str_field(&body, "/metadata/resourceVersion").unwrap_or("").to_string();
            if want_rv.is_empty() {
                if rt.custom {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        &rt.group,
                        name,
                        vec![StatusCause {
                            reason: "FieldValueInvalid".into(),
                            message: "Invalid value: 0x0: must be specified for an update".into(),
                            field: "metadata.resourceVersion".into(),
                        }],
                    ));
                }
            } else if want_rv != cur.rv.to_string() {
                return Err(ApiError::conflict(&qualified, name));
            }
            let mut new = match sub {
                Sub::Status => {
                    let mut n = old.clone();
                    if let Some(o) = n.as_object_mut() {
                        match body.get("status") {
                            Some(s) => o.insert("status".into(), s.clone()),
                            None => o.remove("status"),
                        };
                    }
                    // Field ownership computed by a server-side apply to /status travels with it.
                    if let (Some(mf), Some(m)) = (
                        body.pointer("/metadata/managedFields").cloned(),
                        n.get_mut("metadata").and_then(Value::as_object_mut),
                    ) {
                        m.insert("managedFields".into(), mf);
                    }
                    n
                }
                _ => {
                    let mut n = body;
                    if rt.status_subresource {
                        if let Some(o) = n.as_object_mut() {
                            match old.get("status") {
                                Some(s) => o.insert("status".into(), s.clone()),
                                None => o.remove("status"),
                            };
                        }
                    }
                    n
                }
            };
            // Server-owned metadata always comes from the stored object.
            {
                let old_meta = meta_of(&old).cloned().unwrap_or_default();
                let m = meta_mut(&mut new)?;
                for k in SERVER_META {
                    match old_meta.get(*k) {
                        Some(v) => m.insert((*k).to_string(), v.clone()),
                        None => m.remove(*k),
                    };
                }
                m.insert("name".into(), json!(name));
                if rt.namespaced {
                    m.insert("namespace".into(), json!(ns));
                } else {
                    m.remove("namespace");
                }
                if !m.contains_key("managedFields") {
                    if let Some(mf) = old_meta.get("managedFields") {
                        m.insert("managedFields".into(), mf.clone());
                    }
                }
            }
            warnings = self.admit(rt, Some(&old), &mut new, opts, sub)?;
            if rt.tracks_generation && generation_part(&old) != generation_part(&new) {
                let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
                meta_mut(&mut new)?.insert("generation".into(), json!(g));
            }
            let subresource = match sub {
                Sub::Status => Some("status"),
                Sub::Scale => Some("scale"),
                Sub::Main => None,
            };
            if !opts.field_manager.is_empty() {
                managed::record_update(
                    Some(&old),
                    &mut new,
                    &opts.field_manager,
                    subresource,
                    &SchemaListTypes {
                        schema: rt.schema.as_ref(),
                    },
                    &meta::now_rfc3339(),
                );
            }
            Self::finish(&old, new)
        })?;
        self.after_write(rt, &w, opts.dry_run);
        Ok(Reply {
            code: 200,
            body: w.obj.value(),
            warnings,
        })
    }

    /// Common end of a write: no-op detection and deletion once the last finalizer is gone.
    fn finish(old: &Value, mut new: Value) -> Result<Write, ApiError> {
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert(
                "resourceVersion".into(),
                old.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
            );
        }
        if same_object(old, &new) {
            return Ok(Write::Keep);
        }
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some_and(|d| !d.is_null());
        let no_finalizers = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        let pod_grace_left = new.get("kind").and_then(Value::as_str) == Some("Pod")
            && new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0;
        if deleting && no_finalizers && !pod_grace_left {
            return Ok(Write::Delete(new));
        }
        Ok(Write::Put(new))
    }

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
        if pt == PatchType::Strategic && rt.custom {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json",
            ));
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
            match self.update(rt, ns, name, body, sub, opts) {
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
                    ApiError::bad_request(format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ))
                })?;
                let mut t = base;
                json_patch::patch(&mut t, &ops).map_err(|e| {
                    ApiError::invalid(
                        &rt.kind,
                        &rt.group,
                        name,
                        vec![StatusCause {
                            reason: "FieldValueInvalid".into(),
                            message: e.to_string(),
                            field: String::new(),
                        }],
                    )
                })?;
                t
            }
            PatchType::Strategic => {
                crate::strategic::strategic_merge_patch(&base, patch, &rt.kind).map_err(ApiError::bad_request)?
            }
            PatchType::Apply => return Err(ApiError::internal("apply is not a merge patch")),
        })
    }

    /// Server-side apply: create or merge with field ownership.
    fn apply(
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
        Self::check_type(rt, &mut config)?;
        if sub == Sub::Scale {
            return Err(ApiError::unsupported_media_type("application/apply-patch+yaml"));
        }
        let lt = SchemaListTypes {
            schema: rt.schema.as_ref(),
        };
        let subresource = if sub == Sub::Status { Some("status") } else { None };
        let current = self.store.get(&rt.key(), ns, name);
        let now = meta::now_rfc3339();
        let live = current.as_ref().map(|c| c.value());
        let merged = managed::apply(
            live.as_ref(),
            &config,
            &opts.field_manager,
            opts.force,
            subresource,
            rt.status_subresource,
            &lt,
            &now,
        )
        .map_err(|conflicts| {
            let causes = conflicts
                .iter()
                .map(|c| StatusCause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with \"{}\"", c.manager),
                    field: c.field.clone(),
                })
                .collect();
            ApiError::conflict_message(managed::conflict_message(&conflicts, &rt.api_version()), causes)
        })?;
        let no_manager = Opts {
            field_manager: String::new(),
            ..opts.clone()
        };
        match current {
            None => {
                if sub == Sub::Status {
                    return Err(ApiError::not_found(&rt.qualified(), name));
                }
                let mut body = merged;
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
            Some(cur) => {
                let mut body = merged;
                if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("resourceVersion".into(), json!(cur.rv.to_string()));
                }
                self.update(rt, ns, name, body, sub, &no_manager)
            }
        }
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

    /// `DELETE` one object.
    pub fn delete(&self, rt: &ResourceType, ns: &str, name: &str, d: &DeleteOpts) -> Result<Reply, ApiError> {
        let ns = if rt.namespaced { ns } else { "" };
        let key = rt.key();
        let qualified = rt.qualified();
        let is_pod = rt.group.is_empty() && rt.plural == "pods";
        let w = self.store.write(&key, ns, name, d.dry_run, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found(&qualified, name))?;
            if let Some(uid) = &d.precondition_uid {
                if uid != &cur.uid {
                    return Err(ApiError::conflict_message(format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", cur.uid), vec![]));
                }
            }
            if let Some(rv) = &d.precondition_rv {
                if rv != &cur.rv.to_string() {
                    return Err(ApiError::conflict_message(format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", cur.rv), vec![]));
                }
            }
            let mut v = cur.value();
            let m = meta_mut(&mut v)?;
            let mut finalizers: Vec<String> = m.get("finalizers").and_then(Value::as_array).map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect()).unwrap_or_default();
            match d.propagation.as_deref() {
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => finalizers.push("orphan".into()),
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => finalizers.push("foregroundDeletion".into()),
                _ => {}
            }
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), json!(finalizers));
            }
            let already = m.get("deletionTimestamp").is_some_and(|t| !t.is_null());
            // Pods on a node get a grace period the kubelet honours; anything else with
            // finalizers waits for them.
            let grace = if is_pod {
                let bound = v.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
                let done = matches!(v.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"));
                let spec_grace = v.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30);
                if bound && !done { d.grace_period_seconds.unwrap_or(spec_grace).max(0) } else { 0 }
            } else {
                0
            };
            let m = meta_mut(&mut v)?;
            if grace == 0 && finalizers.is_empty() {
                if !already {
                    m.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
                }
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                return Ok(Write::Delete(v));
            }
            let cur_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
            // Already being deleted with an equal or shorter grace, same finalizers: nothing changes.
            if already && cur_grace.is_some_and(|g| g <= grace) && finalizers.len() == cur.finalizers.len() {
                return Ok(Write::Keep);
            }
            if !already || cur_grace.is_none_or(|g| grace < g) {
                m.insert("deletionTimestamp".into(), json!(meta::rfc3339_in(grace)));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            Ok(Write::Put(v))
        })?;
        self.after_write(rt, &w, d.dry_run);
        let code = if w.kind == Some(crate::store::EventKind::Deleted) {
            200
        } else {
            202
        };
        Ok(Reply {
            code,
            body: w.obj.value(),
            warnings: vec![],
        })
    }

    /// Follow-up work after a committed write: CRDs register or unregister their resources,
    /// namespaces take their contents with them.
    fn after_write(&self, rt: &ResourceType, w: &Written, dry_run: bool) {
        if dry_run {
            return;
        }
        let Some(kind) = w.kind else { return };
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            let crd = w.obj.value();
            if let Ok(types) = Registry::types_from_crd(&crd) {
                let group = types.first().map(|t| t.group.clone());
                let plural = types.first().map(|t| t.plural.clone());
                let mut reg = self.registry_mut();
                if let (Some(g), Some(p)) = (&group, &plural) {
                    reg.remove(g, p);
                }
                if kind != crate::store::EventKind::Deleted && !w.obj.deleting {
                    for t in types {
                        reg.insert(t);
                    }
                }
                drop(reg);
                if kind == crate::store::EventKind::Deleted {
                    if let (Some(g), Some(p)) = (group, plural) {
                        self.store.drop_resource(&ResKey { group: g, plural: p });
                    }
                }
            }
        }
        if rt.group.is_empty() && rt.plural == "namespaces" && w.obj.deleting {
            let ns = w.obj.name.clone();
            for (key, name) in self.store.all_in_namespace(&ns) {
                if let Some(t) = self.resource(&key.group, &key.plural) {
                    let _ = self.delete(
                        &t,
                        &ns,
                        &name,
                        &DeleteOpts {
                            grace_period_seconds: Some(0),
                            ..DeleteOpts::default()
                        },
                    );
                }
            }
            let _ = self.store.write(&rt.key(), "", &ns, false, |cur| match cur {
                Some(c) => {
                    let mut v = c.value();
                    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("finalizers");
                    }
                    Ok(Write::Delete(v))
                }
                None => Ok(Write::Keep),
            });
        }
    }
}

/// Set a value at a JSON pointer, creating objects on the way.
pub fn set_pointer(v: &mut Value, ptr: &str, val: Value) {
    let mut cur = v;
    let parts: Vec<&str> = ptr.split('/').filter(|p| !p.is_empty()).collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(obj) = cur.as_object_mut() else { return };
        if i + 1 == parts.len() {
            obj.insert((*p).to_string(), val);
            return;
        }
        cur = obj.entry((*p).to_string()).or_insert_with(|| json!({}));
    }
}
