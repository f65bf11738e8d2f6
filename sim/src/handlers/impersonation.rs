//! Impersonation (`kubectl --as`, `--as-group`, `--as-uid`; the `Impersonate-*` headers), as
//! kube-apiserver's `WithImpersonation` filter: each impersonated user, ServiceAccount, group,
//! extra and uid must be authorized with the verb `impersonate` for the requesting user; the
//! request then runs as the impersonated user (in `system:authenticated`).

use std::collections::BTreeMap;

use http::HeaderMap;

use super::Core;
use crate::error::ApiError;

use crate::auth::{forbidden, RequestInfo, UserInfo, AUTHENTICATED};

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// Whether a request asks to impersonate anyone.
pub fn requested(headers: &HeaderMap) -> bool {
    headers.keys().any(|k| k.as_str().starts_with("impersonate-"))
}

/// `%XX` escapes in an `Impersonate-Extra-` key.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(x) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One thing to impersonate, as the attributes the requester needs `impersonate` on.
fn attributes(group: &str, resource: &str, sub: &str, namespace: &str, name: &str) -> RequestInfo {
    RequestInfo {
        resource_request: true,
        verb: "impersonate".into(),
        api_group: group.into(),
        api_version: "v1".into(),
        namespace: namespace.into(),
        resource: resource.into(),
        subresource: sub.into(),
        name: name.into(),
        ..RequestInfo::default()
    }
}

impl Core {
    /// The user a request acts as: `requester`, or whom its `Impersonate-*` headers name if
    /// the requester may impersonate them (403 otherwise, 400 for groups without a user).
    pub fn impersonate(&self, requester: UserInfo, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
        let user = values(headers, "impersonate-user");
        let groups = values(headers, "impersonate-group");
        let uid = values(headers, "impersonate-uid");
        let extras: Vec<(String, &str)> = headers
            .iter()
            .filter_map(|(k, v)| {
                let key = k.as_str().strip_prefix("impersonate-extra-")?;
                Some((unescape(key).to_ascii_lowercase(), v.to_str().ok()?))
            })
            .collect();
        if user.is_empty() {
            if groups.is_empty() && uid.is_empty() && extras.is_empty() {
                return Ok(requester);
            }
            return Err(ApiError::bad_request(
                "requested impersonation of groups, extra or uid without impersonating a user",
            ));
        }
        let name = user[0].to_string();
        let mut checks = Vec::new();
        let mut out = UserInfo {
            username: name.clone(),
            ..UserInfo::default()
        };
        let sa = name
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'));
        match sa {
            Some((ns, sa_name)) => {
                checks.push(attributes("", "serviceaccounts", "", ns, sa_name));
                if groups.is_empty() {
                    out.groups = vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{ns}")];
                }
            }
            None => checks.push(attributes("", "users", "", "", &name)),
        }
        for g in &groups {
            checks.push(attributes("", "groups", "", "", g));
            out.groups.push(g.to_string());
        }
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &extras {
            checks.push(attributes("authentication.k8s.io", "userextras", k, "", v));
            extra.entry(k.clone()).or_default().push(v.to_string());
        }
        out.extra = extra;
        if let Some(u) = uid.first() {
            checks.push(attributes("authentication.k8s.io", "uids", "", "", u));
            out.uid = u.to_string();
        }
        for c in &checks {
            let d = self.authorize(&requester, c);
            if !d.allowed {
                return Err(forbidden(&requester, c, &d.reason));
            }
        }
        if !out.in_group(AUTHENTICATED) {
            out.groups.push(AUTHENTICATED.into());
        }
        Ok(out)
    }
}
