//! The listeners' configs. A listener's Lease names the Secret key its config lives in and,
//! from a controller that read it, the Secret's `resourceVersion` the assignment was resolved
//! from. Each Secret is read once for every listener it configures (500 listeners acknowledged
//! at once read their Secret once, not 500 times), and its copy is kept for the next ones
//! ([`Kept::answers`] says when it may be used).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::GetParams;
use kube::Resource;
use tokio::time::Instant;

use super::ops::classify;
use super::state::OpError;
use baton_api::listenerset::lease::{config_of, config_version_of};

/// How long a copy of a Secret is used, when the Lease names no version, before it is read again.
const CONFIG_TTL: Duration = Duration::from_secs(10);
/// A key missing from a copy is looked for again at most this often.
const MISS_RETRY: Duration = Duration::from_secs(1);
/// Versions a copy is known to be newer than, at most (then forgotten: a Lease naming one of them
/// costs a read).
const PAST_KEPT: usize = 64;

/// The listeners' configs of the pods of one namespace (see the module).
#[derive(Clone)]
pub(super) struct Configs {
    client: kube::Client,
    /// The Secrets' URL (the pod's namespace).
    url: String,
    cache: Arc<tokio::sync::Mutex<HashMap<String, Slot>>>,
}

/// What is kept of a config Secret: its `resourceVersion` and its data, each value as sent
/// (base64), decoded when a listener's config is looked up. The rest of the object (its
/// `managedFields` above all) is skipped while decoding, not built: one Secret configures every
/// listener of a set, so at 10,000 listeners it is ~0.8 MB.
#[derive(Default, serde::Deserialize)]
struct SecretData {
    #[serde(default)]
    metadata: SecretMeta,
    data: Option<BTreeMap<String, String>>,
}

/// The one field of a Secret's metadata kept.
#[derive(Default, serde::Deserialize)]
struct SecretMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: Option<String>,
}

impl SecretData {
    /// The value of `key`: `None` if it has none, an error if it is not base64.
    fn value(&self, key: &str) -> Option<Result<Vec<u8>, base64::DecodeError>> {
        use base64::Engine;
        let encoded = self.data.as_ref()?.get(key)?;
        Some(base64::engine::general_purpose::STANDARD.decode(encoded))
    }
}

/// A copy of a Secret: when it was read, what, and the versions it is known to be newer than.
struct Kept {
    read_at: Instant,
    data: SecretData,
    past: HashSet<String>,
}

impl Kept {
    /// Whether this copy answers a lookup of `key` now for a Lease whose config was resolved
    /// from version `wanted` of the Secret (`None`: its controller does not say).
    ///
    /// * The version the Lease names, or one this copy is known to be newer than: yes, however
    ///   old the copy (a Secret of 10,000 keys is ~0.8 MB, and every agent given a listener of it
    ///   would read it again every [`CONFIG_TTL`]).
    /// * Another version: no. The Secret changed since the copy was read; the read that follows
    ///   is newer than the version named (the Lease was written before it), which is remembered.
    /// * No version: the copy's age decides, [`CONFIG_TTL`] (and [`MISS_RETRY`] for a key it
    ///   lacks).
    fn answers(&self, now: Instant, key: &str, wanted: Option<&str>) -> bool {
        if let Some(w) = wanted {
            return self.data.metadata.resource_version.as_deref() == Some(w) || self.past.contains(w);
        }
        let age = now.saturating_duration_since(self.read_at);
        age < CONFIG_TTL && (age < MISS_RETRY || self.data.value(key).is_some())
    }

    /// A copy read at `read_at` to answer a Lease naming version `wanted`, after `before`. It is
    /// newer than `wanted` (written before this read) and than every version `before` was.
    fn after(before: Option<Kept>, read_at: Instant, data: SecretData, wanted: Option<&str>) -> Kept {
        let (mut past, before) = match before {
            Some(c) => (c.past, c.data.metadata.resource_version),
            None => (HashSet::new(), None),
        };
        if past.len() >= PAST_KEPT {
            past.clear();
        }
        let now = data.metadata.resource_version.as_deref();
        for v in [wanted.map(str::to_string), before].into_iter().flatten() {
            if Some(v.as_str()) != now {
                past.insert(v);
            }
        }
        Kept { read_at, data, past }
    }
}

/// One Secret's copy, read by one request at a time.
type Slot = Arc<tokio::sync::Mutex<Option<Kept>>>;

impl Configs {
    /// The configs of the listeners of pods in `namespace`.
    pub(super) fn new(client: kube::Client, namespace: &str) -> Self {
        Configs {
            client,
            url: Secret::url_path(&(), Some(namespace)),
            cache: Arc::default(),
        }
    }

