//! Pure: which notifications a plan makes, their idempotency keys, and the retry schedule.
//!
//! Notifications are not a second record of what happened: each is one of the plan's events
//! (the transitions the planner reports as Events), mapped to the subscription word it stands
//! for. A plan reports a transition once (the planner is level-based and the status records
//! it), and the key of a message is derived from what identifies the transition, so a report
//! repeated by a plan from a stale cache, or by another controller after a failover, carries
//! the same key.
use jiff::Timestamp;

use crate::api::notifications::{RolloutEvent, RolloutNotification, ROLLOUT_EVENT_TYPE_PREFIX};
use crate::api::rollout::{EventReason, RolloutStatus};
use crate::rollout::planner::PlanEvent;
use crate::webhooks::{schedule::digest, Message, Outgoing, SourceKind};

/// What a Rollout's messages are about.
pub const KIND: SourceKind = SourceKind {
    type_prefix: ROLLOUT_EVENT_TYPE_PREFIX,
    plural: crate::api::ROLLOUT_PLURAL,
};

/// The subscription word a plan event stands for, if any. Exhaustive on purpose: a new event
/// reason needs a decision here.
pub fn rollout_event(ev: &PlanEvent) -> Option<RolloutEvent> {
    use EventReason::*;
    match ev.reason {
        BatchStarted if ev.batch == Some(1) => Some(RolloutEvent::Started),
        BatchCompleted => Some(RolloutEvent::BatchCompleted),
        Paused => Some(RolloutEvent::Paused),
        Promoted => Some(RolloutEvent::Promoted),
        RolloutCompleted => Some(RolloutEvent::Completed),
        BatchFailed => Some(RolloutEvent::Failed),
        RolledBack => Some(RolloutEvent::RolledBack),
        RolloutAborted => Some(RolloutEvent::Aborted),
        CheckFailed => Some(RolloutEvent::CheckFailed),
        HookFailed => Some(RolloutEvent::HookFailed),
        BatchStarted | HookStarted | PhaseChanged | RollingBack | Resumed | RetryRequested | Restarted | Pinned
        | Unpinned | ActionIgnored | InvalidSpec | BakeStarted | NotificationFailed | WorkloadScaled => None,
    }
}

/// The key of the transition `ev` reports: the generation, the update revision, the retry
/// nonce and the event's identity (which names the batch). The same for every plan that reports
/// it (the Events of transitions are named after it too).
pub fn transition_key(generation: i64, status: &RolloutStatus, ev: &PlanEvent) -> String {
    let retry = status.actions.as_ref().and_then(|a| a.retry.as_deref()).unwrap_or("");
    format!(
        "{generation}/{}/{retry}/{}",
        status.update_revision.as_deref().unwrap_or(""),
        ev.identity
    )
}

/// A message's idempotency key: `<uid>-<generation>-<16 hex digits>` of the transition and the
/// event reported.
pub fn message_id(uid: &str, generation: i64, key: &str, event: RolloutEvent) -> String {
    format!("{uid}-{generation}-{}", digest(key, event.as_str()))
}

/// What a message says (the `json` format, and the data of the others).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Payload {
    pub id: String,
    pub rollout: String,
    pub namespace: String,
    pub event: RolloutEvent,
    /// `spec.version`: the version being rolled out.
    pub version: String,
    /// The update revision's number, when known.
    pub revision: Option<i64>,
    /// The batch the event is about (1-based), if it is about one.
    pub batch: Option<i32>,
    pub message: String,
    pub time: Timestamp,
}

impl Payload {
    /// The message that carries it (its JSON is the `json` body).
    pub fn message(&self) -> Message {
        Message {
            id: self.id.clone(),
            event: self.event.as_str(),
            kind: KIND,
            name: self.rollout.clone(),
            namespace: self.namespace.clone(),
            message: self.message.clone(),
            time: self.time,
            data: serde_json::to_value(self).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The Rollout a plan was made for.
pub struct Subject<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub generation: i64,
    pub version: &'a str,
    pub sinks: &'a [RolloutNotification],
}

/// The messages of a plan's `events` (its status `status`), in order, per subscribed sink.
pub fn messages(subject: &Subject<'_>, status: &RolloutStatus, events: &[PlanEvent], now: Timestamp) -> Vec<Outgoing> {
    let revision = status.update_revision.as_deref().and_then(|name| {
        status
            .history
            .iter()
            .rev()
            .find(|r| r.revision_name == name)
            .map(|r| r.revision)
    });
    let mut out = Vec::new();
    for ev in events {
        let Some(event) = rollout_event(ev) else { continue };
        let key = transition_key(subject.generation, status, ev);
        let payload = Payload {
            id: message_id(subject.uid, subject.generation, &key, event),
            rollout: subject.name.to_string(),
            namespace: subject.namespace.to_string(),
            event,
            version: subject.version.to_string(),
            revision,
            batch: ev.batch,
            message: ev.message.clone(),
            time: now,
        };
        let message = payload.message();
        for (i, sink) in subject.sinks.iter().enumerate() {
            if sink.events.contains(&event) {
                out.push(Outgoing {
                    sink: i,
                    message: message.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
