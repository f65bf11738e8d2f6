//! Validation of a Rollout spec: what the schema's CEL rules check, plus what CEL cannot see
//! (the controller runs it too, and answers `InvalidSpec` with these messages).
use crate::Invalid;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{parse_duration, parse_percent, scaled_value, selector_matches};
use super::{Pause, RolloutSpec, MAX_REPLICAS};

/// Checks a spec the way the CEL rules do, plus what CEL cannot see. Every message says what to
/// fix. Pin instance names and pinned versions are checked by the planner (they need the
/// Rollout's name and revision history).
pub fn validate(spec: &RolloutSpec) -> Result<(), Vec<Invalid>> {
    let mut errors = Vec::new();
    if spec.replicas < 0 {
        errors.push(Invalid::new(
            "spec.replicas",
            format!("is {}; set it to 0 or more", spec.replicas),
        ));
    }
    if spec.replicas > MAX_REPLICAS {
        errors.push(Invalid::new(
            "spec.replicas",
            format!("is {}; a Rollout has at most {MAX_REPLICAS} instances", spec.replicas),
        ));
    }
    if spec.version.trim().is_empty() {
        errors.push(Invalid::new(
            "spec.version",
            "is empty; set it to the version being deployed",
        ));
    }
    validate_selector(spec, &mut errors);
    super::workload_ref::validate_workload_ref(spec.workload_ref.as_ref(), &spec.template, &mut errors);
    // With `workloadRef` the pod template is the Deployment's: the planner, which reads it,
    // checks it with [`validate_template_labels`].
    if spec.workload_ref.is_none() && !super::workload_ref::template_is_unset(&spec.template) {
        if spec.template.spec.is_none() {
            errors.push(Invalid::new(
                "spec.template.spec",
                "is missing; give the pod template its containers",
            ));
        }
        validate_template_labels(spec, &spec.template, TemplateSource::Spec, &mut errors);
    }
    validate_batches(spec, &mut errors);
    validate_strategy(spec, &mut errors);
    if spec.min_ready_seconds < 0 {
        errors.push(Invalid::new("spec.minReadySeconds", "is negative; set it to 0 or more"));
    }
    if spec.progress_deadline_seconds <= 0 {
        errors.push(Invalid::new("spec.progressDeadlineSeconds", "must be more than 0"));
    } else if spec.progress_deadline_seconds <= spec.min_ready_seconds {
        errors.push(Invalid::new(
            "spec.progressDeadlineSeconds",
            format!(
                "({}) must be more than spec.minReadySeconds ({})",
                spec.progress_deadline_seconds, spec.min_ready_seconds
            ),
        ));
    }
    if spec.revision_history_limit < 0 {
        errors.push(Invalid::new(
            "spec.revisionHistoryLimit",
            "is negative; set it to 0 or more",
        ));
    }
    validate_pins(spec, &mut errors);
    super::targets::validate_targets(&spec.strategy.targets, spec.strategy.batches.len(), &mut errors);
    if !(0..=604_800).contains(&spec.bake_seconds) {
        errors.push(Invalid::new(
            "spec.bakeSeconds",
            format!("is {}; use 0..604800 (a week)", spec.bake_seconds),
        ));
    }
    super::checks::validate_checks(&spec.checks, &mut errors);
    super::hooks::validate_hooks(&spec.hooks, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The selector is not empty.
fn validate_selector(spec: &RolloutSpec, errors: &mut Vec<Invalid>) {
    if selector_is_empty(spec) {
        errors.push(Invalid::new(
            "spec.selector",
            "is empty; set matchLabels that the pod template carries",
        ));
    }
}

fn selector_is_empty(spec: &RolloutSpec) -> bool {
    spec.selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && spec.selector.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

/// Where the pod template rolled out comes from.
#[derive(Clone, Copy, Debug)]
pub enum TemplateSource<'a> {
    /// `spec.template`.
    Spec,
    /// The Deployment of `spec.workloadRef`, of this name.
    Deployment(&'a str),
}

/// The pod template's labels carry what `spec.selector` selects (an empty selector is reported
/// on its own).
pub fn validate_template_labels(
    spec: &RolloutSpec,
    template: &PodTemplateSpec,
    source: TemplateSource<'_>,
    errors: &mut Vec<Invalid>,
) {
    if selector_is_empty(spec) {
        return;
    }
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if selector_matches(&spec.selector, &labels) {
        return;
    }
    errors.push(Invalid::new("spec.selector", match source {
        TemplateSource::Spec => {
            "does not match spec.template.metadata.labels; add the selector's labels to the template".into()
        }
        TemplateSource::Deployment(name) => format!(
            "does not match the pod template labels of Deployment {name} (its spec.template.metadata.labels); select labels its pods carry"
        ),
    }));
}

/// Batches: each a valid count or percentage, cumulative (never decreasing), at most 32.
fn validate_batches(spec: &RolloutSpec, errors: &mut Vec<Invalid>) {
    let mut previous: Option<(i32, String)> = None;
    for (i, batch) in spec.strategy.batches.iter().enumerate() {
        match scaled_value(batch, spec.replicas, true) {
            Ok(count) => {
                let shown = match batch {
                    IntOrString::Int(n) => n.to_string(),
                    IntOrString::String(s) => format!("{s:?}"),
                };
                if let Some((prev, prev_shown)) = &previous {
                    if count < *prev {
                        errors.push(Invalid::new(format!("spec.strategy.batches[{i}]"), format!("({shown} = {count} instances) is below the batch before it ({prev_shown} = {prev}); batches are cumulative and must not decrease")));
                    }
                }
                previous = Some((count, shown));
            }
            Err(e) => errors.push(Invalid::at(
                format!("spec.strategy.batches[{i}]"),
                format!("{e}; use a count >= 0 or a percentage like \"50%\""),
            )),
        }
    }
    if spec.strategy.batches.len() > 32 {
        errors.push(Invalid::new(
            "spec.strategy.batches",
            "has more than 32 entries; use fewer batches",
        ));
    }
}

/// maxSurge, maxUnavailable (not both zero) and the pause duration.
fn validate_strategy(spec: &RolloutSpec, errors: &mut Vec<Invalid>) {
    let surge = scaled_value(&spec.strategy.max_surge, spec.replicas, true);
    let unavailable = scaled_value(&spec.strategy.max_unavailable, spec.replicas, false);
    if let Err(e) = &surge {
        errors.push(Invalid::at(
            "spec.strategy.maxSurge",
            format!("{e}; use a count >= 0 or a percentage up to 100%"),
        ));
    }
    if let Err(e) = &unavailable {
        errors.push(Invalid::at(
            "spec.strategy.maxUnavailable",
            format!("{e}; use a count >= 0 or a percentage up to 100%"),
        ));
    }
    if is_zero(&spec.strategy.max_surge) && is_zero(&spec.strategy.max_unavailable) {
        errors.push(Invalid::new(
            "spec.strategy.maxSurge",
            "and maxUnavailable are both zero, so no instance could ever be replaced; set maxSurge to 1",
        ));
    }
    if let Some(Pause {
        duration: Some(duration),
        ..
    }) = &spec.strategy.pause
    {
        if let Err(e) = parse_duration(duration) {
            errors.push(Invalid::at("spec.strategy.pause.duration", e.to_string()));
        }
    }
}

/// Pins: a version and instances each, no instance pinned twice.
fn validate_pins(spec: &RolloutSpec, errors: &mut Vec<Invalid>) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, pin) in spec.pins.iter().enumerate() {
        if pin.version.trim().is_empty() {
            errors.push(Invalid::new(
                format!("spec.pins[{i}].version"),
                "is empty; name a version from the revision history",
            ));
        }
        if pin.instances.is_empty() {
            errors.push(Invalid::new(
                format!("spec.pins[{i}].instances"),
                "is empty; name the instances to pin",
            ));
        }
        for (j, instance) in pin.instances.iter().enumerate() {
            if let Some(first) = seen.insert(instance.as_str(), i) {
                errors.push(Invalid::new(
                    format!("spec.pins[{i}].instances[{j}]"),
                    format!("({instance}) is pinned by both spec.pins[{first}] and spec.pins[{i}]; keep one"),
                ));
            }
        }
    }
}

fn is_zero(value: &IntOrString) -> bool {
    match value {
        IntOrString::Int(n) => *n == 0,
        IntOrString::String(s) => parse_percent(s) == Ok(0),
    }
}
