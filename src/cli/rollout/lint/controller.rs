//! What the controllers refuse in an object the API server accepted, found offline.
//!
//! * The Rollout planner's validation (`rollout::planner`, `validation.rs`): [`validate`], and
//!   the checks that need the Rollout's name (instance names; the instances pins and targets
//!   name). Not those that read the cluster: pinned versions against the revision history (a
//!   pin is taken to name a version the history has) and the Deployment of `workloadRef`.
//! * The objects the Rollout controller makes from a spec: a pod of its pod template, the Jobs
//!   of its hooks and `job` checks. The API server's refusal of one (a container without an
//!   image, a label value that is not one) is an invalid spec too, so `lint` dry-runs them
//!   ([`made_objects`]) and reads a refusal back as the field of the Rollout it comes from.
//! * The ListenerSet reconciler's validation: its name and [`listenerset::validate`].
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use serde_json::Value;

use super::Finding;
use crate::api::listenerset::{self, is_label_value, ListenerSetSpec};
use crate::api::rollout::hooks::hook_names::{POST_ROLLOUT, PRE_ROLLOUT};
use crate::api::rollout::{labels, validate, workload_ref, JobTemplate, Rollout, RolloutSpec, MAX_REPLICAS};
use crate::api::Invalid;
use crate::rollout::controller::build_pod;
use crate::rollout::jobs::build_job;
use crate::rollout::planner::{
    check_job_name, effective_template, hook_job_name, job_labels, long_instance_names, pin_slots, pod_labels_from,
    pod_name, revision_hash, target_slots,
};

/// What the Rollout planner would report as an invalid spec, in its words, except what needs
/// the cluster (see the module's documentation): its own checks, with every pinned version taken
/// to be in the history.
pub fn rollout_problems(name: &str, spec: &RolloutSpec) -> Vec<Invalid> {
    let mut errors = validate(spec).err().unwrap_or_default();
    let replicas = spec.replicas.clamp(0, MAX_REPLICAS);
    errors.extend(long_instance_names(name, replicas));
    let mut pinned = BTreeSet::new();
    for (i, pin) in spec.pins.iter().enumerate() {
        let (slots, wrong) = pin_slots(name, replicas, i, pin);
        pinned.extend(slots);
        errors.extend(wrong);
    }
    let (_, wrong) = target_slots(name, replicas, &spec.strategy.targets, |slot| pinned.contains(&slot));
    errors.extend(wrong);
    errors
}

/// What the ListenerSet reconciler would report as an invalid spec.
pub fn listenerset_problems(name: &str, spec: &ListenerSetSpec) -> Vec<Invalid> {
    let mut errors: Vec<Invalid> = listenerset::validate_name(name).err().into_iter().collect();
    errors.extend(listenerset::validate(spec).err().unwrap_or_default());
    errors
}

/// An object the Rollout controller would create, and how to read the API server's refusal of
/// it.
pub struct Made {
    /// Where it is created (the collection's path).
    pub path: String,
    pub body: Value,
    /// Field prefixes of the object and the Rollout fields they come from.
    fields: Vec<(&'static str, String)>,
    /// What is refused, in the planner's words ("the pods of this spec").
    what: String,
    /// What to fix when a refused field is none of [`Made::fields`].
    fix: String,
    /// `spec.version`, when the object carries it as a label value and it is not a valid one: the
    /// API server's refusal of that label is about `spec.version`, not the template's labels.
    bad_version: Option<String>,
}

impl Made {
    /// The API server's causes for refusing this object, each at the Rollout's field it comes
    /// from; a cause at another field in the planner's words.
    pub fn refusal(&self, causes: Vec<Finding>) -> Vec<Finding> {
        // kube-apiserver names a bad label value at `metadata.labels`, with the value quoted.
        let mut version = self
            .bad_version
            .as_ref()
            .map(|v| format!("Invalid value: {}: ", Value::String(v.clone())));
        causes
            .into_iter()
            .map(|c| {
                let of_version = c.field.as_deref() == Some("metadata.labels")
                    && version.as_ref().is_some_and(|v| c.message.starts_with(v.as_str()));
                if of_version {
                    // Once: a template label with the same bad value stays the template's.
                    version = None;
                    return Finding {
                        field: Some("spec.version".into()),
                        message: c.message,
                    };
                }
                match c.field.as_deref().and_then(|f| self.rollout_field(f)) {
                    Some(field) => Finding {
                        field: Some(field),
                        message: c.message,
                    },
                    None => Finding::plain(format!("the API server refuses {}: {c}; fix {}", self.what, self.fix)),
                }
            })
            .collect()
    }

