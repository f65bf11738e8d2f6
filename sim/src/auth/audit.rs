//! An audit of authorization decisions and answers, per identity — what kube-apiserver's audit
//! log at `Metadata` level would tell: who did which verb on which resource, whether RBAC
//! allowed it, and the HTTP code of the answer. Tests read it to assert that a component got
//! no 403, and to list every permission a component actually used (least privilege).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use super::{RequestInfo, UserInfo};

/// One kind of request by one user (the name of the object is left out: the aggregate stays
/// as small as the set of permissions used).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditKey {
    pub user: String,
    pub verb: String,
    pub api_group: String,
    /// Empty for non-resource requests.
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    /// Non-resource requests only.
    pub path: String,
    /// Whether the authorizer allowed the request.
    pub allowed: bool,
    /// The HTTP status of the answer (the start of a watch: 200).
    pub code: u16,
}

/// One request, as recorded in the bounded recent-events log.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub key: AuditKey,
    pub groups: Vec<String>,
    pub name: String,
    /// The error message when the answer was an error.
    pub message: String,
}

/// Entries kept in the recent-events log.
const RECENT_LIMIT: usize = 20_000;

#[derive(Default)]
struct State {
    counts: BTreeMap<AuditKey, u64>,
    recent: VecDeque<AuditEvent>,
}

/// Counts per [`AuditKey`] (unbounded in time, bounded by the permissions used) and the last
/// [`RECENT_LIMIT`] requests with their error messages.
#[derive(Default)]
pub struct Audit {
    state: Mutex<State>,
}

impl Audit {
    pub fn record(&self, user: &UserInfo, req: &RequestInfo, allowed: bool, code: u16, message: &str) {
        let key = AuditKey {
            user: user.username.clone(),
            verb: req.verb.clone(),
            api_group: req.api_group.clone(),
            resource: req.resource.clone(),
            subresource: req.subresource.clone(),
            namespace: req.namespace.clone(),
            path: if req.resource_request {
                String::new()
            } else {
                req.path.clone()
            },
            allowed,
            code,
        };
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if g.recent.len() >= RECENT_LIMIT {
            g.recent.pop_front();
        }
        g.recent.push_back(AuditEvent {
            key: key.clone(),
            groups: user.groups.clone(),
            name: req.name.clone(),
            message: message.to_string(),
        });
        *g.counts.entry(key).or_insert(0) += 1;
    }

    /// Every kind of request seen so far, with how often.
    pub fn counts(&self) -> BTreeMap<AuditKey, u64> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).counts.clone()
    }

    /// The recent requests (oldest first).
    pub fn recent(&self) -> Vec<AuditEvent> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recent
            .iter()
            .cloned()
            .collect()
    }

    /// Requests of `user` answered with `code` (e.g. 403), with their messages, most recent last.
    pub fn answered(&self, user: &str, code: u16) -> Vec<AuditEvent> {
        self.recent()
            .into_iter()
            .filter(|e| e.key.user == user && e.key.code == code)
            .collect()
    }

    /// How many requests of `user` were answered with `code`.
    pub fn count_code(&self, user: &str, code: u16) -> u64 {
        self.counts()
            .iter()
            .filter(|(k, _)| k.user == user && k.code == code)
            .map(|(_, n)| n)
            .sum()
    }
}
