//! The `Rollout` custom resource (`baton.dev/v1alpha1`, namespaced, short name `rol`).
//!
//! A Rollout runs `spec.replicas` *instances* (stable slots `<rollout>-<ordinal>`), each slot
//! backed by one pod per incarnation named `<rollout>-<ordinal>-<revision-hash>`, and moves them
//! from one revision to the next in health-gated batches. The decisions live in the Rollout
//! planner (`rollout::planner`, which depends on this module, never the reverse); this module
//! holds only the API types, their validation ([`validate`]) and the generated CRD ([`crd`]).
//!
//! The schema (bounds, patterns) and its CEL rules (`x-kubernetes-validations`) mirror
//! [`validate`] for the API server; the controller calls [`validate`] itself too, for what the
//! schema cannot express. Rules that touch an int-or-string value avoid string traversal
//! (`matches`, `substring`, string comparison): kube-apiserver estimates every int-or-string at
//! the 3 MiB request limit, and such a rule would push the CRD over its CEL cost budget.

use crate::invalid::BadValue;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod checks;
#[doc(hidden)]
pub mod fixtures;
pub mod history;
pub mod hooks;
pub mod origin;
pub mod pause;
pub mod reasons;
pub mod replacement;
pub mod revision;
pub mod selector;
pub mod targets;
mod validation;
pub mod workload_ref;
pub use checks::{Check, Comparison, HttpCheck, HttpMethod, JsonMatch, PrometheusCheck, Threshold};
pub use history::{DeployRecord, RecordKind, RecordOutcome, RecordTrigger};
pub use hooks::{Hooks, JobTemplate};
pub use pause::{Pause, PauseMode};
pub use reasons::{ConditionStatus, ConditionType, EventReason, FailureReason, Reason, RolloutPhase};
pub use replacement::PodReplacementPolicy;
pub use revision::CachedRevision;
pub use targets::BatchTarget;
pub use validation::{validate, validate_template_labels, TemplateSource};
pub use workload_ref::{ScaleDown, WorkloadRef, WorkloadRefStatus};

/// Runtime-action annotations on a Rollout (written by the CLI, never by GitOps).
///
/// `promote`, `abort` and `retry` carry a *nonce* (any string, the CLI writes an RFC 3339
/// timestamp). The controller acts on a nonce once, when it differs from the value recorded in
/// `status.actions`, and records it there; it never edits the annotations. The Rollout
/// planner's documentation (`rollout::planner`) has the full protocol.
pub mod annotations {
    /// Skip the rest of the current inter-batch pause (or the wait for promotion).
    pub const PROMOTE: &str = "baton.dev/promote";
    /// Skip every remaining batch and pause: the rest of the instances move in one last batch,
    /// still health-gated. `baton rollout promote --full`, and `undo` unless `--batches`.
    pub const PROMOTE_FULL: &str = "baton.dev/promote-full";
    /// Abort the rollout in progress: every updated instance returns to `status.currentRevision`.
    pub const ABORT: &str = "baton.dev/abort";
    /// Retry a failed (rolled back or degraded) rollout of the current spec.
    pub const RETRY: &str = "baton.dev/retry";
    /// Restart every instance: the value is stamped into the pod template (as this same
    /// annotation), which yields a new revision rolled out with the normal batches.
    pub const RESTARTED_AT: &str = "baton.dev/restartedAt";
    /// Why the spec changed (kubectl's annotation, set by every `baton rollout` command that
    /// changes the spec, to its command line). Copied to the ControllerRevision and the deploy
    /// record it starts, when the manager that changed the spec set it too (see
    /// [`super::origin`]).
    pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
    /// On a ControllerRevision: the field manager that made the change it records.
    pub const CHANGED_BY: &str = "baton.dev/changed-by";
}

/// Labels baton puts on the pods and ControllerRevisions of a Rollout.
pub mod labels {
    /// Name of the owning Rollout (pods and ControllerRevisions).
    pub const ROLLOUT: &str = "baton.dev/rollout";
    /// Slot ordinal of a pod (`"0"`, `"1"`, ...).
    pub const SLOT: &str = "baton.dev/slot";
    /// Instance (slot) name of a pod, `<rollout>-<ordinal>`.
    pub const INSTANCE: &str = "baton.dev/instance";
    /// Revision hash of a pod or ControllerRevision.
    pub const REVISION_HASH: &str = "baton.dev/revision-hash";
    /// Human version of a pod (`spec.version` of the revision it runs).
    pub const VERSION: &str = "app.kubernetes.io/version";
    /// Marks objects managed by baton.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// Value of [`MANAGED_BY`].
    pub const MANAGED_BY_VALUE: &str = "baton";
    /// On a hook's Job: which hook it runs ([`super::hooks::hook_names`]).
    pub const HOOK: &str = "baton.dev/hook";
    /// On a `job` check's Job: the check it runs.
    pub const CHECK: &str = "baton.dev/check";
}

