//! Hooks (`spec.hooks`): Jobs run around a rollout — `preRollout` before the first batch of each
//! new update revision (an expand migration, a backup), `postRollout` after its last batch is
//! healthy (a contract migration, a smoke test) — and the Job of a `job` check. The semantics are
//! in docs/rollouts.md ("Hooks"); the planner decides, the controller's shell creates the Jobs.
//!
//! A hook's pod template is kept out of the CRD's schema beyond what the controller relies on
//! (`restartPolicy`, at least one container): a second and third full `PodTemplateSpec` schema
//! would push the CRD past the 262,144-byte limit of client-side `kubectl apply`. The API server
//! validates the template when the controller creates the Job; its 422 becomes `InvalidSpec`.

use crate::Invalid;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Values of label [`super::labels::HOOK`] on a hook's Job.
pub mod hook_names {
    /// Runs before the first batch of a new update revision.
    pub const PRE_ROLLOUT: &str = "preRollout";
    /// Runs after the last batch of the update revision is healthy, before the bake.
    pub const POST_ROLLOUT: &str = "postRollout";
}

/// The Jobs run around a rollout. Boxed: a pod template is kilobytes, and a Rollout is held in
/// many futures (an unboxed one overflowed a debug build's stack in the CLI's retry).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Runs once per new update revision before its first batch; until it succeeds no instance
    /// is replaced, and its failure stops the rollout with nothing replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_rollout: Option<Box<JobTemplate>>,
    /// Runs once per update revision after its last batch is healthy (before the bake); the
    /// rollout completes only when it succeeds, and its failure fails the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_rollout: Option<Box<JobTemplate>>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.pre_rollout.is_none() && self.post_rollout.is_none()
    }
}

/// What a hook (or a `job` check) runs: a Job's pod template and its limits.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplate {
    /// A Job's `spec.template`: the pod to run (`restartPolicy` `Never`, the default here, or
    /// `OnFailure`).
    #[schemars(schema_with = "job_pod_template_schema")]
    pub template: PodTemplateSpec,
    /// Retries before the Job counts as failed (default 0).
    // No schema default here or below: a defaulted field nobody applied would keep the hook
    // (without its template) when a server-side apply drops `hooks`, and the API server would
    // refuse the apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: Option<i32>,
    /// Seconds the Job may run before it counts as failed (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,
}

/// Default bound on a hook Job's run.
pub const DEFAULT_ACTIVE_DEADLINE_SECONDS: i64 = 600;

impl JobTemplate {
    /// `backoffLimit`, or its default (0).
    pub fn backoff_limit(&self) -> i32 {
        self.backoff_limit.unwrap_or(0)
    }

    /// `activeDeadlineSeconds`, or its default.
    pub fn active_deadline_seconds(&self) -> i64 {
        self.active_deadline_seconds.unwrap_or(DEFAULT_ACTIVE_DEADLINE_SECONDS)
    }
}

/// The pod template of a Job, as far as the CRD checks it: a `spec` with at least one container
/// and a `restartPolicy` a Job accepts; the rest is kept as written and checked by the API
/// server when the Job is created.
fn job_pod_template_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let open = |extra: serde_json::Value| {
        let mut v = serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    let spec = open(serde_json::json!({
        "required": ["containers"],
        "properties": {
            "restartPolicy": {"type": "string", "enum": ["Never", "OnFailure"]},
            "containers": {"type": "array", "minItems": 1, "items": open(serde_json::json!({}))},
        },
    }));
    let template = open(serde_json::json!({
        "required": ["spec"],
        "properties": {"metadata": open(serde_json::json!({})), "spec": spec},
    }));
    schemars::Schema::try_from(template).unwrap_or_default()
}

/// What the schema checks, for the controller's own validation.
pub fn validate_job(at: &str, job: &JobTemplate, errors: &mut Vec<Invalid>) {
    if !(0..=10).contains(&job.backoff_limit()) {
        errors.push(Invalid::new(
            format!("{at}.backoffLimit"),
            format!("is {}; use 0..10", job.backoff_limit()),
        ));
    }
    if job.active_deadline_seconds() < 1 {
        errors.push(Invalid::new(
            format!("{at}.activeDeadlineSeconds"),
            format!("is {}; use 1 or more", job.active_deadline_seconds()),
        ));
    }
    match &job.template.spec {
        None => errors.push(Invalid::new(
            format!("{at}.template.spec"),
            "is missing; give the Job's pod its containers",
        )),
        Some(spec) => {
            if spec.containers.is_empty() {
                errors.push(Invalid::new(
                    format!("{at}.template.spec.containers"),
                    "is empty; give the Job's pod a container",
                ));
            }
            if let Some(p) = spec
                .restart_policy
                .as_deref()
                .filter(|p| !matches!(*p, "Never" | "OnFailure"))
            {
                errors.push(Invalid::new(
                    format!("{at}.template.spec.restartPolicy"),
                    format!("is {p:?}; a Job's pod needs Never or OnFailure"),
                ));
            }
        }
    }
}

/// Validates `spec.hooks`.
pub fn validate_hooks(hooks: &Hooks, errors: &mut Vec<Invalid>) {
    if let Some(h) = &hooks.pre_rollout {
        validate_job("spec.hooks.preRollout", h, errors);
    }
    if let Some(h) = &hooks.post_rollout {
        validate_job("spec.hooks.postRollout", h, errors);
    }
}
