//! `spec.workloadRef`: a Rollout that takes its pod template from an existing Deployment (how a
//! team moves a Deployment to a Rollout without rewriting its manifest), and how that
//! Deployment is scaled down as the Rollout's instances take over.
//!
//! Exactly one of `spec.template` and `spec.workloadRef` is set (two CEL rules on the spec, and
//! [`validate_workload_ref`] for the controller). The Rollout keeps its own selector: the pods it
//! makes carry the Deployment template's labels plus the Rollout's own, and are owned by the
//! Rollout, so the Deployment's ReplicaSets never adopt them.

use crate::Invalid;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `apiVersion` of the only workload a Rollout can take its pod template from.
pub const DEPLOYMENT_API_VERSION: &str = "apps/v1";
/// Its kind.
pub const DEPLOYMENT_KIND: &str = "Deployment";

/// Neither `spec.template` nor `spec.workloadRef` is refused by the API server.
pub const ONE_OF_RULE: &str = "has(self.template) || has(self.workloadRef)";
/// What [`ONE_OF_RULE`] answers.
pub const ONE_OF_MESSAGE: &str =
    "spec.template or spec.workloadRef is required: give the pod template, or name the Deployment to take it from";
/// Both are refused too: which template would roll out would be ambiguous.
pub const NOT_BOTH_RULE: &str = "!(has(self.template) && has(self.workloadRef))";
/// What [`NOT_BOTH_RULE`] answers.
pub const NOT_BOTH_MESSAGE: &str =
    "spec.template and spec.workloadRef are both set: keep the pod template or the Deployment to take it from, not both";

/// The Deployment whose `spec.template` a Rollout rolls out instead of its own
/// `spec.template`. A change to that template starts a new revision, rolled out in batches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `apps/v1` (the only one supported).
    #[schemars(extend("enum" = [DEPLOYMENT_API_VERSION]))]
    pub api_version: String,
    /// `Deployment` (the only kind supported).
    #[schemars(extend("enum" = [DEPLOYMENT_KIND]))]
    pub kind: String,
    /// The Deployment's name, in the Rollout's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// How the Deployment is scaled down as the Rollout takes over: `never`, `onsuccess` (to 0
    /// once the Rollout is Healthy) or `progressively` (by as many pods as the Rollout has
    /// available instances).
    #[serde(default)]
    pub scale_down: ScaleDown,
}

impl WorkloadRef {
    /// Does it name the one kind of workload the controller reads?
    pub fn is_supported(&self) -> bool {
        self.api_version == DEPLOYMENT_API_VERSION && self.kind == DEPLOYMENT_KIND
    }
}

/// How the Deployment of `spec.workloadRef` is scaled down (Argo Rollouts' words).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ScaleDown {
    /// Leave the Deployment alone: both run side by side until it is scaled down by hand.
    #[serde(rename = "never")]
    Never,
    /// Scale the Deployment to 0 once the Rollout is Healthy on its update revision.
    #[serde(rename = "onsuccess")]
    OnSuccess,
    /// Scale the Deployment down by as many pods as the Rollout has available instances
    /// (`original replicas - available`, at least 0): the two together never serve fewer
    /// pods than the Deployment did.
    #[default]
    #[serde(rename = "progressively")]
    Progressively,
}

/// What the controller saw of, and did to, the Deployment of `spec.workloadRef`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRefStatus {
    /// The Deployment's name.
    pub name: String,
    /// Its `metadata.generation` whose pod template the update revision was made from.
    #[serde(default)]
    pub observed_generation: i64,
    /// Its `spec.replicas`, as this controller last set or saw it.
    #[serde(default)]
    pub replicas: i32,
    /// Its available pods (`status.availableReplicas`).
    #[serde(default)]
    pub available_replicas: i32,
    /// Its `spec.replicas` before the Rollout scaled it down: recorded here before the first
    /// scale-down, which is computed from it (never from a Deployment already scaled down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replicas: Option<i32>,
}

/// The schema of `spec.workloadRef`, not nullable, so that no stored object holds a null the CEL
/// rules' `has()` would count as set. kube-apiserver drops a `workloadRef: null` (as a Helm
/// value left empty renders) from a create, an update or a client-side apply, but refuses it in
/// a server-side apply (422 `must be of type object`): leave the field out there.
pub(super) fn workload_ref_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<WorkloadRef>()
}

/// `spec.template` is unset: absent from the object (what the CEL rules see), or empty.
pub fn template_is_unset(template: &PodTemplateSpec) -> bool {
    template.metadata.is_none() && template.spec.is_none()
}

/// [`ONE_OF_MESSAGE`] as a mistake of `spec.template` (the message names both fields).
fn one_of() -> Invalid {
    let reason = ONE_OF_MESSAGE.strip_prefix("spec.template ").unwrap_or(ONE_OF_MESSAGE);
    Invalid::new("spec.template", reason)
}

