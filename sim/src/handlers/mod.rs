//! The API semantics every request goes through, whether it came over HTTP or from the
//! simulator's own controllers (kubelet, garbage collector): create, update, patch, delete.
//!
//! One submodule per operation (`create`, `update`, `patch`, `apply`, `scale`, `delete`), plus
//! the checks every write passes (`admit`), the follow-up work after it (`after_write`) and how
//! lists merge for field ownership (`list_types`).
use std::sync::{Arc, RwLock};

use serde_json::{json, Map, Value};

use crate::error::ApiError;
pub use crate::meta::{set_pointer, PatchType};
use crate::resources::{Registry, ResourceType};
use crate::store::{Store, Stored, Written};

mod admit;
mod after_write;
mod apply;
pub mod authn;
mod authorize;
mod create;
mod delete;
pub mod impersonation;
mod list_types;
mod patch;
mod reviews;
mod scale;
mod token_request;
mod update;

/// Which endpoint of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
    Scale,
    /// `pods/ephemeralcontainers`: only `spec.ephemeralContainers` changes, and only by additions.
    EphemeralContainers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Per-request write options (query parameters), and who asked.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    pub dry_run: bool,
    pub field_manager: String,
    pub validation: FieldValidation,
    pub force: bool,
    /// Managed fields are already computed (server-side apply): the write records none.
    pub unrecorded: bool,
    /// The request's user and what was read for it (None: the simulator's own controllers).
    pub request: Option<Arc<crate::admission::RequestContext>>,
}

/// `DeleteOptions` the server honours.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
    /// The request's user and what was read for it (None: the simulator's own controllers).
    pub request: Option<Arc<crate::admission::RequestContext>>,
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

/// Work an in-process controller does right after a committed write, before the write's
/// response (kube's controllers react to a watch, eventually; the simulator's react at once, so
/// a client sees their effect as soon as its write returns). A hook writes through the same
/// `Core` methods as any client.
pub trait AfterWrite: Send + Sync {
    fn after_write(&self, core: &Core, rt: &ResourceType, w: &Written);
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
    /// Authentication, authorization and their audit.
    pub auth: crate::auth::Auth,
    /// The in-process controllers' work after each committed write.
    hooks: RwLock<Vec<Arc<dyn AfterWrite>>>,
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

impl Core {
    /// An empty API server: the built-in types, no objects. What every cluster starts with (the
    /// default namespaces, Services, RBAC roles) is created by `controllers::bootstrap`.
    pub fn new(history_limit: usize, history_bytes: usize) -> Arc<Self> {
        Arc::new(Core {
            store: Store::new(history_limit, history_bytes),
            registry: RwLock::new(Registry::with_builtins()),
            open_watches: Default::default(),
            requests: Default::default(),
            write_log: Default::default(),
            auth: crate::auth::Auth::default(),
            hooks: Default::default(),
        })
    }

    /// Run `hook` after every committed write from now on.
    pub fn add_hook(&self, hook: Arc<dyn AfterWrite>) {
        self.hooks.write().unwrap_or_else(|p| p.into_inner()).push(hook);
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

    /// The resource a view's objects are stored as (see [`crate::resources::views`]).
    pub fn storage_type(&self, rt: &ResourceType) -> Result<Arc<ResourceType>, ApiError> {
        let Some(view) = rt.view else {
            return Err(ApiError::internal(format!("{} is not a view", rt.qualified())));
        };
        let (group, plural) = view.storage();
        self.resource(group, plural)
            .ok_or_else(|| ApiError::internal(format!("the storage of {} is not served", rt.qualified())))
    }

    /// Run a write against a view's storage resource and show its answer in the view's shape.
    fn through_view(
        &self,
        rt: &ResourceType,
        f: impl FnOnce(&ResourceType) -> Result<Reply, ApiError>,
    ) -> Result<Reply, ApiError> {
        let storage = self.storage_type(rt)?;
        let mut r = f(&storage)?;
        r.body = crate::resources::views::to_view(rt, r.body);
        Ok(r)
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Arc<Stored>, ApiError> {
        self.store
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
    }
}
