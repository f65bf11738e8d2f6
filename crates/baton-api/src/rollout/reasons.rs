//! The words of a Rollout's status and events: its phases, condition types, statuses and
//! reasons, the reasons a rollout fails, and the reasons of the Events the controller publishes.
//! The controller writes them, the CLI, the dashboard, tests and users read them: each has one
//! spelling, here.
//!
//! # Conditions (kstatus conventions)
//!
//! Exactly one of `Ready`, `Reconciling` and `Stalled` is True at any time, and all three carry
//! the same reason and message (what the rollout is doing, or why it stopped):
//!
//! | phase | Ready | Reconciling | Stalled |
//! | --- | --- | --- | --- |
//! | `Healthy` | True | False | False |
//! | `Progressing`, `Paused`, `RollingBack` | False | True | False |
//! | `Degraded`, `RolledBack` | False | False | True |
//!
//! `Ready` is True only when the revision of this generation (`observedGeneration` on every
//! condition) is rolled out to every instance it should run on and each is available: it is
//! the CI gate (`kubectl wait --for=condition=Ready`). `Available` and `Progressing` follow
//! Deployment's conditions; `InvalidSpec` says whether the spec can be acted on.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A closed set of wire words: `as_str`, `parse` and `Display` agree with the variant names
/// (and with serde, for the types that are serialized).
macro_rules! wire_words {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word as written on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }

            /// The value spelled `s`, if any.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_words! {
    /// Phase of a Rollout (`status.phase`, the PHASE column).
    /// `Healthy`: every instance is available on the revision of this generation (or its pin).
    /// `Progressing`: instances are being moved. `Paused`: `spec.paused`, or waiting for promotion.
    /// `RollingBack`, then `RolledBack`: a failed or aborted version returns to the last healthy one.
    /// `Degraded`: stopped until fixed (failed without rollback, invalid spec, crash-looping pods).
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum RolloutPhase {
        /// Instances are being moved to the update revision (timed pauses included), or repaired.
        Progressing,
        /// `spec.paused`, or a healthy batch waiting for promotion.
        Paused,
        /// Every instance is available on the revision it should run: the update revision (or its
        /// pin).
        Healthy,
        /// Stopped: a batch failed without automatic rollback, the spec is invalid, or instances
        /// of the current revision are crash-looping.
        Degraded,
        /// A failed or aborted rollout is returning instances to the last healthy revision.
        RollingBack,
        /// A failed or aborted rollout was returned to the last healthy revision, which serves;
        /// the update revision runs nowhere.
        RolledBack,
    }
}

wire_words! {
    /// Condition types of a Rollout.
    pub enum ConditionType {
        /// True only when this generation's revision is fully rolled out and available.
        Ready,
        /// True while the controller is moving instances (or waiting for a pause to end).
        Reconciling,
        /// True when progress stopped and needs a person: a failed, rolled back or aborted
        /// rollout, an invalid spec, instances crash-looping.
        Stalled,
        /// At least `replicas - maxUnavailable` instances are available.
        Available,
        /// Deployment's `Progressing`: True while moving or done, False when stopped or rolled
        /// back, Unknown while `spec.paused`.
        Progressing,
        /// True when the spec cannot be acted on; the message says what to fix.
        InvalidSpec,
        /// Only with `spec.notifications`: True when every sink's Secret is there with a usable
        /// URL (delivery failures are Events and a metric, not this condition).
        NotificationsReady,
    }
}

wire_words! {
    /// `status` of a condition.
    pub enum ConditionStatus {
        True,
        False,
        Unknown,
    }
}

wire_words! {
    /// Reasons of a Rollout's conditions.
    pub enum Reason {
        /// The update revision is available on every instance (Deployment's reason).
        NewRevisionAvailable,
        /// Instances are being moved or repaired (Deployment's reason).
        ReplicaSetUpdated,
        /// A healthy batch pauses (for a duration, or until promoted).
        BatchPaused,
        /// `spec.paused` is true.
        RolloutPaused,
        /// A failed rollout is returning instances to the last healthy revision.
        RollingBack,
        /// A failed rollout was returned to the last healthy revision.
        RolledBack,
        /// An aborted rollout was (or is being) returned to the last healthy revision.
        RolloutAborted,
        /// A batch was not healthy within `progressDeadlineSeconds`.
        ProgressDeadlineExceeded,
        /// An instance is crash-looping.
        PodCrashLooping,
        /// `Available` is True.
        MinimumReplicasAvailable,
        /// `Available` is False.
        MinimumReplicasUnavailable,
        /// The spec cannot be acted on.
        InvalidSpec,
        /// `InvalidSpec` is False.
        SpecValid,
        /// Every instance is on the update revision, which is watched for `bakeSeconds` before
        /// it counts as healthy.
        Baking,
        /// A check of a batch (or of the bake window) failed.
        CheckFailed,
        /// An instance was not available during the bake window.
        BakeFailed,
        /// `NotificationsReady` is True.
        SinksReady,
        /// `NotificationsReady` is False: a sink's Secret is missing or unreadable, or its URL or
        /// headers do not parse (the message says which).
        SinkInvalid,
        /// A hook's Job (`spec.hooks`) runs: the rollout waits for it.
        HookRunning,
        /// A hook's Job failed.
        HookFailed,
    }
}

