//! The agent's API requests: one conditional write (acknowledge, renew, release) or read of a
//! listener Lease, or of its pod's liveness Lease (register, renew, read), as decided by
//! [`State`](super::state::State), performed here and reported back, with the listeners' configs
//! ([`Configs`]).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::configs::Configs;
use super::state::{LiveOp, LiveResult, OpError, OpKind, OpResult};
use baton_api::listenerset::lease::handover;
use baton_api::listenerset::liveness::LEAVING_ANNOTATION;
use baton_api::listenerset::RELEASE_TO_ANNOTATION;

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

pub(super) fn classify(e: kube::Error, not_found_is_gone: bool) -> OpError {
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
                OpKind::Release => release(&apis, &name, &lease).await,
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

/// Let listener Lease `name` go (its listener stopped): hand it to the successor its release
/// request names, in one conditional write ([`handover::patch`]); without one, or should the API
/// server refuse that write, release it bare and let the controller assign it.
async fn release(apis: &Apis, name: &str, lease: &Lease) -> Result<(Option<Lease>, Option<String>), OpError> {
    if let Some(body) = handover::patch(lease, &now_micro()) {
        match patch(&apis.leases, name, body).await {
            Ok(l) => return Ok((Some(l), None)),
            Err(OpError::Refused(e)) => {
                tracing::warn!(lease = %name, error = %e, "the handover to the named successor was refused; releasing instead");
            }
            Err(e) => return Err(e),
        }
    }
    // A released Lease belongs to no pod: without the ownerReference the garbage collector does
    // not delete it when the pod goes, so the controller hands it over (same Lease, next token)
    // instead of recreating it.
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
            "resourceVersion": condition_of(lease)?,
            "ownerReferences": (!owners.is_empty()).then_some(owners),
            "annotations": {RELEASE_TO_ANNOTATION: null},
        },
        "spec": {"holderIdentity": null},
    });
    Ok((Some(patch(&apis.leases, name, body).await?), None))
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

/// Whether `e` is the API server's answer with HTTP status `code`.
fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}
