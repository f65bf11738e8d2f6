//! The pause between batches of a Rollout (`spec.strategy.pause`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{parse_duration, RolloutStrategy};

/// Pause between batches.
///
/// `manual: true` waits for promotion whatever `duration` says, so the merge patch
/// `{"spec":{"strategy":{"pause":{"manual":true}}}}` gives a manual pause even where a duration
/// was set. Without `manual`, a duration pauses that long and no duration waits for promotion
/// (`pause: {}`); `manual: false` without a duration does not pause.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    /// Go-style duration (`30s`, `5m`, `1h30m`). Ignored when `manual` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Wait for `baton rollout promote` (annotation `baton.dev/promote`) after each batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<bool>,
}

/// What a [`Pause`] does after a healthy batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseMode {
    /// Go on with the next batch.
    None,
    /// Wait for promotion.
    Manual,
    /// Wait this long (or until promoted).
    Timed(std::time::Duration),
}

impl Pause {
    /// The pause mode, or why the duration cannot be read.
    pub fn mode(&self) -> Result<PauseMode, crate::invalid::BadValue> {
        match (self.manual, &self.duration) {
            (Some(true), _) | (None, None) => Ok(PauseMode::Manual),
            (Some(false), None) => Ok(PauseMode::None),
            (_, Some(d)) => parse_duration(d).map(PauseMode::Timed),
        }
    }
}

impl RolloutStrategy {
    /// What happens after a healthy batch (an unreadable duration, reported as `InvalidSpec`,
    /// waits for promotion).
    pub fn pause_mode(&self) -> PauseMode {
        self.pause
            .as_ref()
            .map_or(PauseMode::None, |p| p.mode().unwrap_or(PauseMode::Manual))
    }
}
