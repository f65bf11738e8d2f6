//! Runtime actions of a Rollout, requested by annotation.
//!
//! Runtime actions never touch fields GitOps owns. The CLI sets annotations on the Rollout;
//! the controller never edits them, and records handled nonces in `status.actions`.
//!
//! | annotation | value | effect |
//! | --- | --- | --- |
//! | `baton.dev/promote` | nonce | ends the current inter-batch pause (timed or waiting for promotion) at once. |
//! | `baton.dev/promote-full` | nonce | skips every remaining batch and pause: the rest of the instances move as one last batch, still health-gated. |
//! | `baton.dev/abort` | nonce | while a rollout is in progress (or stopped `Degraded`): the update revision is marked failed with reason `Aborted` and every unpinned slot returns to `status.currentRevision` at once, as an automatic rollback (no batches, no pauses), even with `autoRollback: false`. Ends in phase `RolledBack` with `Progressing=False/RolloutAborted`. |
//! | `baton.dev/retry` | nonce | when the update revision is recorded as failed: forget the failure and roll it out again, from batch 1 after a rollback, or from the failed batch after a stop. |
//! | `baton.dev/restartedAt` | timestamp | stamped into the effective pod template as the same annotation, so a new value is a new revision rolled out with the normal batches (like `kubectl rollout restart`), reported once by a `Restarted` event. Not a nonce: the value stays. |
//!
//! A nonce is acted on when it differs from the one recorded in `status.actions`, then
//! recorded, so an action happens once even if reconciles repeat. A request that finds nothing
//! to act on (promote with no pause to end, abort with nothing in progress, retry with nothing
//! failed) is recorded with an `ActionIgnored` Warning event saying why. While `spec.paused`,
//! promotions are neither acted on nor recorded: they take effect on resume, never lost. While
//! the spec is invalid, nonces are neither acted on nor recorded.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

use super::{EventType, Planner, RevisionInfo};
use crate::api::rollout::{annotations, BatchStatus, EventReason, FailedUpdate, FailureReason, HandledActions};

/// Runtime-action annotation values of the Rollout (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionRequests {
    pub promote: Option<String>,
    pub promote_full: Option<String>,
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
            promote_full: get(annotations::PROMOTE_FULL),
            abort: get(annotations::ABORT),
            retry: get(annotations::RETRY),
            restarted_at: get(annotations::RESTARTED_AT),
        }
    }
}

/// The runtime actions this plan acts on (nonces not handled yet), and the nonces it records.
pub(super) struct RequestedActions {
    pub(super) promote: bool,
    pub(super) promote_full: bool,
    pub(super) abort: bool,
    pub(super) retry: bool,
    /// A `baton.dev/restartedAt` value not reported yet.
    pub(super) restart: bool,
    /// `status.actions` after this plan.
    pub(super) handled: HandledActions,
}

impl Planner<'_> {
    pub(super) fn requested_actions(&self) -> RequestedActions {
        let acks = self.prior.actions.clone().unwrap_or_default();
        let requests = &self.input.requests;
        let fresh = |req: &Option<String>, ack: &Option<String>| req.is_some() && req != ack;
        // While spec.paused nothing moves, so a promotion would be used up by nothing: it waits
        // (unrecorded) for the resume.
        let paused = self.spec.paused;
        let deferred = |req: &Option<String>, ack: &Option<String>| {
            if paused {
                ack.clone()
            } else {
                req.clone().or(ack.clone())
            }
        };
        RequestedActions {
            promote: !paused && fresh(&requests.promote, &acks.promote),
            promote_full: !paused && fresh(&requests.promote_full, &acks.promote_full),
            abort: fresh(&requests.abort, &acks.abort),
            retry: fresh(&requests.retry, &acks.retry),
            restart: fresh(&requests.restarted_at, &acks.restarted_at),
            handled: HandledActions {
                promote: deferred(&requests.promote, &acks.promote),
                promote_full: deferred(&requests.promote_full, &acks.promote_full),
                abort: requests.abort.clone().or(acks.abort),
                retry: requests.retry.clone().or(acks.retry),
                restarted_at: requests.restarted_at.clone().or(acks.restarted_at),
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
        let Some(f) = failed.take() else {
            self.ignored(
                "retry",
                &format!("{} (revision {}) has not failed", target.version, target.revision),
            );
            return;
        };
        batch.current = if f.rolled_back {
            1
        } else {
            f.batch.clamp(1, total_batches.max(1))
        };
        // Batch 1 behind a preRollout hook that has not succeeded (it failed, and the retry
        // runs it again) starts, with its BatchStarted, when the hook is done.
        let held = batch.current == 1 && !self.pre_hook_done(target).0;
        batch.started_at = (!held).then_some(MicroTime(now));
        batch.pause_started_at = None;
        self.event(
            EventType::Normal,
            EventReason::RetryRequested,
            format!(
                "retrying {} (revision {}) from batch {}/{total_batches}",
                target.version, target.revision, batch.current
            ),
        );
    }

    /// `baton.dev/abort` while `rolling`: records the update revision as failed (`Aborted`)
    /// and rolled back, unless it already is.
    pub(super) fn abort_rollout(
        &mut self,
        failed: &mut Option<FailedUpdate>,
        batch: &BatchStatus,
        target: &RevisionInfo,
        stable: Option<&RevisionInfo>,
        rolling: bool,
    ) {
        let s = match stable {
            _ if !rolling => {
                return self.ignored(
                    "abort",
                    &format!("no rollout in progress: {} is rolled out", target.version),
                )
            }
            None => return self.ignored("abort", "there is no healthy revision to return to yet"),
            Some(_) if failed.as_ref().is_some_and(|f| f.rolled_back) => {
                return self.ignored(
                    "abort",
                    &format!("the rollout of {} was already rolled back", target.version),
                )
            }
            Some(s) => s,
        };
        let message = format!(
            "rollout of {} aborted ({}) at batch {}/{}",
            target.version,
            crate::api::rollout::annotations::ABORT,
            batch.current,
            batch.total
        );
        self.event(
            EventType::Warning,
            EventReason::RolloutAborted,
            format!("{message}; returning every instance to {}", s.version),
        );
        *failed = Some(FailedUpdate {
            revision: target.name.clone(),
            version: target.version.clone(),
            reason: FailureReason::Aborted,
            message,
            instances: Vec::new(),
            rolled_back: true,
            batch: batch.current,
            at: Some(Time(self.now)),
        });
    }
}
