//! Spec validation that needs the Rollout's name and revision history (pins), and the plan for
//! an invalid spec: report the problems and change nothing, so a spec is never half-applied.

use std::collections::BTreeMap;

use super::status::CONDITION_INVALID_SPEC;
use super::{parse_slot, slot_name, EventType, Plan, Planner, RevisionInfo};
use crate::api::rollout::{selector_string, validate, RolloutPhase};

impl Planner<'_> {
    /// The pinned slots and their revisions, or every problem with the spec. `target` is the
    /// update revision, which pins of `spec.version` use.
    pub(super) fn validate(&self, target: &RevisionInfo) -> Result<BTreeMap<i32, RevisionInfo>, Vec<String>> {
        let input = self.input;
        let spec = self.spec;
        let name = input.name.as_str();

        // Validation, including what needs the name and the history.
        let mut errors = validate(spec).err().unwrap_or_default();
        let max_ordinal = (self.replicas() - 1).max(0);
        if slot_name(name, max_ordinal).len() > 63 {
            errors.push(format!(
                "instance names like {} exceed 63 characters; use a shorter Rollout name",
                slot_name(name, max_ordinal)
            ));
        }
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
                errors.push(format!(
                    "spec.pins[{i}].version {:?} is not in the revision history (known: {}); pin one of those",
                    pin.version,
                    if versions.is_empty() {
                        "none".to_string()
                    } else {
                        versions.join(", ")
                    }
                ));
            }
            for instance in &pin.instances {
                match parse_slot(name, instance) {
                    Some(slot) if slot < self.replicas() => {
                        if let Some(rev) = &revision {
                            pins.insert(slot, rev.clone());
                        }
                    }
                    _ => errors.push(format!(
                        "spec.pins[{i}] names instance {instance:?}, which is not one of {name}-0 .. {name}-{}; fix the name or the replicas",
                        self.replicas() - 1
                    )),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(pins)
    }

    /// The plan for an invalid spec: report, move nothing.
    pub(super) fn invalid(mut self, errors: Vec<String>) -> Plan {
        let message = errors.join("; ");
        let already = self
            .prior
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_INVALID_SPEC && c.status == "True" && c.message == message);
        if !already {
            self.event(EventType::Warning, "InvalidSpec", message.clone());
        }
        let mut status = self.prior.clone();
        status.observed_generation = Some(self.input.generation);
        status.phase = Some(RolloutPhase::Degraded);
        status.message = Some(format!("invalid spec, nothing is changed: {message}"));
        status.selector = Some(selector_string(&self.spec.selector));
        let mut changes: Vec<(&str, (&str, &str, String))> = self
            .prior
            .conditions
            .iter()
            .filter(|c| c.type_ != CONDITION_INVALID_SPEC)
            .map(|c| {
                (
                    c.type_.as_str(),
                    (c.status.as_str(), c.reason.as_str(), c.message.clone()),
                )
            })
            .collect();
        changes.push((CONDITION_INVALID_SPEC, ("True", "InvalidSpec", message)));
        status.conditions = self.conditions(changes);
        if self.prior.phase != Some(RolloutPhase::Degraded) {
            let from = self
                .prior
                .phase
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".to_string());
            self.event(EventType::Warning, "PhaseChanged", format!("phase {from} -> Degraded"));
        }
        self.actions.clear();
        self.wakeups.clear();
        self.finish(status)
    }
}