/// Desired state of a Rollout.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "baton.dev",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    shortname = "rol",
    category = "baton",
    status = "RolloutStatus",
    derive = "PartialEq",
    doc = "A set of stable instances rolled out in health-gated batches with automatic rollback.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Current","type":"integer","jsonPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Up-to-date","type":"integer","jsonPath":".status.updatedReplicas"}"#,
    printcolumn = r#"{"name":"Available","type":"integer","jsonPath":".status.availableReplicas"}"#,
    printcolumn = r#"{"name":"Version","type":"string","description":"The version that serves: of the last fully healthy revision","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Batch","type":"string","jsonPath":".status.batchLabel"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Target","type":"string","description":"spec.version: the version being rolled out","jsonPath":".spec.version","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","description":"Ready condition: this generation fully rolled out and available","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","priority":1}"#,
    printcolumn = r#"{"name":"Images","type":"string","description":"The images of the pod template's containers (kubectl shows the first; baton rollout list -o wide all of them)","jsonPath":".spec.template.spec.containers[*].image","priority":1}"#
)]
#[x_kube(validation = Rule::new(BATCHES_SORTED_RULE).message("strategy.batches are cumulative targets and must not decrease, e.g. [1, \"50%\", \"100%\"]"))]
#[x_kube(validation = Rule::new(checks::CHECK_NAMES_UNIQUE_RULE).message("spec.checks: each check needs its own name"))]
#[x_kube(validation = Rule::new(workload_ref::ONE_OF_RULE).message(workload_ref::ONE_OF_MESSAGE))]
#[x_kube(validation = Rule::new(workload_ref::NOT_BOTH_RULE).message(workload_ref::NOT_BOTH_MESSAGE))]
#[x_kube(validation = Rule::new(selector::MATCHES_TEMPLATE_RULE).message(selector::MATCHES_TEMPLATE_MESSAGE).field_path(selector::MATCHES_TEMPLATE_FIELD))]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Number of instances (slots `<name>-0` .. `<name>-<replicas-1>`), at most 10000.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 10000))]
    pub replicas: i32,
    /// Selects the pods of this Rollout; must match the pod template's labels (those of
    /// `template`, or of the Deployment of `workloadRef`).
    #[schemars(schema_with = "selector::selector_schema")]
    pub selector: LabelSelector,
    /// Human version, stamped on pods as `app.kubernetes.io/version`.
    #[schemars(length(min = 1, max = 63))]
    pub version: String,
    /// Pod template of every instance (its schema is kept without descriptions to keep the CRD
    /// small). Exactly one of `template` and `workloadRef`; unset (empty) with `workloadRef`.
    #[serde(default, skip_serializing_if = "workload_ref::template_is_unset")]
    #[schemars(schema_with = "pod_template_schema")]
    pub template: PodTemplateSpec,
    /// Take the pod template from this Deployment instead of `template`, and scale it down as
    /// the Rollout's instances become available (docs/rollouts.md, "Migrating from a
    /// Deployment").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "workload_ref::workload_ref_schema")]
    pub workload_ref: Option<WorkloadRef>,
    /// How a new revision is rolled out.
    #[serde(default)]
    pub strategy: RolloutStrategy,
    /// Seconds a new pod must be Ready before it counts as available.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: i32,
    /// A batch that is not healthy this many seconds after it started has failed.
    #[serde(default = "default_progress_deadline_seconds")]
    #[schemars(range(min = 1))]
    pub progress_deadline_seconds: i32,
    /// On a failed batch, return every updated instance to the last healthy revision.
    #[serde(default = "default_true")]
    pub auto_rollback: bool,
    /// Stop all progress (no instance is replaced; missing pods are still recreated).
    #[serde(default)]
    pub paused: bool,
    /// Old revisions (ControllerRevisions) to keep for rollback.
    #[serde(default = "default_revision_history_limit")]
    #[schemars(range(min = 0))]
    pub revision_history_limit: i32,
    /// Instances held on a version from the revision history, outside the batches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<Pin>,
    /// Seconds after the last batch during which health and checks keep being evaluated before
    /// the revision counts as healthy; a failure within them fails the rollout.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    #[schemars(range(min = 0, max = 604800))]
    pub bake_seconds: i32,
    /// What a batch (and the bake window) must pass besides pod readiness.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub checks: Vec<Check>,
    /// Webhooks told about the rollout's transitions (see docs/rollouts.md, "Notifications").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub notifications: Vec<super::notifications::RolloutNotification>,
    /// Jobs run before the first batch and after the last one of each new revision.
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
}

