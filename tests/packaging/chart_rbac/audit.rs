//! What the API server answered each identity, from its audit: baton-sim's (every request) or
//! kube-apiserver's audit log (`<dir>/logs/audit.log`; its policy records writes only, with the
//! message of every refusal), from where the test started.
use std::collections::BTreeMap;

use super::harness::Cluster;
use crate::world::Backend;

/// One answered request.
#[derive(Clone, Debug)]
pub struct Answer {
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub code: u16,
    pub message: String,
}

/// The lines of kube-apiserver's audit log after byte `from`, as answers.
pub fn audit_log(dir: &std::path::Path, from: u64) -> Vec<Answer> {
    let text = std::fs::read(dir.join("logs").join("audit.log")).unwrap_or_default();
    let start = usize::try_from(from).unwrap_or(0).min(text.len());
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    String::from_utf8_lossy(&text[start..])
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| Answer {
            user: s(&v["user"]["username"]),
            verb: s(&v["verb"]),
            resource: s(&v["objectRef"]["resource"]),
            code: v["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
            message: s(&v["responseStatus"]["message"]),
        })
        .collect()
}

impl Cluster {
    /// Every request the API server answered since the test started, oldest first: all of them on
    /// baton-sim (its recent ones), the writes on the real control plane.
    pub fn answers(&self) -> Vec<Answer> {
        match &self.w.backend {
            Backend::Sim(s) => s
                .core
                .auth
                .audit
                .recent()
                .into_iter()
                .map(|e| Answer {
                    user: e.key.user,
                    verb: e.key.verb,
                    resource: e.key.resource,
                    code: e.key.code,
                    message: e.message,
                })
                .collect(),
            Backend::Real(r) => audit_log(&r.dir(), self.audit_from),
        }
    }

    /// `user`'s requests answered with one of `codes`: (code, message), oldest first.
    pub fn refused(&self, user: &str, codes: &[u16]) -> Vec<(u16, String)> {
        self.answers()
            .into_iter()
            .filter(|a| a.user == user && codes.contains(&a.code))
            .map(|a| (a.code, a.message))
            .collect()
    }

    /// How many writes (create, update, patch) `user` sent, by answer code.
    pub fn writes(&self, user: &str) -> BTreeMap<u16, u64> {
        let mut out = BTreeMap::new();
        let write = |verb: &str| matches!(verb, "update" | "patch" | "create");
        match &self.w.backend {
            Backend::Sim(s) => {
                for (k, n) in s.core.auth.audit.counts() {
                    if k.user == user && write(&k.verb) {
                        *out.entry(k.code).or_default() += n;
                    }
                }
            }
            Backend::Real(_) => {
                for a in self.answers().into_iter().filter(|a| a.user == user && write(&a.verb)) {
                    *out.entry(a.code).or_default() += 1;
                }
            }
        }
        out
    }
}
