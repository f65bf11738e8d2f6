//! `spec.workloadRef`: the pod template taken from a Deployment, and that Deployment scaled down
//! as the Rollout's instances take over.
//!
//! * The update revision is made from the Deployment's `spec.template` (its hash, so a change
//!   to that template is a new revision, rolled out in batches like a change of the Rollout's
//!   own). The Rollout keeps its own selector, which must select the template's labels.
//! * A Deployment that is missing or cannot be read makes the spec invalid: `InvalidSpec`
//!   naming it, and nothing else happens (no pod is created or deleted).
//! * Scale-down (`scaleDown`), computed by [`scale_down_target`]: before the first scale-down
//!   the Deployment's `spec.replicas` are recorded in `status.workloadRef.originalReplicas`;
//!   only a plan that reads them back from the stored status scales
//!   ([`Action::ScaleWorkload`]), so a restarted controller or a stale cache never mistakes a
//!   Deployment already scaled down for its original size. (The status, not an annotation:
//!   the controller never writes a Rollout's spec or metadata, nor needs the right to.)

use std::sync::Arc;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::{Action, EventType, Planner};
use crate::api::rollout::{
    validate_template_labels, EventReason, RolloutPhase, RolloutStatus, ScaleDown, TemplateSource, WorkloadRefStatus,
};
use crate::api::Invalid;

/// The Deployment of `spec.workloadRef`, as the shell read it: what the planner uses of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedWorkload {
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// `spec.replicas` (1 when unset, as the API server defaults it).
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
    /// `spec.template`: the pod template the Rollout rolls out.
    pub template: Arc<PodTemplateSpec>,
}

/// What the shell found of the Deployment of `spec.workloadRef`.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkloadRead {
    Found(ObservedWorkload),
    /// No Deployment of that name in the Rollout's namespace.
    NotFound,
    /// It cannot be read: why.
    Unreadable(String),
}

/// The `spec.replicas` the Deployment should have, or None to leave it alone. `observed` is
/// its `spec.replicas`, `original` those before any scale-down, `available` the Rollout's
/// available instances, `healthy` whether the Rollout is Healthy on its update revision.
///
/// * `never`: left alone.
/// * `onsuccess`: 0 once the Rollout is healthy.
/// * `progressively`: `original - available` (at least 0): the Deployment gives up a pod for
///   each instance of the Rollout that serves, and gets it back if that instance stops serving
///   during the migration. The two together never serve fewer pods than the Deployment did: a
///   Rollout of fewer instances (or of none yet) leaves the Deployment the rest, and scaling
///   the Rollout up finishes the migration.
///
/// A Deployment at 0 stays there whatever the mode: the migration is over, and scaling it up
/// again would start pods of its (maybe newer) template outside the Rollout's batches.
pub fn scale_down_target(mode: ScaleDown, observed: i32, original: i32, available: i32, healthy: bool) -> Option<i32> {
    if observed <= 0 {
        return None;
    }
    match mode {
        ScaleDown::Never => None,
        ScaleDown::OnSuccess => healthy.then_some(0),
        ScaleDown::Progressively => Some(original.saturating_sub(available.max(0)).max(0)),
    }
}

impl Planner<'_> {
    /// The Deployment of `spec.workloadRef`, when it was read.
    pub(super) fn workload(&self) -> Option<&ObservedWorkload> {
        self.spec.workload_ref.as_ref()?;
        match self.input.workload.as_ref()? {
            WorkloadRead::Found(d) => Some(d),
            _ => None,
        }
    }

    /// The pod template rolled out: the Deployment's with `spec.workloadRef` (empty while it
    /// cannot be read: the spec is invalid then, and nothing is made from it), else
    /// `spec.template`.
    pub(super) fn pod_template(&self) -> &PodTemplateSpec {
        match self.workload() {
            Some(d) => &d.template,
            None => &self.spec.template,
        }
    }

    /// What is wrong with `spec.workloadRef` that only its Deployment shows: it is missing or
    /// unreadable, or its template's labels are not selected.
    pub(super) fn workload_problems(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        let Some(r) = self.spec.workload_ref.as_ref().filter(|r| r.is_supported()) else {
            // An unsupported kind is reported by the spec's own validation.
            return errors;
        };
        let ns = &self.input.namespace;
        let Some(read) = &self.input.workload else {
            errors.push(Invalid::at(
                "spec.workloadRef",
                format!("Deployment {} was not read", r.name),
            ));
            return errors;
        };
        match read {
            WorkloadRead::Found(d) => {
                validate_template_labels(self.spec, &d.template, TemplateSource::Deployment(&d.name), &mut errors);
            }
            WorkloadRead::NotFound => errors.push(Invalid::new(
                "spec.workloadRef",
                format!(
                    "names Deployment {}, which is not in namespace {ns}; create it or fix spec.workloadRef.name",
                    r.name
                ),
            )),
            WorkloadRead::Unreadable(why) => errors.push(Invalid::at(
                "spec.workloadRef",
                format!("Deployment {} cannot be read: {why}", r.name),
            )),
        }
        errors
    }

    /// Records the Deployment's original replicas, or scales it toward [`scale_down_target`];
    /// `status.workloadRef` says what was seen and done. Runs on a valid spec only, after the
    /// status is planned (the scale-down follows the available instances it counts).
    pub(super) fn scale_workload(&mut self, status: &mut RolloutStatus) {
        let (Some(r), Some(d)) = (self.spec.workload_ref.clone(), self.workload().cloned()) else {
            status.workload_ref = None;
            return;
        };
        // Recorded for this Deployment by an earlier plan, as stored.
        let recorded = (self.prior.workload_ref.as_ref())
            .filter(|w| w.name == d.name)
            .and_then(|w| w.original_replicas);
        let mut replicas = d.replicas;
        let mut original = recorded;
        match recorded {
            // Recorded first, scaled by a later plan that reads it back (see the module docs).
            None if r.scale_down != ScaleDown::Never => original = Some(d.replicas),
            None => {}
            Some(original) => {
                let healthy = status.phase == Some(RolloutPhase::Healthy);
                let available = status.available_replicas;
                let target = scale_down_target(r.scale_down, d.replicas, original, available, healthy);
                if let Some(target) = target.filter(|t| *t != d.replicas) {
                    let why = match r.scale_down {
                        ScaleDown::OnSuccess => "the Rollout is Healthy".to_string(),
                        _ => format!(
                            "{available} of the Rollout's instances available, {original} replicas before the migration"
                        ),
                    };
                    self.scale_to(&d, target, &why);
                    replicas = target;
                }
            }
        }
        status.workload_ref = Some(WorkloadRefStatus {
            name: d.name.clone(),
            observed_generation: d.generation,
            replicas,
            available_replicas: d.available_replicas,
            original_replicas: original,
        });
    }

    /// Scale Deployment `d` to `target`, with an Event unless the stored status says this
    /// controller already did (the cache has not shown that write yet).
    fn scale_to(&mut self, d: &ObservedWorkload, target: i32, why: &str) {
        self.actions.push(Action::ScaleWorkload {
            name: d.name.clone(),
            replicas: target,
        });
        let already = self
            .prior
            .workload_ref
            .as_ref()
            .is_some_and(|w| w.name == d.name && w.replicas == target);
        if already {
            return;
        }
        self.event(
            EventType::Normal,
            EventReason::WorkloadScaled,
            format!(
                "scaled Deployment {} from {} to {target} replicas: {why}",
                d.name, d.replicas
            ),
        );
    }
}