/// Batches, pauses and surge limits of a rollout.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new(
    "!has(self.maxSurge) || !has(self.maxUnavailable) || !((type(self.maxSurge) == int ? self.maxSurge == 0 : self.maxSurge == '0%') && (type(self.maxUnavailable) == int ? self.maxUnavailable == 0 : self.maxUnavailable == '0%'))"
).message("maxSurge and maxUnavailable must not both be zero"))]
#[x_kube(validation = Rule::new(targets::TARGETS_WITHIN_BATCHES_RULE).message("strategy.targets[].batch must name one of strategy.batches (1-based)"))]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Cumulative targets: a count (`1`) or a percentage of replicas (`"50%"`, rounded up).
    /// Empty means one batch of `100%`; a last batch below 100% is followed by an implicit one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "batches_schema")]
    pub batches: Vec<IntOrString>,
    /// Pause after each batch but the last; absent: no pause.
    /// `{manual: true}` or `{}`: wait for `baton rollout promote`; `{duration: 30s}`: pause that long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    /// Extra pods allowed above `replicas` (count or percentage, rounded up).
    #[serde(default = "default_max_surge")]
    #[schemars(schema_with = "int_or_string_schema")]
    pub max_surge: IntOrString,
    /// Instances allowed to be unavailable because of the rollout (count or percentage, rounded
    /// down).
    #[serde(default = "default_max_unavailable")]
    #[schemars(schema_with = "int_or_string_schema")]
    pub max_unavailable: IntOrString,
    /// When a replacement pod may start (see [`PodReplacementPolicy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_replacement_policy: Option<PodReplacementPolicy>,
    /// Instances a batch must include (a canary on a chosen instance).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub targets: Vec<BatchTarget>,
}

impl Default for RolloutStrategy {
    fn default() -> Self {
        Self {
            batches: Vec::new(),
            pause: None,
            max_surge: default_max_surge(),
            max_unavailable: default_max_unavailable(),
            pod_replacement_policy: None,
            targets: Vec::new(),
        }
    }
}

/// Holds named instances on a version from the revision history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    /// Instance names, `<rollout>-<ordinal>`.
    #[schemars(length(min = 1))]
    pub instances: Vec<String>,
    /// A version present in the revision history (or `spec.version`).
    #[schemars(length(min = 1))]
    pub version: String,
}

/// Observed state of a Rollout. Besides the answers for operators it records the facts the
/// planner needs to be level-based (batch start, pause start, failed revision, handled actions).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Progressing`, `Paused`, `Healthy`, `Degraded`, `RollingBack` or `RolledBack` (the PHASE
    /// column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RolloutPhase>,
    /// Last fully healthy revision (ControllerRevision name): the rollback target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// Revision being rolled out (ControllerRevision name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Version that serves: that of `currentRevision`, the last fully healthy revision (VERSION column).
    /// `spec.version` is the TARGET column. Absent until a first revision is fully healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Instances that have a pod.
    #[serde(default)]
    pub replicas: i32,
    /// Instances with a Ready pod.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Instances with a pod of the update revision.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Instances with a pod Ready for at least `minReadySeconds`.
    #[serde(default)]
    pub available_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchStatus>,
    /// `"<current>/<total>"` for the BATCH printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressStatus>,
    /// Every instance: its pod, version, revision and readiness.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceStatus>,
    /// Instances per version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, i32>,
    /// `Ready` is the CI gate: True only when this generation is fully rolled out and available.
    /// Also `Reconciling` and `Stalled` (kstatus), `Available`, `Progressing` and `InvalidSpec`.
    /// Each carries the `observedGeneration` it describes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the rollout is doing or why it stopped (as the conditions say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Label selector (string form) for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The update revision that failed (or was aborted); it is not rolled out again until the
    /// spec changes or `baton.dev/retry` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_update: Option<FailedUpdate>,
    /// Runtime-action nonces already handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<HandledActions>,
    /// The last deploys and rollbacks, oldest first (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub history: Vec<DeployRecord>,
    /// With `spec.workloadRef`: the Deployment as last seen, and its replicas as scaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRefStatus>,
}

