//! `status.history`: each deploy and rollback of a Rollout as a record with an id, its start and
//! end times, outcome and revision (the deploy id and rollback id a release API hands out).
//! Written by the controller with the status it writes anyway; read by `baton rollout history`.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most records kept in `status.history` (the oldest go first).
pub const MAX_RECORDS: usize = 10;

/// A deploy (a new revision rolled out) or a rollback (instances returned to an earlier one).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RecordKind {
    Deploy,
    Rollback,
}

/// What started a record.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RecordTrigger {
    /// A new spec (template or version).
    Spec,
    /// The spec was set back to an earlier revision (`baton rollout undo`, or a revert in git).
    Undo,
    /// `baton rollout retry` of a failed revision.
    Retry,
    /// A batch failed and `autoRollback` returned the instances.
    Automatic,
    /// `baton rollout abort`.
    Abort,
}

/// How a record ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RecordOutcome {
    /// Still under way.
    InProgress,
    /// Every instance available on the record's revision.
    Succeeded,
    /// A batch failed (crash loop or progress deadline).
    Failed,
    /// Aborted by a person.
    Aborted,
    /// A newer spec (or a retry) replaced it before it finished.
    Superseded,
}

macro_rules! words {
    ($t:ty { $($v:ident),+ }) => {
        impl $t {
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$v => stringify!($v)),+ }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
words!(RecordKind { Deploy, Rollback });
words!(RecordTrigger {
    Spec,
    Undo,
    Retry,
    Automatic,
    Abort
});
words!(RecordOutcome {
    InProgress,
    Succeeded,
    Failed,
    Aborted,
    Superseded
});

/// One deploy or rollback.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployRecord {
    /// Sequence number within the Rollout, counting every record ever made (deploy id /
    /// rollback id).
    pub id: i64,
    pub kind: RecordKind,
    pub trigger: RecordTrigger,
    /// Number of the revision the instances move to (see `baton rollout history`).
    pub revision: i64,
    /// Its ControllerRevision.
    pub revision_name: String,
    /// Its version.
    pub version: String,
    /// The version that served when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    pub started_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    pub outcome: RecordOutcome,
    /// Why it ended so, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
    /// `kubernetes.io/change-cause` of the change that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub change_cause: Option<String>,
    /// The field manager that made that change (`kubectl`, `baton`, `argocd-controller`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
}
