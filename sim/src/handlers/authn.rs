//! Authentication of a request by its bearer token, as kube-apiserver's authenticator chain:
//! a static token (the simulator's admin identities and users registered by tests), else a
//! ServiceAccount token the simulator issued — valid while it has not expired and its
//! ServiceAccount and bound pod still exist with the uids it names — else 401. A request with
//! no token is anonymous (`system:anonymous` in `system:unauthenticated`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Core;
use crate::error::ApiError;
use crate::resources::ResKey;

use crate::auth::token::{now_seconds, Claims, TokenError, API_AUDIENCE, LEEWAY_SECONDS};
use crate::auth::{unauthorized, UserInfo, AUTHENTICATED};

fn key(plural: &str) -> ResKey {
    ResKey {
        group: String::new(),
        plural: plural.into(),
    }
}

fn deleted_before(obj: &Value, limit: i64) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_some_and(|t| t.as_second() < limit)
}

impl Core {
    /// The user of a request whose `Authorization` header is `authorization`.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<UserInfo, ApiError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or("");
        if token.is_empty() {
            return Ok(UserInfo::anonymous());
        }
        if let Some(u) = self.auth.static_user(token) {
            return Ok(u);
        }
        self.token_user(token, now_seconds(), &[API_AUDIENCE.to_string()])
            .map_err(|_| unauthorized())
    }

    /// The ServiceAccount user of a token, judged at `now` for `audiences`: what TokenReview and
    /// request authentication both use. The error says why the token is not valid.
    pub fn token_user(&self, token: &str, now: i64, audiences: &[String]) -> Result<UserInfo, String> {
        let claims = self.auth.issuer.verify(token, now, audiences).map_err(|e| match e {
            TokenError::Foreign => "invalid bearer token".to_string(),
            other => other.to_string(),
        })?;
        self.check_bound_objects(&claims, now)?;
        Ok(user_of(&claims))
    }

    /// `validator.Validate`: the ServiceAccount (and the pod the token is bound to) must still
    /// exist with the same uid, and not have been deleted more than the leeway ago.
    fn check_bound_objects(&self, c: &Claims, now: i64) -> Result<(), String> {
        let k = &c.kubernetes;
        let ns = &k.namespace;
        let limit = now - LEEWAY_SECONDS;
        let sa = self
            .store
            .get(&key("serviceaccounts"), ns, &k.serviceaccount.name)
            .ok_or_else(|| format!("serviceaccounts {:?} not found", k.serviceaccount.name))?;
        if deleted_before(&sa.value(), limit) {
            return Err(format!(
                "service account {ns}/{} has been deleted",
                k.serviceaccount.name
            ));
        }
        if sa.uid != k.serviceaccount.uid {
            return Err(format!(
                "service account UID ({}) does not match claim ({})",
                sa.uid, k.serviceaccount.uid
            ));
        }
        if let Some(p) = &k.pod {
            let pod = self
                .store
                .get(&key("pods"), ns, &p.name)
                .ok_or("service account token has been invalidated")?;
            if deleted_before(&pod.value(), limit) {
                return Err("service account token has been invalidated".into());
            }
            if pod.uid != p.uid {
                return Err(format!(
                    "pod UID ({}) does not match service account pod ref claim ({})",
                    pod.uid, p.uid
                ));
            }
        }
        Ok(())
    }
}

/// The user a valid ServiceAccount token stands for (`ServiceAccountInfo.UserInfo`).
pub fn user_of(c: &Claims) -> UserInfo {
    let k = &c.kubernetes;
    let mut extra = BTreeMap::new();
    if let Some(p) = &k.pod {
        extra.insert(crate::auth::EXTRA_POD_NAME.to_string(), vec![p.name.clone()]);
        extra.insert(crate::auth::EXTRA_POD_UID.to_string(), vec![p.uid.clone()]);
    }
    if let Some(n) = &k.node {
        extra.insert(crate::auth::EXTRA_NODE_NAME.to_string(), vec![n.name.clone()]);
        if !n.uid.is_empty() {
            extra.insert(crate::auth::EXTRA_NODE_UID.to_string(), vec![n.uid.clone()]);
        }
    }
    if !c.jti.is_empty() {
        extra.insert(
            crate::auth::EXTRA_CREDENTIAL_ID.to_string(),
            vec![format!("JTI={}", c.jti)],
        );
    }
    UserInfo {
        username: format!("system:serviceaccount:{}:{}", k.namespace, k.serviceaccount.name),
        uid: k.serviceaccount.uid.clone(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", k.namespace),
            AUTHENTICATED.into(),
        ],
        extra,
    }
}