    fn rollout_field(&self, field: &str) -> Option<String> {
        self.fields.iter().find_map(|(prefix, to)| {
            let rest = field.strip_prefix(prefix)?;
            (rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')).then(|| format!("{to}{rest}"))
        })
    }
}

/// The objects the Rollout controller would make from `rollout` in `ns`: a pod of its own pod
/// template (of the last instance, whose name is the longest), and the Job of each hook and
/// `job` check.
pub fn made_objects(rollout: &Rollout, ns: &str) -> Vec<Made> {
    let name = rollout.name_any();
    let spec = &rollout.spec;
    let template = effective_template(spec, None);
    let hash = revision_hash(&template, &spec.version);
    let owner = owner(rollout);
    let mut out = Vec::new();
    let own_template = spec.workload_ref.is_none() && !workload_ref::template_is_unset(&spec.template);
    if own_template && template.spec.is_some() {
        let slot = (spec.replicas.clamp(0, MAX_REPLICAS) - 1).max(0);
        let labels = pod_labels_from(&template, &name, slot, &hash, &spec.version);
        let pod = build_pod(ns, &pod_name(&name, slot, &hash), &labels, &template, &owner);
        out.push(Made {
            path: Pod::url_path(&(), Some(ns)),
            body: serde_json::to_value(&pod).unwrap_or(Value::Null),
            fields: vec![
                ("spec", "spec.template.spec".to_string()),
                ("metadata.labels", "spec.template.metadata.labels".to_string()),
                ("metadata.annotations", "spec.template.metadata.annotations".to_string()),
            ],
            what: "the pods of this spec".into(),
            fix: "spec.template or spec.version".into(),
            bad_version: Some(spec.version.clone()).filter(|v| !is_label_value(v)),
        });
    }
    let mut jobs: Vec<JobOf> = Vec::new();
    for (hook, job) in [
        (PRE_ROLLOUT, &spec.hooks.pre_rollout),
        (POST_ROLLOUT, &spec.hooks.post_rollout),
    ] {
        if let Some(job) = job {
            jobs.push(JobOf {
                name: hook_job_name(&name, &hash, hook),
                job,
                labels: job_labels(&name, &hash, (labels::HOOK, hook)),
                at: format!("spec.hooks.{hook}"),
                what: format!("the Job of hook {hook}"),
            });
        }
    }
    for (i, check) in spec.checks.iter().enumerate() {
        if let Some(job) = &check.job {
            jobs.push(JobOf {
                name: check_job_name(&name, &hash, &check.name, "1"),
                job,
                labels: job_labels(&name, &hash, (labels::CHECK, &check.name)),
                at: format!("spec.checks[{i}].job"),
                what: format!("the Job of check {}", check.name),
            });
        }
    }
    for j in jobs {
        let body = build_job(ns, &j.name, &j.labels, j.job, &owner);
        out.push(Made {
            path: Job::url_path(&(), Some(ns)),
            body: serde_json::to_value(&body).unwrap_or(Value::Null),
            fields: vec![("spec.template", format!("{}.template", j.at))],
            what: j.what,
            fix: format!("{}.template", j.at),
            bad_version: None,
        });
    }
    out
}

/// A Job the controller would make: its name, template and labels, the Rollout field of the
/// template, and the planner's name for it.
struct JobOf<'a> {
    name: String,
    job: &'a JobTemplate,
    labels: BTreeMap<String, String>,
    at: String,
    what: String,
}

/// The owner reference the controller puts on what it makes (the uid is the dry run's).
fn owner(rollout: &Rollout) -> OwnerReference {
    rollout.controller_owner_ref(&()).unwrap_or_else(|| OwnerReference {
        api_version: Rollout::api_version(&()).into_owned(),
        kind: Rollout::kind(&()).into_owned(),
        name: rollout.name_any(),
        uid: uuid::Uuid::new_v4().to_string(),
        controller: Some(true),
        ..OwnerReference::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(extra: Value) -> RolloutSpec {
        let mut v = json!({
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "version": "v1",
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:v1"}]}},
        });
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_valid_spec_has_no_problems() {
        assert_eq!(rollout_problems("web", &spec(json!({}))), Vec::new());
    }

    #[test]
    fn pins_and_targets_must_name_instances_and_not_the_same_one() {
        let s = spec(json!({
            "pins": [{"instances": ["web-1", "web-7"], "version": "v0"}],
            "strategy": {"batches": [1, "100%"], "targets": [{"batch": 1, "instances": ["web-1"]}]},
        }));
        let problems: Vec<String> = rollout_problems("web", &s).iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("spec.pins[0] names instance \"web-7\", which is not one of web-0 .. web-2"));
        assert!(problems[1].starts_with("spec.strategy.targets[0] names instance web-1, which spec.pins holds"));
    }

    #[test]
    fn long_names_make_instance_names_too_long() {
        let name = "a".repeat(62);
        let problems: Vec<String> = (rollout_problems(&name, &spec(json!({"replicas": 10}))).iter())
            .map(ToString::to_string)
            .collect();
        assert!(problems[0].contains("exceed 63 characters"), "{problems:?}");
    }

    #[test]
    fn a_refused_label_value_that_is_the_version_is_spec_version_s() {
        let mut s = spec(json!({}));
        s.version = "1.0 beta".into();
        let made = made_objects(&Rollout::new("web", s), "default");
        let refused = |value: &str| Finding {
            field: Some("metadata.labels".into()),
            message: format!("Invalid value: \"{value}\": a valid label must be …"),
        };
        let found = made[0].refusal(vec![refused("1.0 beta"), refused("x y")]);
        assert_eq!(
            found[0].to_string(),
            "spec.version: Invalid value: \"1.0 beta\": a valid label must be …"
        );
        assert_eq!(
            found[1].to_string(),
            "spec.template.metadata.labels: Invalid value: \"x y\": a valid label must be …"
        );
    }

    #[test]
    fn a_refused_field_of_the_pod_is_the_template_s() {
        let rollout = Rollout::new("web", spec(json!({})));
        let made = made_objects(&rollout, "default");
        assert_eq!(made.len(), 1);
        let found = made[0].refusal(vec![
            Finding {
                field: Some("spec.containers[0].image".into()),
                message: "Required value".into(),
            },
            Finding {
                field: Some("metadata.name".into()),
                message: "Invalid value".into(),
            },
        ]);
        assert_eq!(
            found[0].to_string(),
            "spec.template.spec.containers[0].image: Required value"
        );
        assert!(found[1].to_string().starts_with(
            "the API server refuses the pods of this spec: metadata.name: Invalid value; fix spec.template"
        ));
    }
}
