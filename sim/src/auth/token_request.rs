//! What a `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token` (TokenRequest) asks, as
//! kube-apiserver's `TokenREST` reads it (the endpoint is `crate::handlers`'s): a token for the
//! ServiceAccount, optionally bound to a Pod (its claims then name
//! the pod and its node, and the token dies with the pod) or a Secret, for the requested
//! audiences (default: the API server's) and lifetime (default 1 h, at least 10 min).

use serde_json::Value;

use crate::error::{ApiError, StatusCause};

/// `MinTokenAgeSec` and `MaxTokenAgeSec` of the TokenRequest validation.
const MIN_EXPIRATION: i64 = 10 * 60;
const MAX_EXPIRATION: i64 = 1 << 32;
const DEFAULT_EXPIRATION: i64 = 3600;

/// What a token is bound to, besides its ServiceAccount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSpec {
    pub audiences: Vec<String>,
    pub expiration_seconds: Option<i64>,
    /// (kind, name, uid) of a `Pod` or `Secret`.
    pub bound: Option<(String, String, String)>,
}

fn invalid(field: &str, value: i64, message: &str) -> ApiError {
    ApiError::invalid(
        "TokenRequest",
        "authentication.k8s.io",
        "",
        vec![StatusCause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {value}: {message}"),
            field: field.into(),
        }],
    )
}

/// The requested lifetime (default 1 h), within the TokenRequest validation's bounds.
pub(crate) fn checked_expiration(spec: &TokenSpec) -> Result<i64, ApiError> {
    let expiration = spec.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION);
    if expiration < MIN_EXPIRATION {
        return Err(invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION {
        return Err(invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    Ok(expiration)
}

impl TokenSpec {
    /// The spec of a TokenRequest body.
    pub fn from_json(body: &Value) -> TokenSpec {
        let spec = body.get("spec").cloned().unwrap_or(Value::Null);
        let bound = spec.get("boundObjectRef").map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (s("kind"), s("name"), s("uid"))
        });
        TokenSpec {
            audiences: spec
                .get("audiences")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            expiration_seconds: spec.get("expirationSeconds").and_then(Value::as_i64),
            bound,
        }
    }
}
