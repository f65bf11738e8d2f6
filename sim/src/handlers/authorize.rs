//! Authorization against the store's RBAC objects: the snapshot they compile to, rebuilt only
//! when one of them changed.
use std::sync::Arc;

use crate::auth::rbac::{rkey, Snapshot, RESOURCES};
use crate::auth::{AuthorizationMode, Decision, RequestInfo, UserInfo, MASTERS};

use super::Core;

impl Core {
    /// The current RBAC snapshot (rebuilt if a role or binding changed since the last one).
    pub fn rbac(&self) -> Arc<Snapshot> {
        let version = RESOURCES.map(|r| self.store.changed_at(&rkey(r)));
        if let Some(s) = self.auth.cached_rbac() {
            if s.version() == version {
                return s;
            }
        }
        let s = Arc::new(Snapshot::build(&self.store, version));
        self.auth.store_rbac(s.clone());
        s
    }

    /// Whether `user` may make the request: `system:masters` always; otherwise RBAC (unless the
    /// simulator runs with `AlwaysAllow`).
    pub fn authorize(&self, user: &UserInfo, req: &RequestInfo) -> Decision {
        if user.in_group(MASTERS) || self.auth.mode() == AuthorizationMode::AlwaysAllow {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        self.rbac().authorize(user, req)
    }
}
