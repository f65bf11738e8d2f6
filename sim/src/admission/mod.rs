//! The admission chain a user's write passes through, as kube-apiserver runs it: checks
//! prepared for the request (each reads what it needs — an RBAC or policy snapshot, the
//! request's namespace — before the write, which runs with the store locked) and run by the
//! API handlers at their stage of the write. The handlers know only [`Check`]; the server
//! decides which checks a request gets ([`RequestContext::checks`]), so the handlers import
//! no plugin.
//!
//! Plugins: `escalation` (RBAC's escalation prevention, run where kube's RBAC registry runs
//! it: before defaulting and validation) and `policy` (ValidatingAdmissionPolicies, run on the
//! object as it would be stored). Writes by the simulator's own controllers carry no request
//! context and pass no check, as in-process loopback clients with `system:masters` do.

use std::sync::Arc;

use serde_json::Value;

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::resources::ResourceType;

pub mod escalation;
pub mod policy;

/// What a write asks, as the admission chain sees it.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// CREATE, UPDATE or DELETE.
    pub operation: &'static str,
    pub rt: &'a ResourceType,
    pub namespace: &'a str,
    pub name: &'a str,
    pub subresource: &'a str,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    pub dry_run: bool,
}

/// Where in a write a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before defaulting and validation, on the object as sent (kube's registry wrappers).
    Registry,
    /// After defaulting and validation, on the object as it would be stored (validating
    /// admission).
    Validating,
}

/// One admission check, prepared for one request.
pub trait Check: Send + Sync + std::fmt::Debug {
    fn stage(&self) -> Stage;
    /// Err denies the write; Ok carries warnings for the response.
    fn admit(&self, a: &Attributes<'_>, user: &UserInfo) -> Result<Vec<String>, ApiError>;
}

/// What a write knows about the request that made it (kube-apiserver's request context): who
/// sent it and the checks it must pass. Writes by the simulator's own controllers have none.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub user: UserInfo,
    /// The admission checks this request gets, in order.
    pub checks: Vec<Arc<dyn Check>>,
    /// For a patch: why the user may not `create` the object (None: may). kube-apiserver
    /// authorizes `create` as well when a server-side apply creates the object.
    pub create_refused: Option<ApiError>,
}

impl RequestContext {
    /// Run the checks of `stage` in order: Err for the first denial, else their warnings.
    pub fn admit(&self, stage: Stage, a: &Attributes<'_>) -> Result<Vec<String>, ApiError> {
        let mut warnings = Vec::new();
        for c in self.checks.iter().filter(|c| c.stage() == stage) {
            warnings.extend(c.admit(a, &self.user)?);
        }
        Ok(warnings)
    }
}
