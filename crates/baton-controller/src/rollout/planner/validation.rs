//! Spec validation that needs the Rollout's name and revision history (pins), and the plan for
//! an invalid spec: report the problems and change nothing, so a spec is never half-applied.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::conditions::{conditions_at, gate_conditions, phase_change_event, Cond};
use super::targets::not_an_instance;
use super::{parse_slot, slot_name, EventType, Plan, PlanEvent, Planner, RevisionInfo};
use crate::api::invalid::{self, Invalid};
use crate::api::rollout::{
    reasons, selector_string, validate, ConditionStatus, ConditionType, EventReason, Pin, Reason, RolloutPhase,
    RolloutStatus,
};

/// The problem with Rollout `name`'s instance names, if the last of `replicas` is longer than a
/// label value may be.
pub fn long_instance_names(name: &str, replicas: i32) -> Option<Invalid> {
    let last = slot_name(name, (replicas - 1).max(0));
    (last.len() > 63).then(|| {
        Invalid::at(
            "metadata.name",
            format!("instance names like {last} exceed 63 characters; use a shorter Rollout name"),
        )
    })
}

/// The slots pin `i` names among the `replicas` instances of Rollout `name`, and a problem for
/// each instance it names that is not one of them.
pub fn pin_slots(name: &str, replicas: i32, i: usize, pin: &Pin) -> (Vec<i32>, Vec<Invalid>) {
    let mut slots = Vec::new();
    let mut errors = Vec::new();
    for instance in &pin.instances {
        match parse_slot(name, instance) {
            Some(slot) if slot < replicas => slots.push(slot),
            _ => errors.push(not_an_instance(name, replicas, &format!("spec.pins[{i}]"), instance)),
        }
    }
    (slots, errors)
}

impl Planner<'_> {
    /// The pinned slots and their revisions, or every problem with the spec. `target` is the
    /// update revision, which pins of `spec.version` use.
    pub(super) fn validate(&self, target: &RevisionInfo) -> Result<BTreeMap<i32, RevisionInfo>, Vec<Invalid>> {
        let input = self.input;
        let spec = self.spec;
        let name = input.name.as_str();

        // Validation, including what needs the name and the history.
        let mut errors = validate(spec).err().unwrap_or_default();
        errors.extend(long_instance_names(name, self.replicas()));
        let mut pins: BTreeMap<i32, RevisionInfo> = BTreeMap::new();
        for (i, pin) in spec.pins.iter().enumerate() {
            let revision = if pin.version == spec.version {
                Some(target.clone())
            } else {
                input
                    .revisions
                    .iter()
                    .filter(|r| r.version == pin.version)
                    .max_by_key(|r| r.revision)
                    .cloned()
            };
            if revision.is_none() && !pin.version.trim().is_empty() {
                let mut versions: Vec<&str> = input.revisions.iter().map(|r| r.version.as_str()).collect();
                versions.sort();
                versions.dedup();
                let known = if versions.is_empty() {
                    "none".to_string()
                } else {
                    versions.join(", ")
                };
                errors.push(Invalid::new(
                    format!("spec.pins[{i}].version"),
                    format!(
                        "{:?} is not in the revision history (known: {known}); pin one of those",
                        pin.version
                    ),
                ));
            }
            let (slots, wrong) = pin_slots(name, self.replicas(), i, pin);
            errors.extend(wrong);
            if let Some(rev) = &revision {
                pins.extend(slots.into_iter().map(|slot| (slot, rev.clone())));
            }
        }
        errors.extend(self.target_slots(&pins).1);
        errors.extend(self.workload_problems());
        if let Some(refused) = &input.rejected {
            errors.push(self.refusal(refused, &target.hash));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(pins)
    }

    /// What the API server's refusal (422) of an object made from this spec says, and what to
    /// fix: the Job of a hook or `job` check (named in the message, as kube-apiserver names the
    /// object it refuses) comes from its template, anything else from the pod template.
    fn refusal(&self, refused: &str, hash: &str) -> Invalid {
        use super::hooks::{check_job_name, hook_job_name};
        use crate::api::rollout::hooks::hook_names::{POST_ROLLOUT, PRE_ROLLOUT};
        let name = self.input.name.as_str();
        let names = |object: &str| refused.contains(&format!("\"{object}\""));
        let hooks = [
            (PRE_ROLLOUT, self.spec.hooks.pre_rollout.is_some()),
            (POST_ROLLOUT, self.spec.hooks.post_rollout.is_some()),
        ];
        for (hook, set) in hooks {
            if set && names(&hook_job_name(name, hash, hook)) {
                return Invalid::at(
                    format!("spec.hooks.{hook}.template"),
                    format!("the API server refuses the Job of hook {hook}: {refused}; fix spec.hooks.{hook}.template"),
                );
            }
        }
        for (i, check) in self.spec.checks.iter().enumerate() {
            // `<rollout>-<hash>-<check>-<phase>`, the phase a batch number or `bake`.
            let prefix = format!("\"{}", check_job_name(name, hash, &check.name, ""));
            let named = refused.match_indices(&prefix).any(|(at, _)| {
                let rest = &refused[at + prefix.len()..];
                let phase = rest.split('"').next().unwrap_or("");
                rest.len() > phase.len()
                    && (phase == "bake" || (!phase.is_empty() && phase.bytes().all(|b| b.is_ascii_digit())))
            });
            if check.job.is_some() && named {
                return Invalid::at(
                    format!("spec.checks[{i}].job.template"),
                    format!(
                        "the API server refuses the Job of check {}: {refused}; fix spec.checks[{i}].job.template",
                        check.name
                    ),
                );
            }
        }
        match self.workload() {
            Some(d) => Invalid::at(
                "spec.workloadRef",
                format!(
                    "the API server refuses the pods of this spec: {refused}; fix the pod template of Deployment {} or spec.version",
                    d.name
                ),
            ),
            None => Invalid::at(
                "spec.template",
                format!("the API server refuses the pods of this spec: {refused}; fix spec.template or spec.version"),
            ),
        }
    }

    /// The plan for an invalid spec: report, move nothing.
    pub(super) fn invalid(mut self, errors: Vec<Invalid>) -> Plan {
        let selector = Some(selector_string(&self.spec.selector));
        let (status, events) = invalid_report(
            &self.prior,
            self.input.generation,
            self.now,
            selector,
            bounded_message(&errors),
        );
        self.events.extend(events);
        self.actions.clear();
        self.wakeups.clear();
        self.check_runs.clear();
        self.finish(status)
    }
}

