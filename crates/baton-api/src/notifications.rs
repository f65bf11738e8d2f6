//! Notifications (`spec.notifications[]` of Rollouts and ListenerSets): webhook sinks and the
//! events they subscribe to. The wire words of the feature live here: the Secret's keys, the
//! formats, the event names of each kind, the headers a message carries, the condition and
//! Event words both kinds report with. Delivery is `webhooks` (shared), the decisions are
//! `rollout::announce` and `listeners::notices`; the semantics are in docs/rollouts.md and
//! docs/listeners.md ("Notifications").

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
/// CloudEvents `type` of a ListenerSet's event `e`: `dev.baton.listenerset.<e>`.
pub const LISTENERSET_EVENT_TYPE_PREFIX: &str = "dev.baton.listenerset.";

/// Condition type (both kinds, only with `spec.notifications`): True when every sink's Secret
/// is there with a usable URL (delivery failures are Events and a metric, not this condition).
pub const CONDITION_NOTIFICATIONS_READY: &str = "NotificationsReady";
/// `NotificationsReady` reason: every sink is usable.
pub const REASON_SINKS_READY: &str = "SinksReady";
/// `NotificationsReady` reason: a sink's Secret is missing, unreadable or has no usable URL.
pub const REASON_SINK_INVALID: &str = "SinkInvalid";
/// Event reason (Warning, both kinds): a notification could not be delivered (yet, or within the
/// retry bound).
pub const EVENT_NOTIFICATION_FAILED: &str = "NotificationFailed";

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
    /// A hook Job failed (sent once hooks exist).
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

/// What a ListenerSet notifies (`spec.notifications[].events`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ListenerSetEvent {
    /// A listener whose holder was gone, stopped or let its Lease expire went to another pod.
    Takeover,
    /// A listener that ran lost its pod and no pod runs it now (its holder is gone or expired,
    /// or it was released with no pod to take it).
    Orphaned,
    /// The set's `Degraded` condition turned True, or its reason changed (not for `Orphaned`,
    /// which is its own event).
    Degraded,
    /// A listener released by its holder (a graceful stop, a drain) went to another pod.
    Handover,
    /// A hand-deleted Lease was recreated for the pod that may still run the listener.
    LeaseRecreated,
    /// A `baton listeners recover` request was carried out.
    Recovered,
}

impl ListenerSetEvent {
    pub const ALL: &'static [ListenerSetEvent] = &[
        ListenerSetEvent::Takeover,
        ListenerSetEvent::Orphaned,
        ListenerSetEvent::Degraded,
        ListenerSetEvent::Handover,
        ListenerSetEvent::LeaseRecreated,
        ListenerSetEvent::Recovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ListenerSetEvent::Takeover => "Takeover",
            ListenerSetEvent::Orphaned => "Orphaned",
            ListenerSetEvent::Degraded => "Degraded",
            ListenerSetEvent::Handover => "Handover",
            ListenerSetEvent::LeaseRecreated => "LeaseRecreated",
            ListenerSetEvent::Recovered => "Recovered",
        }
    }
}

impl std::fmt::Display for ListenerSetEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ListenerSet's sink.
pub type ListenerSetNotification = Notification<ListenerSetEvent>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rollout's typed words are these shared ones.
    #[test]
    fn rollout_words_are_the_shared_ones() {
        use crate::rollout::{ConditionType, EventReason, Reason};
        assert_eq!(
            ConditionType::NotificationsReady.as_str(),
            CONDITION_NOTIFICATIONS_READY
        );
        assert_eq!(Reason::SinksReady.as_str(), REASON_SINKS_READY);
        assert_eq!(Reason::SinkInvalid.as_str(), REASON_SINK_INVALID);
        assert_eq!(EventReason::NotificationFailed.as_str(), EVENT_NOTIFICATION_FAILED);
    }

    #[test]
    fn words_match_serde() {
        for e in RolloutEvent::ALL {
            assert_eq!(serde_json::to_value(e).unwrap(), serde_json::json!(e.as_str()));
        }
        for e in ListenerSetEvent::ALL {
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
