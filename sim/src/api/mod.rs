//! The API semantics every request goes through, whether it came over HTTP or from the
//! simulator's own controllers (kubelet, garbage collector): create, update, patch, delete.
//!
//! One submodule per operation (`create`, `update`, `patch`, `apply`, `scale`, `delete`), plus
//! the checks every write passes (`admit`), the follow-up work after it (`after_write`) and how
//! lists merge for field ownership (`list_types`).
use std::sync::{Arc, RwLock};

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::resources::{Registry, ResourceType};
use crate::store::{Store, Stored};

mod admit;
mod after_write;
mod apply;
mod create;
mod delete;
mod list_types;
mod patch;
mod scale;
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
    pub request: Option<Arc<crate::auth::RequestContext>>,
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
    /// The request's user and what was read for it (None: the simulator's own controllers).
    pub request: Option<Arc<crate::auth::RequestContext>>,
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
    /// Authentication, authorization and their audit.
    pub auth: crate::auth::Auth,
    /// The compiled ValidatingAdmissionPolicies (see [`Core::policies`]).
    pub(crate) policy_cache: crate::policy::Cache,
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
    pub fn new(history_limit: usize, history_bytes: usize) -> Arc<Self> {
        let core = Arc::new(Core {
            store: Store::new(history_limit, history_bytes),
            registry: RwLock::new(Registry::with_builtins()),
            open_watches: Default::default(),
            requests: Default::default(),
            write_log: Default::default(),
            auth: crate::auth::Auth::default(),
            policy_cache: Default::default(),
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
        core.create_default_service();
        core.create_control_plane_objects();
        core.create_rbac_defaults();
        core
    }

    /// What kube-apiserver serves about the control plane: ComponentStatuses (deprecated but
    /// served) and a local APIService per built-in group version.
    fn create_control_plane_objects(&self) {
        let opts = Opts {
            field_manager: "kube-apiserver".into(),
            ..Opts::default()
        };
        if let Some(rt) = self.resource("", "componentstatuses") {
            for name in ["scheduler", "controller-manager", "etcd-0"] {
                let cs = json!({"apiVersion": "v1", "kind": "ComponentStatus", "metadata": {"name": name},
                    "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
                let _ = self.create(&rt, None, cs, &opts);
            }
        }
        let Some(rt) = self.resource("apiregistration.k8s.io", "apiservices") else {
            return;
        };
        let gvs: Vec<(String, String)> = {
            let reg = self.registry();
            let mut v: Vec<(String, String)> = reg.all().map(|t| (t.group.clone(), t.version.clone())).collect();
            v.dedup();
            v
        };
        for (group, version) in gvs {
            let svc = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": format!("{version}.{group}"), "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                "spec": {"group": group, "version": version, "groupPriorityMinimum": 1000, "versionPriority": 15},
                "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local", "message": "Local APIServices are always available"}]}});
            let _ = self.create(&rt, None, svc, &opts);
        }
    }

    /// `default/kubernetes`, the Service every cluster has for its API server.
    fn create_default_service(&self) {
        let Some(rt) = self.resource("", "services") else {
            return;
        };
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}], "sessionAffinity": "None", "type": "ClusterIP"}});
        let _ = self.create(
            &rt,
            Some("default"),
            svc,
            &Opts {
                field_manager: "kube-apiserver".into(),
                ..Opts::default()
            },
        );
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

    /// The resource a view's objects are stored as (see [`crate::views`]).
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
        r.body = crate::views::to_view(rt, r.body);
        Ok(r)
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Arc<Stored>, ApiError> {
        self.store
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
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