/// Batch progress of the rollout in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchStatus {
    /// 1-based batch being rolled out (or just completed, while pausing).
    pub current: i32,
    /// Batches of this rollout.
    pub total: i32,
    /// When the current batch started (progress deadline base), to the microsecond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
    /// When the pause after the current batch started, to the microsecond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_started_at: Option<MicroTime>,
    /// When the bake window after the last batch started, to the microsecond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_started_at: Option<MicroTime>,
}

/// Instance counts of the rollout of the update revision, pinned instances excluded.
/// `completed + failed + pending + rolledBack == total`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressStatus {
    /// Instances the update revision is rolled out to.
    pub total: i32,
    /// Available on the update revision.
    pub completed: i32,
    /// Failed on the update revision: crash-looping, or not healthy by the progress deadline.
    pub failed: i32,
    /// Still to be updated (0 once rolled back or aborted).
    pub pending: i32,
    /// Returned to (or kept on) the last healthy revision by a rollback or abort without failing.
    #[serde(default)]
    pub rolled_back: i32,
}

/// One instance (slot).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// Instance name, `<rollout>-<ordinal>`.
    pub name: String,
    /// Current pod of the instance, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Version of that pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Revision number of the pod's ControllerRevision (0 when unknown).
    #[serde(default)]
    pub revision: i64,
    /// Its pod is Ready.
    #[serde(default)]
    pub ready: bool,
    /// Ready since (or created at, when not ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// Held by `spec.pins`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    /// The version the instance is pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
}

/// A revision that failed to roll out.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedUpdate {
    /// ControllerRevision name.
    pub revision: String,
    /// Its version.
    pub version: String,
    pub reason: FailureReason,
    /// What failed, for people.
    pub message: String,
    /// The instances that failed (crash-looping, or not healthy by the deadline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// Instances are being (or were) returned to `currentRevision`.
    #[serde(default)]
    pub rolled_back: bool,
    /// Batch that failed (1-based).
    #[serde(default)]
    pub batch: i32,
    /// When it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
}

/// Nonces of runtime-action annotations the controller has handled.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandledActions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_full: Option<String>,
    /// Last `baton.dev/restartedAt` value seen (to report each restart once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<String>,
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}
fn default_replicas() -> i32 {
    1
}
fn default_progress_deadline_seconds() -> i32 {
    300
}
fn default_true() -> bool {
    true
}
fn default_revision_history_limit() -> i32 {
    10
}
fn default_max_surge() -> IntOrString {
    IntOrString::Int(1)
}
fn default_max_unavailable() -> IntOrString {
    IntOrString::Int(0)
}

/// Most instances a Rollout may have: the planner's work grows with it, and no decision may cost
/// more than this bound allows (the schema refuses larger values).
pub const MAX_REPLICAS: i32 = 10_000;

/// A percentage from `0%` to `100%`.
const PERCENT_PATTERN: &str = "^(100|[1-9]?[0-9])%$";

/// Batches are sorted once percentages are turned into counts (rounded up). The percentage's
/// digits are read with `charAt` and `indexOf` on a constant: kube-apiserver prices those by the
/// constant, while `substring`, `matches` or `int()` of a substring are priced by the
/// int-or-string's worst-case size (3 MiB) and would cost ~10 M per batch. The schema's
/// `pattern` has already restricted strings to `0%`..`100%`.
const BATCHES_SORTED_RULE: &str = "!has(self.strategy) || !has(self.strategy.batches) || self.strategy.batches.map(b, type(b) == int ? b : ((size(b) == 4 ? 100 : size(b) == 3 ? '0123456789'.indexOf(b.charAt(0)) * 10 + '0123456789'.indexOf(b.charAt(1)) : '0123456789'.indexOf(b.charAt(0))) * (has(self.replicas) ? self.replicas : 1) + 99) / 100).isSorted()";

