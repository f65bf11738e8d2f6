//! Names and labels of the objects a Rollout owns: instances (slots), pods and revisions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::rollout::labels;

/// Instance (slot) name: `<rollout>-<ordinal>`.
pub fn slot_name(rollout: &str, ordinal: i32) -> String {
    format!("{rollout}-{ordinal}")
}

/// Pod name of a slot incarnation: `<rollout>-<ordinal>-<hash>`.
pub fn pod_name(rollout: &str, ordinal: i32, hash: &str) -> String {
    format!("{rollout}-{ordinal}-{hash}")
}

/// ControllerRevision name: `<rollout>-<hash>`.
pub fn revision_name(rollout: &str, hash: &str) -> String {
    format!("{rollout}-{hash}")
}

/// Ordinal of an instance name `<rollout>-<ordinal>`.
pub fn parse_slot(rollout: &str, instance: &str) -> Option<i32> {
    let digits = instance.strip_prefix(rollout)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// Labels of a pod of the Rollout (the template's labels come first; these win).
pub fn pod_labels(rollout: &str, slot: i32, hash: &str, version: &str) -> BTreeMap<String, String> {
    let mut out = revision_labels(rollout, hash, version);
    out.insert(labels::SLOT.to_string(), slot.to_string());
    out.insert(labels::INSTANCE.to_string(), slot_name(rollout, slot));
    out
}

/// Labels of a ControllerRevision of the Rollout: those its pods carry, less the slot's.
pub fn revision_labels(rollout: &str, hash: &str, version: &str) -> BTreeMap<String, String> {
    [
        (labels::ROLLOUT, rollout.to_string()),
        (labels::REVISION_HASH, hash.to_string()),
        (labels::VERSION, version.to_string()),
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Labels of a pod of `slot` made from `template`: the template's, then [`pod_labels`].
pub fn pod_labels_from(
    template: &PodTemplateSpec,
    rollout: &str,
    slot: i32,
    hash: &str,
    version: &str,
) -> BTreeMap<String, String> {
    let mut out = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    out.extend(pod_labels(rollout, slot, hash, version));
    out
}
