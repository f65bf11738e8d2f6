//! Runtime actions of a Rollout, requested by annotation.
//!
//! Runtime actions never touch fields GitOps owns. The CLI sets annotations on the Rollout;
//! the controller never edits them, and records handled nonces in `status.actions`.
//!
//! | annotation | value | effect |
//! | --- | --- | --- |
//! | `baton.dev/promote` | nonce | ends the current inter-batch pause (timed or waiting for promotion) at once. A nonce seen while not pausing is recorded and has no effect. |
//! | `baton.dev/abort` | nonce | while a rollout is in progress (or stopped `Degraded`): the update revision is marked failed with reason `Aborted` and every unpinned slot returns to `status.currentRevision`, as an automatic rollback, even with `autoRollback: false`. Ends with `Progressing=False/RolloutAborted`. |
//! | `baton.dev/retry` | nonce | when the update revision is recorded as failed: forget the failure and roll it out again, from batch 1 after a rollback, or from the failed batch after a stop. |
//! | `baton.dev/restartedAt` | timestamp | stamped into the effective pod template as the same annotation, so a new value is a new revision rolled out with the normal batches (like `kubectl rollout restart`). Not a nonce: the value stays. |
//!
//! A nonce is acted on when it differs from the one recorded in `status.actions` (then recorded,
//! whether or not it had an effect), so an action happens once even if reconciles repeat. While
//! the spec is invalid, nonces are neither acted on nor recorded.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{EventType, Planner, RevisionInfo};
use crate::api::rollout::{annotations, BatchStatus, FailedUpdate, HandledActions};

/// Runtime-action annotation values of the Rollout (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionRequests {
    pub promote: Option<String>,
    pub abort: Option<String>,
    pub retry: Option<String>,
    pub restarted_at: Option<String>,
}

impl ActionRequests {
    /// Reads the action annotations from a Rollout's `metadata.annotations`.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| annotations.get(k).filter(|v| !v.is_empty()).cloned();
        Self {
            promote: get(annotations::PROMOTE),
            abort: get(annotations::ABORT),
            retry: get(annotations::RETRY),
            restarted_at: get(annotations::RESTARTED_AT),
        }
    }
}

/// The runtime actions this plan acts on (nonces not handled yet), and the nonces it records.
pub(super) struct RequestedActions {
    pub(super) promote: bool,
    pub(super) abort: bool,
    pub(super) retry: bool,
    /// `status.actions` after this plan.
    pub(super) handled: HandledActions,
}

impl Planner<'_> {
    pub(super) fn requested_actions(&self) -> RequestedActions {
        let acks = self.prior.actions.clone().unwrap_or_default();
        let requests = &self.input.requests;
        let fresh = |req: &Option<String>, ack: &Option<String>| req.is_some() && req != ack;
        RequestedActions {
            promote: fresh(&requests.promote, &acks.promote),
            abort: fresh(&requests.abort, &acks.abort),
            retry: fresh(&requests.retry, &acks.retry),
            handled: HandledActions {
                promote: requests.promote.clone().or(acks.promote),
                abort: requests.abort.clone().or(acks.abort),
                retry: requests.retry.clone().or(acks.retry),
            },
        }
    }

    /// `baton.dev/retry`: forgets the recorded failure and restarts from batch 1 after a
    /// rollback, or from the failed batch after a stop.
    pub(super) fn retry_failed(
        &mut self,
        failed: &mut Option<FailedUpdate>,
        batch: &mut BatchStatus,
        target: &RevisionInfo,
        total_batches: i32,
    ) {
        let now = self.now;
        if let Some(f) = failed.take() {
            batch.current = if f.rolled_back {
                1
            } else {
                f.batch.clamp(1, total_batches.max(1))
            };
            batch.started_at = Some(Time(now));
            batch.pause_started_at = None;
            self.event(
                EventType::Normal,
                "RetryRequested",
                format!(
                    "retrying {} (revision {}) from batch {}/{total_batches}",
                    target.version, target.revision, batch.current
                ),
            );
        }
    }

    /// `baton.dev/abort` while rolling: records the update revision as failed (`Aborted`) and
    /// rolled back, unless it already is.
    pub(super) fn abort_rollout(
        &mut self,
        failed: &mut Option<FailedUpdate>,
        batch: &BatchStatus,
        target: &RevisionInfo,
        stable: Option<&RevisionInfo>,
        total_batches: i32,
    ) {
        let now = self.now;
        if let Some(s) = stable {
            if failed.as_ref().is_none_or(|f| !f.rolled_back) {
                let message = format!(
                    "rollout of {} aborted (baton.dev/abort) at batch {}/{}",
                    target.version, batch.current, total_batches
                );
                self.event(
                    EventType::Warning,
                    "RolloutAborted",
                    format!("{message}; returning every instance to {}", s.version),
                );
                *failed = Some(FailedUpdate {
                    revision: target.name.clone(),
                    version: target.version.clone(),
                    reason: "Aborted".into(),
                    message,
                    rolled_back: true,
                    batch: batch.current,
                    at: Some(Time(now)),
                });
            }
        }
    }
}