/// A count (`0`..int32 max) or a percentage (`0%`..`100%`), checked by the schema (`minimum`,
/// `maximum`, `pattern` apply to integers and strings respectively) rather than by CEL.
fn count_or_percent() -> serde_json::Value {
    serde_json::json!({
        "x-kubernetes-int-or-string": true,
        "minimum": 0,
        "maximum": i32::MAX,
        "pattern": PERCENT_PATTERN,
    })
}

/// `x-kubernetes-int-or-string` without `nullable` (kube marks optional int-or-string fields
/// nullable; a null would then be kept instead of defaulted, and fail to deserialize). The
/// explicit `nullable: false` that keeps kube from doing so is removed from the finished CRDs
/// (`drop_false_nullable`).
pub(crate) fn int_or_string_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = count_or_percent();
    s["nullable"] = serde_json::json!(false);
    schemars::Schema::try_from(s).unwrap_or_default()
}

/// At most 32 batches, each a count or a percentage.
fn batches_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(serde_json::json!({
        "type": "array",
        "maxItems": 32,
        "items": count_or_percent(),
    }))
    .unwrap_or_default()
}

/// Schema of the embedded pod template, with every description removed (a full
/// `PodTemplateSpec` schema with descriptions would push the CRD past the 262,144-byte
/// annotation limit of client-side `kubectl apply`).
fn pod_template_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<PodTemplateSpec>();
    if let Some(obj) = schema.as_object_mut() {
        strip_descriptions(obj);
    }
    schema
}

fn strip_descriptions(obj: &mut serde_json::Map<String, serde_json::Value>) {
    if obj.get("description").is_some_and(|d| d.is_string()) {
        obj.remove("description");
    }
    for value in obj.values_mut() {
        strip_value(value);
    }
}

fn strip_value(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => strip_descriptions(map),
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_value),
        _ => {}
    }
}

/// The Rollout CRD as installed (`baton crds`): the pod template schema carries no
/// descriptions.
pub fn crd() -> CustomResourceDefinition {
    let crd = super::descriptions::unwrap(super::schema_bounds::bound_integers(Rollout::crd()));
    super::edit_schemas(crd, super::drop_false_nullable)
}

/// Resolves a count-or-percentage against `total`; percentages round up when `round_up`,
/// down otherwise. Errors name the bad value.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, BadValue> {
    match value {
        IntOrString::Int(n) if *n >= 0 => Ok(*n),
        IntOrString::Int(n) => Err(BadValue::NegativeCount(*n)),
        IntOrString::String(s) => {
            let pct = parse_percent(s)?;
            let total = i64::from(total.max(0));
            let scaled = if round_up {
                (i64::from(pct) * total + 99) / 100
            } else {
                i64::from(pct) * total / 100
            };
            Ok(i32::try_from(scaled).unwrap_or(i32::MAX))
        }
    }
}

pub(super) fn parse_percent(s: &str) -> Result<i32, BadValue> {
    let digits = s
        .strip_suffix('%')
        .ok_or_else(|| BadValue::NotCountOrPercent(s.to_string()))?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadValue::NotPercent(s.to_string()));
    }
    let pct: i32 = digits.parse().map_err(|_| BadValue::NotPercent(s.to_string()))?;
    if pct > 100 {
        return Err(BadValue::OverHundredPercent(s.to_string()));
    }
    Ok(pct)
}

/// Parses a duration with its unit, in Go's syntax (`30s`, `5m`, `1h30m`, `250ms`, `0s`; a bare
/// number is refused): the one parser of durations of the API, the CLI and the flags.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, BadValue> {
    let d: kube::core::Duration = s
        .parse()
        .map_err(|e| BadValue::NotDuration(s.to_string(), format!("{e}")))?;
    if d.is_negative() {
        return Err(BadValue::NegativeDuration(s.to_string()));
    }
    Ok(d.into())
}

pub use super::pod::selector_matches;

/// The string form of a label selector (`a=b,c in (d,e)`), as the scale subresource wants it.
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or(&[]).join(",");
        parts.push(match req.operator.as_str() {
            "In" => format!("{} in ({values})", req.key),
            "NotIn" => format!("{} notin ({values})", req.key),
            "Exists" => req.key.clone(),
            "DoesNotExist" => format!("!{}", req.key),
            other => format!("{} {other} ({values})", req.key),
        });
    }
    parts.join(",")
}

#[cfg(test)]
pub(crate) mod tests;
