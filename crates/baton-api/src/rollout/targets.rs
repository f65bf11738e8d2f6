//! Targeted batches (`spec.strategy.targets`): a batch that names the instances it includes, for
//! a canary on a chosen instance (the old release API's `deploy execute` with an instance list).
//!
//! The names are checked against the Rollout's instances by the planner (it knows the name and
//! the replicas); the schema bounds the list and CEL keeps `batch` within `strategy.batches`.

use crate::Invalid;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most instances one target may name.
pub const MAX_TARGET_INSTANCES: usize = 100;

/// Instances a batch must include (with those of earlier batches).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchTarget {
    /// 1-based index into `strategy.batches` (1 when `batches` is empty).
    #[schemars(range(min = 1, max = 32))]
    pub batch: i32,
    /// Instance names, `<rollout>-<ordinal>`, unpinned, each named by one target only.
    #[schemars(length(min = 1, max = 100))]
    pub instances: Vec<String>,
}

/// CEL (on `RolloutStrategy`): each target's batch is one of the written batches.
pub const TARGETS_WITHIN_BATCHES_RULE: &str =
    "!has(self.targets) || self.targets.all(t, t.batch <= (has(self.batches) && size(self.batches) > 0 ? size(self.batches) : 1))";

/// What the schema and CEL check, for the controller too: batch indexes and non-empty lists,
/// no instance named twice. `batches` is the number of written batches.
pub fn validate_targets(targets: &[BatchTarget], batches: usize, errors: &mut Vec<Invalid>) {
    let max = batches.max(1);
    let mut seen: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (i, t) in targets.iter().enumerate() {
        if t.batch < 1 || usize::try_from(t.batch).is_ok_and(|b| b > max) {
            errors.push(Invalid::new(
                format!("spec.strategy.targets[{i}].batch"),
                format!(
                    "is {}; name one of the {max} batches of spec.strategy.batches (1..{max})",
                    t.batch
                ),
            ));
        }
        if t.instances.is_empty() {
            errors.push(Invalid::new(
                format!("spec.strategy.targets[{i}].instances"),
                format!("is empty; name the instances of batch {}", t.batch),
            ));
        }
        if t.instances.len() > MAX_TARGET_INSTANCES {
            errors.push(Invalid::new(
                format!("spec.strategy.targets[{i}].instances"),
                format!("names {} instances; at most {MAX_TARGET_INSTANCES}", t.instances.len()),
            ));
        }
        for (j, instance) in t.instances.iter().enumerate() {
            if let Some(first) = seen.insert(instance.as_str(), i) {
                errors.push(Invalid::new(
                    format!("spec.strategy.targets[{i}].instances[{j}]"),
                    format!(
                        "({instance}) is named by both spec.strategy.targets[{first}] and spec.strategy.targets[{i}]; keep one"
                    ),
                ));
            }
        }
    }
}
