//! TokenRequest's endpoint (`serviceaccounts/{name}/token`): the ServiceAccount and the
//! object the token is bound to are read from the store, the token is signed by the
//! simulator's issuer (`crate::auth::token`); what the request asks is
//! `crate::auth::token_request`.
use serde_json::{json, Value};

use crate::auth::token::{now_seconds, Claims, KubernetesClaims, ObjRef, API_AUDIENCE, ISSUER};
use crate::auth::token_request::{checked_expiration, TokenSpec};
use crate::error::ApiError;
use crate::resources::ResKey;

use super::{Core, Reply};

fn key(plural: &str) -> ResKey {
    ResKey {
        group: String::new(),
        plural: plural.into(),
    }
}

impl Core {
    /// Issue a token for ServiceAccount `ns/name`: the claims and the signed token.
    pub fn issue_token(&self, ns: &str, name: &str, spec: &TokenSpec) -> Result<(Claims, String), ApiError> {
        let expiration = checked_expiration(spec)?;
        let sa = self
            .store
            .get(&key("serviceaccounts"), ns, name)
            .ok_or_else(|| ApiError::not_found("serviceaccounts", name))?;
        let (pod, node) = match &spec.bound {
            Some((kind, bname, buid)) => self.bound_refs(ns, name, kind, bname, buid)?,
            None => (None, None),
        };
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

    /// The pod (and its node) a token for ServiceAccount `name` bound to `kind` `bname` names
    /// in its claims; a Secret binding names neither. The object must exist (with `buid`, when
    /// given) and a pod must run as that ServiceAccount.
    fn bound_refs(
        &self,
        ns: &str,
        name: &str,
        kind: &str,
        bname: &str,
        buid: &str,
    ) -> Result<(Option<ObjRef>, Option<ObjRef>), ApiError> {
        let (plural, obj) = match kind {
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
        if !buid.is_empty() && buid != obj.uid {
            return Err(ApiError::conflict_message(
                format!(
                    "Operation cannot be fulfilled on {kind} {bname:?}: the UID in the bound object reference ({buid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    obj.uid
                ),
                vec![],
            ));
        }
        if kind != "Pod" {
            return Ok((None, None));
        }
        let pod = ObjRef {
            name: bname.to_string(),
            uid: obj.uid.clone(),
        };
        let node = v
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(|n| ObjRef {
                name: n.to_string(),
                uid: self
                    .store
                    .get(&key("nodes"), "", n)
                    .map(|o| o.uid.clone())
                    .unwrap_or_default(),
            });
        Ok((Some(pod), node))
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
