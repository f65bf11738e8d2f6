//! Notifications (`spec.notifications[]`): webhook sinks and the events they subscribe to. The
//! wire words of the feature live here: the Secret's keys, the formats, the event names, the
//! headers a message carries. Delivery is `rollout::notify`; the semantics are in
//! docs/rollouts.md ("Notifications").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most sinks per object.
pub const MAX_SINKS: usize = 4;

/// Keys of a sink's Secret.
pub mod secret_keys {
    /// The webhook's `http://` or `https://` URL.
    pub const URL: &str = "url";
    /// Optional: a JSON object of extra request headers (`{"Authorization": "Bearer …"}`).
    pub const HEADERS: &str = "headers";
}

/// Headers and media types of a message.
pub mod headers {
    /// The message's idempotency key (also its `id`): a receiver drops a repeat it has seen.
    pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
    /// The `User-Agent` of deliveries.
    pub const USER_AGENT: &str = "baton-notify";
    pub const JSON: &str = "application/json";
    /// CloudEvents structured mode (the CloudEvents HTTP binding, section 3.2).
    pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";
    /// CloudEvents binary mode attributes (section 3.1.3: `ce-` prefixed headers).
    pub const CE_SPECVERSION: &str = "ce-specversion";
    pub const CE_TYPE: &str = "ce-type";
    pub const CE_SOURCE: &str = "ce-source";
    pub const CE_ID: &str = "ce-id";
    pub const CE_TIME: &str = "ce-time";
    pub const CE_SUBJECT: &str = "ce-subject";
    /// The CloudEvents version spoken.
    pub const SPECVERSION: &str = "1.0";
}

/// CloudEvents `type` of a Rollout's event `e`: `dev.baton.rollout.<e>`.
pub const ROLLOUT_EVENT_TYPE_PREFIX: &str = "dev.baton.rollout.";

/// One sink: where to send (a Secret), in which format, and which events.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification<E> {
    /// Where the messages go.
    pub sink: Sink,
    /// The body's shape (default `json`).
    #[serde(default)]
    pub format: NotificationFormat,
    /// The events sent to this sink.
    #[schemars(length(min = 1, max = 16), extend("x-kubernetes-list-type" = "set"))]
    pub events: Vec<E>,
}

/// A webhook sink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sink {
    /// A Secret in the object's namespace with key `url` and, optionally, `headers` (a JSON
    /// object of strings).
    pub secret_ref: SecretName,
}

/// A Secret of the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretName {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The body of a message.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum NotificationFormat {
    /// `{id, rollout, namespace, event, version, revision, batch, message, time}`.
    #[default]
    #[serde(rename = "json")]
    Json,
    /// Slack's incoming webhook: `{text}`.
    #[serde(rename = "slack")]
    Slack,
    /// CloudEvents HTTP binary mode: `ce-*` headers, the JSON body as data.
    #[serde(rename = "cloudevents-binary")]
    CloudEventsBinary,
    /// CloudEvents HTTP structured mode: `application/cloudevents+json`.
    #[serde(rename = "cloudevents-structured")]
    CloudEventsStructured,
}

impl NotificationFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationFormat::Json => "json",
            NotificationFormat::Slack => "slack",
            NotificationFormat::CloudEventsBinary => "cloudevents-binary",
            NotificationFormat::CloudEventsStructured => "cloudevents-structured",
        }
    }
}

/// What a Rollout notifies (`spec.notifications[].events`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RolloutEvent {
    /// A new revision's first batch started (a deploy, an undo, a retry).
    Started,
    /// A batch is healthy.
    BatchCompleted,
    /// `spec.paused` was set.
    Paused,
    /// A pause was ended by `baton rollout promote` (or `--full`).
    Promoted,
    /// The revision is healthy on every instance.
    Completed,
    /// A batch failed (deadline, crash loop, check, bake).
    Failed,
    /// A failed rollout was returned to the last healthy revision.
    RolledBack,
    /// `baton rollout abort`.
    Aborted,
    /// A check of a batch or of the bake window failed.
    CheckFailed,
    /// A hook Job failed (sent once hooks exist: issue 11 §1).
    HookFailed,
}

impl RolloutEvent {
    pub const ALL: &'static [RolloutEvent] = &[
        RolloutEvent::Started,
        RolloutEvent::BatchCompleted,
        RolloutEvent::Paused,
        RolloutEvent::Promoted,
        RolloutEvent::Completed,
        RolloutEvent::Failed,
        RolloutEvent::RolledBack,
        RolloutEvent::Aborted,
        RolloutEvent::CheckFailed,
        RolloutEvent::HookFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RolloutEvent::Started => "Started",
            RolloutEvent::BatchCompleted => "BatchCompleted",
            RolloutEvent::Paused => "Paused",
            RolloutEvent::Promoted => "Promoted",
            RolloutEvent::Completed => "Completed",
            RolloutEvent::Failed => "Failed",
            RolloutEvent::RolledBack => "RolledBack",
            RolloutEvent::Aborted => "Aborted",
            RolloutEvent::CheckFailed => "CheckFailed",
            RolloutEvent::HookFailed => "HookFailed",
        }
    }
}

impl std::fmt::Display for RolloutEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Rollout's sink.
pub type RolloutNotification = Notification<RolloutEvent>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_serde() {
        for e in RolloutEvent::ALL {
            assert_eq!(serde_json::to_value(e).unwrap(), serde_json::json!(e.as_str()));
        }
        for f in [
            NotificationFormat::Json,
            NotificationFormat::Slack,
            NotificationFormat::CloudEventsBinary,
            NotificationFormat::CloudEventsStructured,
        ] {
            assert_eq!(serde_json::to_value(f).unwrap(), serde_json::json!(f.as_str()));
        }
    }
}
