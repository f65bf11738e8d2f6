//! A sink's Secret: read (a `get`, remembered for [`SECRET_TTL`]) and parsed into a URL and
//! headers. What is wrong with it is a [`SinkError`], said in words for condition
//! `NotificationsReady`.
use super::error::SecretsNotRead;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, Uri};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::SinkError;
use crate::api::notifications::secret_keys;

/// How long a Secret read is trusted: a fixed or rotated Secret is seen this long after at the
/// latest (a Rollout with a broken sink is reconciled again after it).
pub const SECRET_TTL: Duration = Duration::from_secs(10);

/// A usable sink.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub url: Uri,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The sink in Secret `ns/name` (its data as stored), or what is wrong with it.
pub fn parse(ns: &str, name: &str, secret: &Secret) -> Result<Target, SinkError> {
    let (ns, name) = (ns.to_string(), name.to_string());
    let data = secret.data.as_ref();
    let value = |key: &str| data.and_then(|d| d.get(key)).map(|b| b.0.as_slice());
    let Some(url) = value(secret_keys::URL) else {
        return Err(SinkError::NoUrl { ns, name });
    };
    let Ok(url) = std::str::from_utf8(url) else {
        return Err(SinkError::UrlNotText { ns, name });
    };
    let url = url.trim().to_string();
    let uri: Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            let source = Arc::new(e);
            return Err(SinkError::NotAUrl { ns, name, url, source });
        }
    };
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(SinkError::NotHttp { ns, name, url });
    }
    let headers = match value(secret_keys::HEADERS).map(parse_headers) {
        None => Vec::new(),
        Some(Ok(h)) => h,
        Some(Err(why)) => return Err(SinkError::BadHeaders { ns, name, why }),
    };
    Ok(Target { url: uri, headers })
}

fn parse_headers(raw: &[u8]) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(raw).map_err(|_| "not a JSON object of strings".to_string())?;
    let mut out = Vec::new();
    for (k, v) in map {
        let v = v.as_str().ok_or_else(|| format!("header {k:?} is not a string"))?;
        let name = HeaderName::try_from(k.as_str()).map_err(|_| format!("{k:?} is not a header name"))?;
        let value = HeaderValue::try_from(v).map_err(|_| format!("the value of {k:?} is not a header value"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// Whether the controller may read Secrets of a namespace (what its flags and RBAC allow), and
/// why not (the words of [`SinkError::NotReadable`]).
pub type SecretsReadable = std::sync::Arc<dyn Fn(&str) -> Result<(), SecretsNotRead> + Send + Sync>;

/// Each Secret (namespace, name) as last read: when, and what it said.
type Reads = HashMap<(String, String), (Instant, Result<Target, SinkError>)>;

/// Secret reads, remembered for [`SECRET_TTL`].
pub struct Sinks {
    client: kube::Client,
    access: SecretsReadable,
    cache: Mutex<Reads>,
}

impl Sinks {
    pub fn new(client: kube::Client, access: SecretsReadable) -> Self {
        Sinks {
            client,
            access,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The sink in Secret `ns/name`, read at most every [`SECRET_TTL`].
    pub async fn resolve(&self, ns: &str, name: &str) -> Result<Target, SinkError> {
        let key = (ns.to_string(), name.to_string());
        let cached = self.lock().get(&key).cloned();
        if let Some((at, r)) = &cached {
            if at.elapsed() < SECRET_TTL {
                return r.clone();
            }
        }
        let r = match self.readable(ns) {
            Err(why) => Ok(Err(SinkError::NotReadable {
                ns: ns.to_string(),
                name: name.to_string(),
                why,
            })),
            Ok(()) => self.read(ns, name).await,
        };
        let r = match (r, cached) {
            // An API error says nothing about the Secret: keep what was read last.
            (Err(Transient(_)), Some((_, last))) => last,
            (Err(Transient(why)), None) => Err(why),
            (Ok(r), _) => r,
        };
        self.lock().insert(key, (Instant::now(), r.clone()));
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May the controller read Secrets of `ns` (`--read-secrets`, `--secret-namespaces`)?
    fn readable(&self, ns: &str) -> Result<(), SecretsNotRead> {
        (self.access)(ns)
    }

    /// Ok: the answer about the Secret (a parsed sink or what is wrong); Err: no answer.
    async fn read(&self, ns: &str, name: &str) -> Result<Result<Target, SinkError>, Transient> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let e = match api.get(name).await {
            Ok(s) => return Ok(parse(ns, name, &s)),
            Err(e) => e,
        };
        let (ns, name) = (ns.to_string(), name.to_string());
        match e {
            kube::Error::Api(s) if s.code == 404 => Ok(Err(SinkError::Missing { ns, name })),
            kube::Error::Api(s) if s.code == 403 => Ok(Err(SinkError::Forbidden {
                ns,
                name,
                message: s.message,
            })),
            e => Err(Transient(SinkError::Unreachable {
                ns,
                name,
                source: Arc::new(e),
            })),
        }
    }
}

/// A read that failed for a reason other than the Secret (API server unreachable, 5xx).
struct Transient(SinkError);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn urls_and_headers_are_checked() {
        let ok = parse(
            "ns",
            "hook",
            &secret(&[
                ("url", "http://example.com/x "),
                ("headers", r#"{"Authorization":"Bearer t"}"#),
            ]),
        )
        .unwrap();
        assert_eq!(ok.url.to_string(), "http://example.com/x");
        assert_eq!(ok.headers[0].0.as_str(), "authorization");
        let err = |pairs: &[(&str, &str)]| parse("ns", "hook", &secret(pairs)).unwrap_err().to_string();
        assert_eq!(err(&[]), "Secret ns/hook has no key \"url\"");
        assert!(
            err(&[("url", "not a url")]).contains("is not a URL"),
            "{}",
            err(&[("url", "not a url")])
        );
        assert!(err(&[("url", "ftp://h/x")]).contains("not an http:// or https:// URL"));
        assert!(err(&[("url", "/relative")]).contains("not an http:// or https:// URL"));
        assert!(err(&[("url", "http://h/"), ("headers", "[1]")]).contains("key headers: not a JSON object"));
        assert!(err(&[("url", "http://h/"), ("headers", r#"{"a":1}"#)]).contains("\"a\" is not a string"));
        assert!(err(&[("url", "http://h/"), ("headers", r#"{"a b":"c"}"#)]).contains("not a header name"));
    }
}
