//! The agent's API requests: one conditional write (acknowledge, renew, release) or read of a
//! listener Lease, or of its pod's liveness Lease (register, renew, read), as decided by
//! [`State`](super::state::State), performed here and reported back; and the listeners' configs,
//! read through a small cache of the Secrets that hold them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, GetParams, Patch, PatchParams};
use kube::Resource;
use serde_json::json;
use tokio::time::Instant;

use super::state::{LiveOp, LiveResult, OpError, OpKind, OpResult};
use baton_api::listenerset::lease::config_of;
use baton_api::listenerset::liveness::LEAVING_ANNOTATION;

/// A finished request on a listener Lease, for [`State::on_op`](super::state::State::on_op).
pub(super) struct OpDone {
    pub(super) name: String,
    /// The tracking of the Lease that asked (see [`State::answered`](super::state::State::answered)).
    pub(super) tracking: u64,
    pub(super) kind: OpKind,
    pub(super) result: OpResult,
}

/// A finished request on the liveness Lease.
pub(super) struct LiveDone {
    pub(super) kind: LiveOp,
    pub(super) result: LiveResult,
}

/// Where the requests go.
#[derive(Clone)]
pub(super) struct Apis {
    pub(super) leases: Api<Lease>,
    pub(super) configs: Configs,
    pub(super) timeout: Duration,
    pub(super) pod: String,
}

fn classify(e: kube::Error, not_found_is_gone: bool) -> OpError {
    if is_status(&e, 409) {
        OpError::Conflict
    } else if is_status(&e, 404) && not_found_is_gone {
        OpError::NotFound
    } else if is_status(&e, 403) || is_status(&e, 422) {
        OpError::Refused(e.to_string())
    } else {
        OpError::Other(e.to_string())
    }
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// The resourceVersion a write is conditional on: without it the write would not be.
fn condition_of(lease: &Lease) -> Result<String, OpError> {
    lease
        .metadata
        .resource_version
        .clone()
        .ok_or_else(|| OpError::Other("the Lease read has no resourceVersion".into()))
}

/// A merge patch conditional on the resourceVersion: 409 if the Lease changed, 404 if it is gone.
/// Never a PUT: of a missing Lease a PUT creates one (Leases allow create on update), and an
/// agent must never bring back a Lease that was deleted.
async fn patch(api: &Api<Lease>, name: &str, body: serde_json::Value) -> Result<Lease, OpError> {
    let mut l = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map_err(|e| classify(e, true))?;
    // Kept per Lease held: what the API server's field tracking says is of no use here.
    l.metadata.managed_fields = None;
    Ok(l)
}

/// Perform `kind` on listener Lease `name`, based on `lease`.
pub(super) fn perform(
    apis: Apis,
    (name, tracking): (String, u64),
    kind: OpKind,
    lease: Lease,
) -> BoxFuture<'static, OpDone> {
    async move {
        let work = async {
            match kind {
                OpKind::Ack => {
                    // The config first: a listener is acknowledged only once it can be started.
                    let config = apis.configs.read(&lease).await?;
                    let body = json!({
                        "metadata": {"resourceVersion": condition_of(&lease)?},
                        "spec": {"renewTime": now_micro()},
                    });
                    Ok((Some(patch(&apis.leases, &name, body).await?), config))
                }
                OpKind::Renew => {
                    let body = json!({
                        "metadata": {"resourceVersion": condition_of(&lease)?},
                        "spec": {"renewTime": now_micro()},
                    });
                    Ok((Some(patch(&apis.leases, &name, body).await?), None))
                }
                OpKind::Release => {
                    // A released Lease belongs to no pod: without the ownerReference the
                    // garbage collector does not delete it when the pod goes, so the controller
                    // hands it over (same Lease, next token) instead of recreating it.
                    let owners: Vec<_> = lease
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .filter(|o| !(o.kind == "Pod" && o.api_version == "v1"))
                        .cloned()
                        .collect();
                    let body = json!({
                        "metadata": {
                            "resourceVersion": condition_of(&lease)?,
                            "ownerReferences": (!owners.is_empty()).then_some(owners),
                        },
                        "spec": {"holderIdentity": null},
                    });
                    Ok((Some(patch(&apis.leases, &name, body).await?), None))
                }
                OpKind::Read => match apis.leases.get_opt(&name).await {
                    Ok(l) => Ok((l, None)),
                    Err(e) => Err(OpError::Other(e.to_string())),
                },
            }
        };
        let result = match tokio::time::timeout(apis.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(OpError::Other("request timed out".into())),
        };
        OpDone {
            name,
            tracking,
            kind,
            result,
        }
    }
    .boxed()
}