    /// Read Secret `name`'s data.
    async fn get(&self, name: &str) -> Result<SecretData, OpError> {
        let request = kube::core::Request::new(&self.url)
            .get(name, &GetParams::default())
            .map_err(|e| OpError::Other(e.to_string()))?;
        self.client.request(request).await.map_err(|e| classify(e, false))
    }

    /// The value of the Secret key the controller named in the Lease's config annotation.
    pub(super) async fn read(&self, l: &Lease) -> Result<Option<String>, OpError> {
        let (secret, key) = match config_of(l) {
            None => return Ok(None),
            Some(Ok(at)) => at,
            Some(Err(value)) => {
                return Err(OpError::Other(format!(
                    "config annotation {value:?} is not <secret>/<key>"
                )));
            }
        };
        let wanted = config_version_of(l);
        let slot = self.cache.lock().await.entry(secret.to_string()).or_default().clone();
        // One read at a time per Secret: the others wait for it and use its copy.
        let mut cached = slot.lock().await;
        let now = Instant::now();
        if !cached.as_ref().is_some_and(|c| c.answers(now, key, wanted)) {
            let data = self.get(secret).await?;
            *cached = Some(Kept::after(cached.take(), now, data, wanted));
        }
        match cached.as_ref().and_then(|c| c.data.value(key)) {
            Some(Ok(v)) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            Some(Err(e)) => Err(OpError::Other(format!(
                "Secret {secret} key {key:?} is not base64: {e}"
            ))),
            None => Err(OpError::Other(format!("Secret {secret} has no key {key:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Secret as the API server answers it: data base64-encoded, beside metadata and
    /// `managedFields` that are skipped.
    fn secret_json(data: &str) -> String {
        format!(
            r#"{{"kind":"Secret","apiVersion":"v1","metadata":{{"name":"cfg","namespace":"ns",
            "resourceVersion":"41",
            "managedFields":[{{"manager":"kubectl","operation":"Apply","fieldsType":"FieldsV1",
            "fieldsV1":{{"f:data":{{"f:a":{{}}}}}}}}]}},{data}"type":"Opaque"}}"#
        )
    }

    #[test]
    fn a_config_secret_is_read_for_its_version_and_data_alone() {
        let json = secret_json(r#""data":{"a":"aGVsbG8=","b":"","c":"not base64!"},"#);
        let read: SecretData = serde_json::from_str(&json).unwrap();
        assert_eq!(read.metadata.resource_version.as_deref(), Some("41"));
        assert_eq!(read.value("a").unwrap().unwrap(), b"hello");
        assert_eq!(read.value("b").unwrap().unwrap(), b"");
        // A bad value spoils its own key only.
        assert!(read.value("c").unwrap().is_err());
        assert!(read.value("d").is_none());
        for empty in ["", r#""data":null,"#] {
            let read: SecretData = serde_json::from_str(&secret_json(empty)).unwrap();
            assert!(read.value("a").is_none(), "{empty}");
        }
    }

    /// A Secret at version `version` with key `a`.
    fn copy(version: &str) -> SecretData {
        SecretData {
            metadata: SecretMeta {
                resource_version: Some(version.into()),
            },
            data: Some(BTreeMap::from([("a".into(), "aGVsbG8=".into())])),
        }
    }

    #[test]
    fn a_copy_at_the_version_the_lease_names_is_used_however_old() {
        let t0 = Instant::now();
        let c = Kept::after(None, t0, copy("7"), Some("7"));
        let later = t0 + CONFIG_TTL * 100;
        assert!(c.answers(later, "a", Some("7")));
        // Another version: the Secret changed since the copy was read.
        assert!(!c.answers(t0, "a", Some("8")));
        // Without a version the copy's age decides.
        assert!(c.answers(t0 + CONFIG_TTL - Duration::from_millis(1), "a", None));
        assert!(!c.answers(t0 + CONFIG_TTL, "a", None));
        // A key the copy lacks is looked for again after MISS_RETRY.
        assert!(c.answers(t0, "b", None));
        assert!(!c.answers(t0 + MISS_RETRY, "b", None));
    }

    #[test]
    fn a_copy_read_for_an_older_version_answers_it_from_then_on() {
        let t0 = Instant::now();
        let first = Kept::after(None, t0, copy("7"), Some("7"));
        assert!(!first.answers(t0, "a", Some("5")));
        // Read again for a Lease naming version 5: the read shows 7, which is newer than 5.
        let second = Kept::after(Some(first), t0, copy("7"), Some("5"));
        assert!(second.answers(t0 + CONFIG_TTL * 10, "a", Some("5")));
        assert!(second.answers(t0 + CONFIG_TTL * 10, "a", Some("7")));
        // A later read is newer than the copies before it and what they had passed.
        let third = Kept::after(Some(second), t0, copy("9"), Some("9"));
        assert!(third.answers(t0, "a", Some("5")));
        assert!(third.answers(t0, "a", Some("7")));
        assert!(!third.answers(t0, "a", Some("10")));
    }
}
