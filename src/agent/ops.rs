//! The agent's API requests: one conditional write (acquire, renew, release) or read (refresh)
//! of a Lease at a time, each reported back to [`State`] as an [`OpDone`].

use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::state::{Phase, State};
use crate::error::is_status;
use crate::listeners::CONFIG_ANNOTATION;

pub(super) enum OpKind {
    Acquire,
    Renew,
    Release,
    Refresh,
}

pub(super) enum OpError {
    Conflict,
    NotFound,
    Other(String),
}

pub(super) struct OpDone {
    pub(super) name: String,
    pub(super) kind: OpKind,
    pub(super) sent: Instant,
    pub(super) result: Result<(Option<Lease>, Option<String>), OpError>,
}

impl State {
    /// Start the write this lease's phase calls for, if it is due and none is in flight.
    pub(super) fn issue(&mut self, name: &str, now: Instant) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        if t.busy || now < t.due {
            return;
        }
        let kind = match t.phase {
            Phase::Acquiring | Phase::Lost => OpKind::Acquire,
            Phase::Running | Phase::Stopping => OpKind::Renew,
            Phase::Releasing => OpKind::Release,
        };
        t.busy = true;
        let mut lease = t.lease.clone();
        let api = self.leases.clone();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let timeout = self.cfg.request_timeout;
        let name = name.to_string();
        let sent = Instant::now();
        let fut = async move {
            let is_acquire = matches!(kind, OpKind::Acquire);
            let classify = move |e: kube::Error| {
                if is_status(&e, 409) {
                    OpError::Conflict
                } else if is_status(&e, 404) && !is_acquire {
                    OpError::NotFound
                } else {
                    OpError::Other(e.to_string())
                }
            };
            let work = async {
                match kind {
                    OpKind::Acquire | OpKind::Renew => {
                        if let Some(spec) = lease.spec.as_mut() {
                            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
                        }
                        let l = api
                            .replace(&name, &PostParams::default(), &lease)
                            .await
                            .map_err(classify)?;
                        let mut config = None;
                        if is_acquire {
                            if let Some(c) = l.metadata.annotations.as_ref().and_then(|a| a.get(CONFIG_ANNOTATION)) {
                                let (secret, key) = c.split_once('/').unwrap_or((c.as_str(), ""));
                                let s = secrets.get(secret).await.map_err(classify)?;
                                let value = s
                                    .data
                                    .as_ref()
                                    .and_then(|d| d.get(key))
                                    .ok_or_else(|| OpError::Other(format!("Secret {secret} has no key {key:?}")))?;
                                config = Some(String::from_utf8_lossy(&value.0).into_owned());
                            }
                        }
                        Ok((Some(l), config))
                    }
                    OpKind::Release => {
                        if let Some(spec) = lease.spec.as_mut() {
                            spec.holder_identity = None;
                        }
                        let l = api
                            .replace(&name, &PostParams::default(), &lease)
                            .await
                            .map_err(classify)?;
                        Ok((Some(l), None))
                    }
                    OpKind::Refresh => Ok((api.get_opt(&name).await.map_err(classify)?, None)),
                }
            };
            let result = match tokio::time::timeout(timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(OpError::Other("request timed out".into())),
            };
            OpDone {
                name,
                kind,
                sent,
                result,
            }
        };
        self.ops.push(fut.boxed());
    }

    pub(super) fn refresh(&mut self, name: &str) {
        let Some(t) = self.tracked.get_mut(name) else { return };
        t.busy = true;
        let api = self.leases.clone();
        let timeout = self.cfg.request_timeout;
        let name = name.to_string();
        let sent = Instant::now();
        self.ops.push(
            async move {
                let result = match tokio::time::timeout(timeout, api.get_opt(&name)).await {
                    Ok(Ok(l)) => Ok((l, None)),
                    Ok(Err(e)) => Err(OpError::Other(e.to_string())),
                    Err(_) => Err(OpError::Other("request timed out".into())),
                };
                OpDone {
                    name,
                    kind: OpKind::Refresh,
                    sent,
                    result,
                }
            }
            .boxed(),
        );
    }
}
