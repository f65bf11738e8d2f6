//! `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token` (TokenRequest), as kube-apiserver's
//! `TokenREST`: a token for the ServiceAccount, optionally bound to a Pod (its claims then name
//! the pod and its node, and the token dies with the pod) or a Secret, for the requested
//! audiences (default: the API server's) and lifetime (default 1 h, at least 10 min).

use serde_json::{json, Value};

use crate::api::{Core, Reply};
use crate::error::{ApiError, StatusCause};
use crate::resources::ResKey;

use super::authn::now_seconds;
use super::token::{Claims, KubernetesClaims, ObjRef, API_AUDIENCE, ISSUER};

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

fn key(plural: &str) -> ResKey {
    ResKey {
        group: String::new(),
        plural: plural.into(),
    }
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

impl Core {
    /// Issue a token for ServiceAccount `ns/name`: the claims and the signed token.
    pub fn issue_token(&self, ns: &str, name: &str, spec: &TokenSpec) -> Result<(Claims, String), ApiError> {
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
        let sa = self
            .store
            .get(&key("serviceaccounts"), ns, name)
            .ok_or_else(|| ApiError::not_found("serviceaccounts", name))?;
        let (mut pod, mut node) = (None, None);
        if let Some((kind, bname, buid)) = &spec.bound {
            let (plural, obj) = match kind.as_str() {
                "Pod" => ("pods", self.store.get(&key("pods"), ns, bname)),
                "Secret" => ("secrets", self.store.get(&key("secrets"), ns, bname)),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token to object of type {other}"
                    )))
                }
            };
            let obj = obj.ok_or_else(|| ApiError::not_found(plural, bname))?;
            let v = obj.value();
            if kind == "Pod" {
                let pod_sa = v
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                if pod_sa != name {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount {name:?} to pod running with serviceaccount {pod_sa:?}"
                    )));
                }
            }
            if !buid.is_empty() && buid != &obj.uid {
                return Err(ApiError::conflict_message(
                    format!(
                        "Operation cannot be fulfilled on {kind} {bname:?}: the UID in the bound object reference ({buid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                        obj.uid
                    ),
                    vec![],
                ));
            }
            if kind == "Pod" {
                pod = Some(ObjRef {
                    name: bname.clone(),
                    uid: obj.uid.clone(),
                });
                if let Some(n) = v
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                {
                    let uid = self
                        .store
                        .get(&key("nodes"), "", n)
                        .map(|o| o.uid.clone())
                        .unwrap_or_default();
                    node = Some(ObjRef {
                        name: n.to_string(),
                        uid,
                    });
                }
            }
        }
        let now = now_seconds();
        let audiences = if spec.audiences.is_empty() {
            vec![API_AUDIENCE.to_string()]
        } else {
            spec.audiences.clone()
        };
        let claims = Claims {
            aud: audiences,
            exp: now + expiration,
            iat: now,
            iss: ISSUER.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: KubernetesClaims {
                namespace: ns.to_string(),
                serviceaccount: ObjRef {
                    name: name.to_string(),
                    uid: sa.uid.clone(),
                },
                pod,
                node,
            },
            nbf: now,
            sub: format!("system:serviceaccount:{ns}:{name}"),
        };
        let token = self.auth.issuer.sign(&claims);
        Ok((claims, token))
    }

    /// The TokenRequest API: 201 with `status.token` and `status.expirationTimestamp`.
    pub fn token_request(&self, ns: &str, name: &str, body: &Value) -> Result<Reply, ApiError> {
        if let Some(kind) = body.get("kind").and_then(Value::as_str) {
            if kind != "TokenRequest" {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({kind}) does not match the expected kind (TokenRequest)"
                )));
            }
        }
        let spec = TokenSpec::from_json(body);
        let (claims, token) = self.issue_token(ns, name, &spec)?;
        let expires = jiff::Timestamp::from_second(claims.exp)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let mut out_spec = json!({"audiences": claims.aud, "expirationSeconds": claims.exp - claims.iat});
        if let (Some(b), Some(o)) = (body.pointer("/spec/boundObjectRef"), out_spec.as_object_mut()) {
            o.insert("boundObjectRef".into(), b.clone());
        }
        Ok(Reply {
            code: 201,
            body: json!({
                "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
                "spec": out_spec,
                "status": {"token": token, "expirationTimestamp": expires}
            }),
            warnings: vec![],
        })
    }
}