/// [`NOT_BOTH_MESSAGE`] as a mistake of `spec.template` (the message names both fields).
fn not_both() -> Invalid {
    let reason = NOT_BOTH_MESSAGE
        .strip_prefix("spec.template ")
        .unwrap_or(NOT_BOTH_MESSAGE);
    Invalid::new("spec.template", reason)
}

/// `spec.workloadRef` against `spec.template`, as the CEL rules and the schema check them (the
/// Deployment's own template is checked by the planner, which reads it).
pub fn validate_workload_ref(
    workload_ref: Option<&WorkloadRef>,
    template: &PodTemplateSpec,
    errors: &mut Vec<Invalid>,
) {
    let Some(w) = workload_ref else {
        if template_is_unset(template) {
            errors.push(one_of());
        }
        return;
    };
    if !template_is_unset(template) {
        errors.push(not_both());
    }
    if w.api_version != DEPLOYMENT_API_VERSION || w.kind != DEPLOYMENT_KIND {
        errors.push(Invalid::new(
            "spec.workloadRef",
            format!(
                "is {} {}: only {DEPLOYMENT_API_VERSION} {DEPLOYMENT_KIND} is supported",
                w.api_version, w.kind
            ),
        ));
    }
    if w.name.trim().is_empty() {
        errors.push(Invalid::new(
            "spec.workloadRef.name",
            "is empty; name the Deployment to take the pod template from",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::fixtures::sample_spec;
    use crate::rollout::{validate, RolloutSpec};

    fn with_ref(kind: &str, name: &str) -> RolloutSpec {
        let mut spec = sample_spec();
        spec.template = PodTemplateSpec::default();
        spec.workload_ref = Some(WorkloadRef {
            api_version: DEPLOYMENT_API_VERSION.into(),
            kind: kind.into(),
            name: name.into(),
            scale_down: ScaleDown::default(),
        });
        spec
    }

    #[test]
    fn a_workload_ref_replaces_the_template() {
        assert_eq!(validate(&with_ref(DEPLOYMENT_KIND, "web")), Ok(()));
    }

    #[test]
    fn exactly_one_of_template_and_workload_ref() {
        let mut both = with_ref(DEPLOYMENT_KIND, "web");
        both.template = sample_spec().template;
        assert_eq!(
            validate(&both).map_err(|e| e[0].to_string()),
            Err(NOT_BOTH_MESSAGE.to_string())
        );
        let mut neither = sample_spec();
        neither.template = PodTemplateSpec::default();
        assert_eq!(
            validate(&neither).map_err(|e| e[0].to_string()),
            Err(ONE_OF_MESSAGE.to_string())
        );
    }

    #[test]
    fn only_a_deployment_is_supported() {
        let errors = validate(&with_ref("StatefulSet", "web"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        assert_eq!(
            errors,
            ["spec.workloadRef is apps/v1 StatefulSet: only apps/v1 Deployment is supported"]
        );
        assert!(!with_ref("StatefulSet", "web").workload_ref.unwrap().is_supported());
        let errors = validate(&with_ref(DEPLOYMENT_KIND, " "))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        assert!(errors[0].contains("spec.workloadRef.name is empty"), "{errors:?}");
    }

    #[test]
    fn scale_down_defaults_to_progressively_and_spells_like_argo() {
        let r: WorkloadRef =
            serde_json::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}))
                .unwrap();
        assert_eq!(r.scale_down, ScaleDown::Progressively);
        for (mode, word) in [
            (ScaleDown::Never, "never"),
            (ScaleDown::OnSuccess, "onsuccess"),
            (ScaleDown::Progressively, "progressively"),
        ] {
            assert_eq!(serde_json::to_value(mode).unwrap(), serde_json::json!(word));
        }
    }

    #[test]
    fn an_unset_template_is_left_out_of_the_object() {
        let spec = with_ref(DEPLOYMENT_KIND, "web");
        let value = serde_json::to_value(&spec).unwrap();
        assert!(value.get("template").is_none(), "{value}");
        let back: RolloutSpec = serde_json::from_value(value).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn the_crd_asks_for_one_of_them() {
        let crd = serde_json::to_value(crate::rollout::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let required: Vec<&str> = spec["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(!required.contains(&"template"), "{required:?}");
        let rules: Vec<&str> = spec["x-kubernetes-validations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["rule"].as_str())
            .collect();
        assert!(
            rules.contains(&ONE_OF_RULE) && rules.contains(&NOT_BOTH_RULE),
            "{rules:?}"
        );
        let props = &spec["properties"];
        assert!(props["template"].get("default").is_none(), "{}", props["template"]);
        assert!(
            props["workloadRef"].get("nullable").is_none(),
            "{}",
            props["workloadRef"]
        );
        let w = &props["workloadRef"]["properties"];
        assert_eq!(w["kind"]["enum"], serde_json::json!([DEPLOYMENT_KIND]));
        assert_eq!(w["apiVersion"]["enum"], serde_json::json!([DEPLOYMENT_API_VERSION]));
        assert_eq!(w["scaleDown"]["default"], serde_json::json!("progressively"));
    }
}
