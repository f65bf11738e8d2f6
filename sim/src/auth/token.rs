//! ServiceAccount tokens: JWTs signed by the simulator (ES256 with a key made at start), with
//! the claims kube-apiserver's issuer puts in them (`pkg/serviceaccount/claims.go`): issuer,
//! subject `system:serviceaccount:<ns>:<name>`, audiences, expiry, and under `kubernetes.io`
//! the namespace, the ServiceAccount and — for tokens bound to a pod — the pod and its node.
//! Verification checks the signature, the expiry (with go-jose's one-minute leeway) and the
//! audience; the caller then checks that the ServiceAccount and the pod still exist.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// Unix seconds now.
pub fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The API server's own audience and issuer (kubeadm's and kind's default).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// go-jose's `DefaultLeeway`: expiry and deletion are judged one minute late.
pub const LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub serviceaccount: ObjRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjRef>,
}

/// The claims of a ServiceAccount token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    pub nbf: i64,
    pub sub: String,
}

/// Why a token was not accepted (kube's validator words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a token this server issued")]
    Foreign,
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("token audiences {0:?} is invalid for the target audiences {1:?}")]
    Audience(Vec<String>, Vec<String>),
}

/// Signs and verifies the simulator's tokens.
pub struct Issuer {
    key: EcdsaKeyPair,
    public: Vec<u8>,
    kid: String,
    rng: SystemRandom,
}

impl Issuer {
    /// A fresh signing key.
    pub fn new() -> Issuer {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        // Key generation and parsing of a key just generated only fail if the platform has no
        // randomness, in which case nothing in the simulator works.
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generating the token signing key");
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("loading the token signing key");
        let public = key.public_key().as_ref().to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA256, &public);
        let kid = B64.encode(&digest.as_ref()[..16]);
        Issuer { key, public, kid, rng }
    }

    /// A signed JWT carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = serde_json::json!({"alg": "ES256", "kid": self.kid});
        let body = serde_json::to_vec(claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&header).unwrap_or_default()),
            B64.encode(body)
        );
        match self.key.sign(&self.rng, signing_input.as_bytes()) {
            Ok(sig) => format!("{signing_input}.{}", B64.encode(sig.as_ref())),
            // Signing fails only without randomness; such a token is refused like any bad one.
            Err(_) => signing_input,
        }
    }

    /// The claims of a token this issuer signed, if it is one and has not expired at `now`
    /// (unix seconds) and names one of `audiences`.
    pub fn verify(&self, token: &str, now: i64, audiences: &[String]) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(b), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Foreign);
        };
        let sig = B64.decode(s).map_err(|_| TokenError::Foreign)?;
        let signed = &token[..h.len() + 1 + b.len()];
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(signed.as_bytes(), &sig)
            .map_err(|_| TokenError::Foreign)?;
        let claims: Claims = B64
            .decode(b)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or(TokenError::Foreign)?;
        if now > claims.exp + LEEWAY_SECONDS {
            return Err(TokenError::Expired);
        }
        if now + LEEWAY_SECONDS < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        if !claims.aud.iter().any(|a| audiences.contains(a)) {
            return Err(TokenError::Audience(claims.aud.clone(), audiences.to_vec()));
        }
        Ok(claims)
    }
}

impl Default for Issuer {
    fn default() -> Self {
        Issuer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            aud: vec![API_AUDIENCE.into()],
            exp: now + 600,
            iat: now,
            iss: ISSUER.into(),
            jti: "j".into(),
            kubernetes: KubernetesClaims {
                namespace: "ns".into(),
                serviceaccount: ObjRef {
                    name: "sa".into(),
                    uid: "u".into(),
                },
                pod: Some(ObjRef {
                    name: "p".into(),
                    uid: "pu".into(),
                }),
                node: None,
            },
            nbf: now,
            sub: "system:serviceaccount:ns:sa".into(),
        }
    }

    #[test]
    fn signed_tokens_verify_until_they_expire() {
        let issuer = Issuer::new();
        let now = 1_800_000_000;
        let c = claims(now);
        let t = issuer.sign(&c);
        assert_eq!(t.split('.').count(), 3);
        let aud = vec![API_AUDIENCE.to_string()];
        assert_eq!(issuer.verify(&t, now, &aud), Ok(c.clone()));
        // go-jose's leeway: still valid a minute after exp, not after.
        assert!(issuer.verify(&t, now + 600 + 60, &aud).is_ok());
        assert_eq!(issuer.verify(&t, now + 600 + 61, &aud), Err(TokenError::Expired));
        assert!(matches!(
            issuer.verify(&t, now, &["api".to_string()]),
            Err(TokenError::Audience(..))
        ));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let issuer = Issuer::new();
        let now = 1_800_000_000;
        let t = issuer.sign(&claims(now));
        let aud = vec![API_AUDIENCE.to_string()];
        let mut forged = claims(now);
        forged.kubernetes.pod = Some(ObjRef {
            name: "other".into(),
            uid: "other-uid".into(),
        });
        let body = B64.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], body, parts[2]);
        assert_eq!(issuer.verify(&tampered, now, &aud), Err(TokenError::Foreign));
        assert_eq!(Issuer::new().verify(&t, now, &aud), Err(TokenError::Foreign));
        assert_eq!(issuer.verify("sim-admin", now, &aud), Err(TokenError::Foreign));
    }
}