/// Perform `kind` on the liveness Lease, based on `lease`, for listeners of `duration_seconds`;
/// with `leaving`, the write marks the registration leaving (the agent shuts down), and a
/// registration without it removes an earlier incarnation's mark.
pub(super) fn perform_live(
    apis: Apis,
    kind: LiveOp,
    lease: Lease,
    duration_seconds: i32,
    leaving: bool,
) -> BoxFuture<'static, LiveDone> {
    async move {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let mark = |now: &MicroTime| -> serde_json::Value {
            match (leaving, kind) {
                (true, _) => json!({LEAVING_ANNOTATION: now}),
                (false, LiveOp::Register) => json!({LEAVING_ANNOTATION: null}),
                (false, _) => json!({}),
            }
        };
        let work = async {
            match kind {
                LiveOp::Register => {
                    let now = now_micro();
                    let number = lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0);
                    let body = json!({
                        "metadata": {"resourceVersion": condition_of(&lease)?, "annotations": mark(&now)},
                        "spec": {
                            "holderIdentity": apis.pod,
                            "leaseTransitions": number.saturating_add(1),
                            "acquireTime": now,
                            "renewTime": now,
                            "leaseDurationSeconds": duration_seconds,
                        },
                    });
                    Ok(Some(patch(&apis.leases, &name, body).await?))
                }
                LiveOp::Renew => {
                    let now = now_micro();
                    let body = json!({
                        "metadata": {"resourceVersion": condition_of(&lease)?, "annotations": mark(&now)},
                        "spec": {"renewTime": now, "leaseDurationSeconds": duration_seconds},
                    });
                    Ok(Some(patch(&apis.leases, &name, body).await?))
                }
                LiveOp::Read => apis
                    .leases
                    .get_opt(&name)
                    .await
                    .map_err(|e| OpError::Other(e.to_string())),
            }
        };
        let result = match tokio::time::timeout(apis.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(OpError::Other("request timed out".into())),
        };
        LiveDone { kind, result }
    }
    .boxed()
}

/// How long a Secret read for a config is used before it is read again.
const CONFIG_TTL: Duration = Duration::from_secs(10);
/// A key missing from a cached Secret is looked for again at most this often.
const MISS_RETRY: Duration = Duration::from_secs(1);

/// The listeners' configs: each Secret read once for every listener it configures (500
/// listeners acknowledged at once read their Secret once, not 500 times), again after
/// [`CONFIG_TTL`], or when a key is missing from the copy read.
#[derive(Clone)]
pub(super) struct Configs {
    client: kube::Client,
    /// The Secrets' URL (the pod's namespace).
    url: String,
    cache: Arc<tokio::sync::Mutex<HashMap<String, Slot>>>,
}

/// What is kept of a config Secret: its data, each value as sent (base64), decoded when a
/// listener's config is looked up. The rest of the object (its `managedFields` above all) is
/// skipped while decoding, not built: one Secret configures every listener of a set, so at
/// 10,000 listeners it is ~0.8 MB, read again every [`CONFIG_TTL`].
#[derive(Default, serde::Deserialize)]
struct SecretData {
    data: Option<BTreeMap<String, String>>,
}

impl SecretData {
    /// The value of `key`: `None` if it has none, an error if it is not base64.
    fn value(&self, key: &str) -> Option<Result<Vec<u8>, base64::DecodeError>> {
        use base64::Engine;
        let encoded = self.data.as_ref()?.get(key)?;
        Some(base64::engine::general_purpose::STANDARD.decode(encoded))
    }
}

/// One Secret's copy (when read, what), read by one request at a time.
type Slot = Arc<tokio::sync::Mutex<Option<(Instant, SecretData)>>>;

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
    async fn read(&self, l: &Lease) -> Result<Option<String>, OpError> {
        let (secret, key) = match config_of(l) {
            None => return Ok(None),
            Some(Ok(at)) => at,
            Some(Err(value)) => {
                return Err(OpError::Other(format!(
                    "config annotation {value:?} is not <secret>/<key>"
                )));
            }
        };
        let slot = self.cache.lock().await.entry(secret.to_string()).or_default().clone();
        // One read at a time per Secret: the others wait for it and use its copy.
        let mut cached = slot.lock().await;
        let now = Instant::now();
        let fresh = match cached.as_ref() {
            Some((at, s)) => {
                let age = now.saturating_duration_since(*at);
                age < CONFIG_TTL && (s.value(key).is_some() || age < MISS_RETRY)
            }
            None => false,
        };
        if !fresh {
            *cached = Some((now, self.get(secret).await?));
        }
        match cached.as_ref().and_then(|(_, s)| s.value(key)) {
            Some(Ok(v)) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            Some(Err(e)) => Err(OpError::Other(format!(
                "Secret {secret} key {key:?} is not base64: {e}"
            ))),
            None => Err(OpError::Other(format!("Secret {secret} has no key {key:?}"))),
        }
    }
}

/// Whether `e` is the API server's answer with HTTP status `code`.
fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[cfg(test)]
mod tests {
    use super::SecretData;

    /// A Secret as the API server answers it: data base64-encoded, beside metadata and
    /// `managedFields` that are skipped.
    fn secret_json(data: &str) -> String {
        format!(
            r#"{{"kind":"Secret","apiVersion":"v1","metadata":{{"name":"cfg","namespace":"ns",
            "managedFields":[{{"manager":"kubectl","operation":"Apply","fieldsType":"FieldsV1",
            "fieldsV1":{{"f:data":{{"f:a":{{}}}}}}}}]}},{data}"type":"Opaque"}}"#
        )
    }

    #[test]
    fn a_config_secret_is_read_for_its_data_alone() {
        let json = secret_json(r#""data":{"a":"aGVsbG8=","b":"","c":"not base64!"},"#);
        let read: SecretData = serde_json::from_str(&json).unwrap();
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
}