wire_words! {
    /// Why a rollout failed (`status.failedUpdate.reason`).
    #[derive(Serialize, Deserialize, JsonSchema, Default)]
    pub enum FailureReason {
        /// A batch was not healthy within `progressDeadlineSeconds`.
        #[default]
        ProgressDeadlineExceeded,
        /// A pod of the batch was crash-looping.
        PodCrashLooping,
        /// Aborted with `baton rollout abort` (annotation `baton.dev/abort`).
        Aborted,
        /// A check of a batch (or of the bake window) failed.
        CheckFailed,
        /// An instance was not available during the bake window.
        BakeFailed,
        /// A hook's Job (`spec.hooks`) failed.
        HookFailed,
    }
}

impl FailureReason {
    /// The condition reason of a rollout that failed for this reason: after a rollback
    /// (`rolled_back`), or stopped where it failed.
    pub fn condition_reason(self, rolled_back: bool) -> Reason {
        match (self, rolled_back) {
            (FailureReason::Aborted, _) => Reason::RolloutAborted,
            (_, true) => Reason::RolledBack,
            (FailureReason::PodCrashLooping, false) => Reason::PodCrashLooping,
            (FailureReason::ProgressDeadlineExceeded, false) => Reason::ProgressDeadlineExceeded,
            (FailureReason::CheckFailed, false) => Reason::CheckFailed,
            (FailureReason::BakeFailed, false) => Reason::BakeFailed,
            (FailureReason::HookFailed, false) => Reason::HookFailed,
        }
    }
}

wire_words! {
    /// Reasons of the Events published about a Rollout.
    pub enum EventReason {
        /// The phase changed (the note says from what to what).
        PhaseChanged,
        BatchStarted,
        BatchCompleted,
        BatchFailed,
        /// Every instance is on the update revision: it is the new current revision.
        RolloutCompleted,
        RollingBack,
        RolledBack,
        RolloutAborted,
        /// A pause ended by `baton rollout promote` (or the rollout skipped to its last batch).
        Promoted,
        /// `spec.paused` was set.
        Paused,
        /// `spec.paused` was cleared.
        Resumed,
        RetryRequested,
        /// `baton rollout restart`: a new revision of the same version.
        Restarted,
        /// Instances were pinned to a version (or moved to another one).
        Pinned,
        /// Pins were removed: the instances return to the update revision.
        Unpinned,
        /// A runtime action (promote, abort, retry) was handled but had nothing to act on.
        ActionIgnored,
        InvalidSpec,
        /// The last batch is healthy: the bake window starts.
        BakeStarted,
        /// A check failed (the note names it, its target and its last result).
        CheckFailed,
        /// A notification could not be delivered (yet, or within the retry bound).
        NotificationFailed,
        /// A hook's Job was created (the note names it).
        HookStarted,
        /// A hook's Job failed (the note names it, its failed pod and why).
        HookFailed,
        /// The Deployment of `spec.workloadRef` was scaled (the note says from what to what, and
        /// why).
        WorkloadScaled,
    }
}

/// Is condition `c` of type `type_`?
pub fn is_type(c: &Condition, type_: ConditionType) -> bool {
    c.type_ == type_.as_str()
}

/// The condition of type `type_` in `conditions`, if any.
pub fn find(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| is_type(c, type_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_match_serde() {
        for p in RolloutPhase::ALL {
            assert_eq!(RolloutPhase::parse(p.as_str()), Some(*p));
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.as_str()));
        }
        for r in FailureReason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!(r.as_str()));
        }
        assert_eq!(Reason::parse("RolledBack"), Some(Reason::RolledBack));
        assert_eq!(Reason::parse("CrashLoop"), None);
        assert_eq!(ConditionType::Ready.to_string(), "Ready");
    }

    #[test]
    fn failure_reasons_map_to_condition_reasons() {
        use FailureReason::*;
        assert_eq!(Aborted.condition_reason(true), Reason::RolloutAborted);
        assert_eq!(PodCrashLooping.condition_reason(true), Reason::RolledBack);
        assert_eq!(PodCrashLooping.condition_reason(false), Reason::PodCrashLooping);
        assert_eq!(
            ProgressDeadlineExceeded.condition_reason(false),
            Reason::ProgressDeadlineExceeded
        );
    }
}
