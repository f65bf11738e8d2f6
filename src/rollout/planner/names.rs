//! Names and labels of the objects a Rollout owns: instances (slots), pods and revisions.

use std::collections::BTreeMap;

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
    [
        (labels::ROLLOUT, rollout.to_string()),
        (labels::SLOT, slot.to_string()),
        (labels::INSTANCE, slot_name(rollout, slot)),
        (labels::REVISION_HASH, hash.to_string()),
        (labels::VERSION, version.to_string()),
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