/// Most problems named in one message; the rest are counted.
const MAX_PROBLEMS: usize = 10;
/// Longest message (bytes): a condition's message is at most 32,768 characters and an Event's
/// note 1 kB; a spec with many or huge bad values must still get its report written.
const MAX_MESSAGE: usize = 4096;

/// The problems joined with `; `, bounded in count and length whatever the spec holds.
fn bounded_message(errors: &[Invalid]) -> String {
    let mut message = invalid::join(&errors[..errors.len().min(MAX_PROBLEMS)], "; ");
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    if errors.len() > MAX_PROBLEMS {
        message.push_str(&format!("; and {} more problems", errors.len() - MAX_PROBLEMS));
    }
    message
}

/// Status and events of an invalid spec: `InvalidSpec` True with `message` (a Warning event
/// when that is new), phase `Degraded`, the gate conditions for this generation; `Available`
/// and `Progressing` still describe the pods, as observed at this generation.
fn invalid_report(
    prior: &RolloutStatus,
    generation: i64,
    now: Timestamp,
    selector: Option<String>,
    message: String,
) -> (RolloutStatus, Vec<PlanEvent>) {
    let mut events = Vec::new();
    let already = reasons::find(&prior.conditions, ConditionType::InvalidSpec)
        .is_some_and(|c| c.status == ConditionStatus::True.as_str() && c.message == message);
    if !already {
        events.push(PlanEvent {
            type_: EventType::Warning,
            reason: EventReason::InvalidSpec,
            identity: message.clone(),
            message: message.clone(),
            batch: None,
        });
    }
    let mut status = prior.clone();
    let summary = format!("invalid spec, nothing is changed: {message}");
    status.observed_generation = Some(generation);
    status.phase = Some(RolloutPhase::Degraded);
    if selector.is_some() {
        status.selector = selector;
    }
    let mut wanted: Vec<(ConditionType, Cond)> =
        gate_conditions(RolloutPhase::Degraded, Reason::InvalidSpec, &summary).into();
    wanted.push((
        ConditionType::InvalidSpec,
        Cond {
            status: ConditionStatus::True,
            reason: Reason::InvalidSpec,
            message,
        },
    ));
    let mut conditions = conditions_at(prior, now, generation, wanted);
    for kept in [ConditionType::Available, ConditionType::Progressing] {
        if let Some(c) = reasons::find(&prior.conditions, kept) {
            conditions.push(Condition {
                observed_generation: Some(generation),
                ..c.clone()
            });
        }
    }
    status.conditions = conditions;
    status.message = Some(summary);
    events.extend(phase_change_event(prior.phase, RolloutPhase::Degraded));
    (status, events)
}

/// What is wrong with a stored Rollout that does not decode (`error`, serde's words).
pub fn undecodable(error: &str) -> Invalid {
    Invalid::at(
        "spec",
        format!("the stored Rollout does not decode ({error}); set each field within its range and apply again"),
    )
}

/// The plan for a Rollout whose stored object does not decode (a value the API server accepted
/// that does not fit the type, e.g. an integer beyond `i32`): `InvalidSpec` with `error`, no
/// action. `prior` is the stored status when it decodes.
pub fn plan_undecodable(generation: i64, prior: Option<RolloutStatus>, now: Timestamp, error: &str) -> Plan {
    let prior = prior.unwrap_or_default();
    let message = bounded_message(&[undecodable(error)]);
    let (status, events) = invalid_report(&prior, generation, now, None, message);
    Plan {
        actions: Vec::new(),
        status,
        events,
        requeue_after: None,
        checks: Vec::new(),
    }
}
