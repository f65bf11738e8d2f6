//! The agent's API requests: one conditional write (acquire, renew, release) or read of a Lease,
//! as decided by [`State`](super::state::State), performed here and reported back.

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::state::{OpError, OpKind, OpResult};
use crate::api::listenerset::lease::config_of;
use crate::error::is_status;

/// A finished request, for [`State::on_op`](super::state::State::on_op).
pub(super) struct OpDone {
    pub(super) name: String,
    pub(super) kind: OpKind,
    pub(super) result: OpResult,
}

/// Where the requests go.
#[derive(Clone)]
pub(super) struct Apis {
    pub(super) leases: Api<Lease>,
    pub(super) secrets: Api<Secret>,
    pub(super) timeout: std::time::Duration,
}

fn classify(e: kube::Error, not_found_is_gone: bool) -> OpError {
    if is_status(&e, 409) {
        OpError::Conflict
    } else if is_status(&e, 404) && not_found_is_gone {
        OpError::NotFound
    } else {
        OpError::Other(e.to_string())
    }
}

/// Perform `kind` on Lease `name`, based on `lease`.
pub(super) fn perform(apis: Apis, name: String, kind: OpKind, lease: Lease) -> BoxFuture<'static, OpDone> {
    async move {
        let work = async {
            // Every write is conditional: without the resourceVersion it would not be.
            let rv = match (kind, lease.metadata.resource_version.as_deref()) {
                (OpKind::Read, _) => None,
                (_, Some(rv)) => Some(rv.to_string()),
                (_, None) => return Err(OpError::Other("the Lease read has no resourceVersion".into())),
            };
            match kind {
                // Merge patches conditional on the resourceVersion: 409 if the Lease changed,
                // 404 if it is gone. Never a PUT: of a missing Lease a PUT creates one (Leases
                // allow create on update), and an agent must never bring back a Lease that was
                // deleted (by hand, or by the garbage collector with a force-deleted pod).
                OpKind::Acquire | OpKind::Renew => {
                    let patch = json!({
                        "metadata": {"resourceVersion": rv},
                        "spec": {"renewTime": MicroTime(jiff::Timestamp::now())},
                    });
                    let l = apis
                        .leases
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| classify(e, true))?;
                    // A 404 here is the config Secret's: not proof the Lease is gone.
                    let config = if kind == OpKind::Acquire {
                        read_config(&apis.secrets, &l).await?
                    } else {
                        None
                    };
                    Ok((Some(l), config))
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
                    let patch = json!({
                        "metadata": {
                            "resourceVersion": rv,
                            "ownerReferences": (!owners.is_empty()).then_some(owners),
                        },
                        "spec": {"holderIdentity": null},
                    });
                    let l = apis
                        .leases
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| classify(e, true))?;
                    Ok((Some(l), None))
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
        OpDone { name, kind, result }
    }
    .boxed()
}

/// The value of the Secret key the controller named in the Lease's config annotation.
async fn read_config(secrets: &Api<Secret>, l: &Lease) -> Result<Option<String>, OpError> {
    let (secret, key) = match config_of(l) {
        None => return Ok(None),
        Some(Ok(at)) => at,
        Some(Err(value)) => {
            return Err(OpError::Other(format!(
                "config annotation {value:?} is not <secret>/<key>"
            )));
        }
    };
    let s = secrets.get(secret).await.map_err(|e| classify(e, false))?;
    let value = s
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| OpError::Other(format!("Secret {secret} has no key {key:?}")))?;
    Ok(Some(String::from_utf8_lossy(&value.0).into_owned()))
}
