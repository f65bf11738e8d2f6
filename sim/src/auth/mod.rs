//! Who may do what, without reading the store: users and groups, static tokens, the
//! ServiceAccount token issuer, what a request asks (from its path), the RBAC rules and the
//! authorizer over a snapshot of them, and an audit of every decision. The steps that read the
//! store (authenticating a ServiceAccount token, impersonation, the review APIs, TokenRequest)
//! are `crate::handlers`'s; RBAC's escalation prevention is an admission check
//! (`crate::admission::escalation`).
//!
//! Submodules: `attributes` (what a request asks, from its path), `token` (ServiceAccount JWTs),
//! `token_request` (what a TokenRequest asks), `rbac` (rules, the snapshot, the authorizer),
//! `audit` (decisions per identity).
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{json, Value};

use crate::error::ApiError;

pub mod attributes;
pub mod audit;
pub mod rbac;
pub mod token;
pub mod token_request;

pub use attributes::RequestInfo;
pub use audit::{AuditEvent, AuditKey};

/// The superuser group: every request of its members is allowed (kube-apiserver's
/// privileged-group authorizer, before RBAC).
pub const MASTERS: &str = "system:masters";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";
/// Extra keys of a ServiceAccount token bound to a pod (projected tokens).
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// An authenticated (or anonymous) user, as `user.Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user in `system:masters` (the simulator's admin identities).
    pub fn admin(name: &str) -> UserInfo {
        UserInfo {
            username: name.to_string(),
            uid: String::new(),
            groups: vec![MASTERS.to_string(), AUTHENTICATED.to_string()],
            extra: BTreeMap::new(),
        }
    }

    pub fn anonymous() -> UserInfo {
        UserInfo {
            username: ANONYMOUS.to_string(),
            groups: vec![UNAUTHENTICATED.to_string()],
            ..UserInfo::default()
        }
    }

    pub fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }

    /// The user as `authentication.k8s.io/v1` UserInfo JSON.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"username": self.username, "groups": self.groups});
        if let Some(o) = v.as_object_mut() {
            if !self.uid.is_empty() {
                o.insert("uid".into(), json!(self.uid));
            }
            if !self.extra.is_empty() {
                o.insert("extra".into(), json!(self.extra));
            }
        }
        v
    }
}

/// How requests are authorized (kube-apiserver `--authorization-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthorizationMode {
    /// `system:masters` members, then RBAC (the default, as on a cluster).
    #[default]
    Rbac,
    /// Every authenticated or anonymous request is allowed.
    AlwaysAllow,
}

/// An authorization decision and kube-apiserver's reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Authentication and authorization state of one simulator.
pub struct Auth {
    static_tokens: RwLock<HashMap<String, UserInfo>>,
    pub(crate) issuer: token::Issuer,
    rbac: Mutex<Option<Arc<rbac::Snapshot>>>,
    pub audit: audit::Audit,
    always_allow: AtomicBool,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            static_tokens: RwLock::new(HashMap::new()),
            issuer: token::Issuer::new(),
            rbac: Mutex::new(None),
            audit: audit::Audit::default(),
            always_allow: AtomicBool::new(false),
        }
    }
}

impl Auth {
    /// Accept `token` as `user` (kube-apiserver's static token file).
    pub fn register_token(&self, token: &str, mut user: UserInfo) {
        if !user.in_group(AUTHENTICATED) {
            user.groups.push(AUTHENTICATED.to_string());
        }
        self.static_tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_string(), user);
    }

    /// Register `name` as an admin identity whose bearer token is `name` itself (the rule for
    /// the simulator's named test identities: see docs/simulator.md).
    pub fn register_admin(&self, name: &str) {
        self.register_token(name, UserInfo::admin(name));
    }

    pub(crate) fn static_user(&self, token: &str) -> Option<UserInfo> {
        self.static_tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    pub fn set_mode(&self, mode: AuthorizationMode) {
        self.always_allow
            .store(mode == AuthorizationMode::AlwaysAllow, Ordering::Relaxed);
    }

    pub fn mode(&self) -> AuthorizationMode {
        if self.always_allow.load(Ordering::Relaxed) {
            AuthorizationMode::AlwaysAllow
        } else {
            AuthorizationMode::Rbac
        }
    }

    pub(crate) fn cached_rbac(&self) -> Option<Arc<rbac::Snapshot>> {
        self.rbac.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn store_rbac(&self, s: Arc<rbac::Snapshot>) {
        *self.rbac.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
    }
}

/// 401, as kube-apiserver answers a request whose credentials no authenticator accepts.
pub fn unauthorized() -> ApiError {
    ApiError {
        code: 401,
        reason: "Unauthorized",
        message: "Unauthorized".into(),
        details: None,
    }
}

/// 403 for a request the authorizer refused, in kube-apiserver's words (`forbiddenMessage`
/// and `errors.NewForbidden`).
pub fn forbidden(user: &UserInfo, req: &RequestInfo, reason: &str) -> ApiError {
    let msg = if !req.resource_request {
        format!("User {:?} cannot {} path {:?}", user.username, req.verb, req.path)
    } else if !req.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            user.username,
            req.verb,
            req.combined_resource(),
            req.api_group,
            req.namespace
        )
    } else {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            user.username,
            req.verb,
            req.combined_resource(),
            req.api_group
        )
    };
    let msg = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    let resource = if req.resource_request {
        req.resource.as_str()
    } else {
        ""
    };
    let group = if req.resource_request {
        req.api_group.as_str()
    } else {
        ""
    };
    ApiError::forbidden(group, resource, &req.name, msg)
}
