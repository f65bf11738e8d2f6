//! Pure: which notifications a ListenerSet reconcile makes (`spec.notifications`), and their
//! idempotency keys. The shell (`listeners::controller`) hands the messages to the shared
//! [`Notifier`](crate::webhooks::Notifier) once the write they report succeeded.
//!
//! Keys are derived from what identifies the occurrence in the API server's state, never from
//! the controller's memory, so a report repeated by a reconcile from a stale cache, or by another
//! controller after a failover, carries the same key:
//!
//! * an assignment (`Takeover`, `Handover`, `LeaseRecreated`): the listener and the fencing
//!   token it was assigned with (tokens are handed out once: see `decide`);
//! * `Orphaned`: the listener and the highest token it was handed (the holder it lost): it is
//!   reported at every reconcile that finds it so (the notifier drops repeats; a receiver drops
//!   them by key after a failover);
//! * `Degraded`: the new reason and the condition it replaces (status, reason and transition
//!   time as stored): sent when the status write that makes the transition succeeds;
//! * `Recovered`: the recover request's nonce.
use jiff::Timestamp;

use crate::api::listenerset::view::CANNOT_MOVE;
use crate::api::listenerset::{ListenerSetStatus, CONDITION_DEGRADED, REASON_ORPHANED};
use crate::api::notifications::{ListenerSetEvent, ListenerSetNotification, LISTENERSET_EVENT_TYPE_PREFIX};
use crate::listeners::assigner::{ListenerState, Move};
use crate::listeners::decide::{Decision, HowAssigned};
use crate::webhooks::{schedule::digest, Message, Outgoing, SourceKind as About};

/// What a ListenerSet's messages are about.
pub const ABOUT: About = About {
    type_prefix: LISTENERSET_EVENT_TYPE_PREFIX,
    plural: crate::api::LISTENERSET_PLURAL,
};

/// One occurrence to notify; serialized, the fields of its message's [`Payload`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub event: ListenerSetEvent,
    /// Identifies the occurrence within the set (see the module doc); not sent as such.
    #[serde(skip)]
    pub key: String,
    pub listener: Option<String>,
    /// The pod the listener went to.
    pub pod: Option<String>,
    /// The pod that held it before.
    pub previous_pod: Option<String>,
    pub fencing_token: Option<i32>,
    /// `Degraded`'s reason.
    pub reason: Option<String>,
    pub message: String,
}

impl Note {
    fn new(event: ListenerSetEvent, key: String, message: String) -> Self {
        Note {
            event,
            key,
            listener: None,
            pod: None,
            previous_pod: None,
            fencing_token: None,
            reason: None,
            message,
        }
    }
}

/// The note of an assignment written: `listener` to `pod` with fencing token `token`, from
/// `previous` (the holder the Lease named, if any; a takeover names its own), described by
/// `text` (its Event's note). None for a first assignment (not an event anyone subscribes to).
pub fn assigned(
    kind: &HowAssigned,
    listener: &str,
    pod: &str,
    previous: Option<&str>,
    token: i32,
    text: &str,
) -> Option<Note> {
    let (event, previous) = match kind {
        HowAssigned::Assigned => return None,
        HowAssigned::Handover => (ListenerSetEvent::Handover, previous),
        HowAssigned::Takeover { from, .. } => (ListenerSetEvent::Takeover, Some(from.as_str())),
        HowAssigned::Recreated => (ListenerSetEvent::LeaseRecreated, previous),
    };
    Some(Note {
        listener: Some(listener.to_string()),
        pod: Some(pod.to_string()),
        previous_pod: previous.filter(|p| !p.is_empty() && *p != pod).map(str::to_string),
        fencing_token: Some(token),
        ..Note::new(event, format!("{listener}/{token}"), text.to_string())
    })
}

/// Listeners that ran (they were handed a fencing token, the first being 0) and that no pod runs
/// now nor is given by this decision: their holder is gone or expired, or they were released
/// with nowhere to go. None while the set is being deleted.
pub fn orphaned(decision: &Decision, deleting: bool) -> Vec<Note> {
    if deleting {
        return Vec::new();
    }
    let assigned = |id: &str| {
        decision
            .writes
            .iter()
            .any(|w| matches!(&w.change, Move::Assign { listener, .. } if listener == id))
    };
    let mut out = Vec::new();
    for (id, state) in &decision.summary.states {
        let holder = match state {
            ListenerState::Orphaned { holder } => Some(holder.as_str()),
            ListenerState::Pending => None,
            _ => continue,
        };
        // A listener with no token was never assigned: it did not lose anything.
        let Some(token) = decision.tokens.get(id).copied() else {
            continue;
        };
        if assigned(id) {
            continue;
        }
        let lost = match holder {
            Some(h) => format!("listener {id} lost its holder {h} (gone, stopped or its Lease expired)"),
            None => format!("listener {id} was released and no pod took it"),
        };
        // When nothing can move, in the words of the set's status and every view of it.
        let waits = match &decision.blocked {
            Some(why) => format!("{CANNOT_MOVE}{why}"),
            None => "it moves once that is safe and a pod has room".to_string(),
        };
        out.push(Note {
            listener: Some(id.clone()),
            previous_pod: holder.map(str::to_string),
            fencing_token: Some(token),
            ..Note::new(
                ListenerSetEvent::Orphaned,
                format!("{id}/{token}"),
                format!("{lost}; nothing runs it: {waits} (last fencing token {token})"),
            )
        })
    }
    out
}

/// `Degraded` when the set's new Degraded condition (`degraded`, `reason`, `message`) is True
/// and the stored one (in `previous`) was not, or had another reason. `Orphaned` is left out:
/// its listeners are notified one by one.
pub fn degraded(previous: &ListenerSetStatus, degraded: bool, reason: &str, message: &str) -> Option<Note> {
    if !degraded || reason == REASON_ORPHANED {
        return None;
    }
    let prev = previous.conditions.iter().find(|c| c.type_ == CONDITION_DEGRADED);
    if prev.is_some_and(|c| c.status == "True" && c.reason == reason) {
        return None;
    }
    let was = prev.map_or_else(String::new, |c| {
        format!("{}/{}/{}", c.status, c.reason, c.last_transition_time.0.as_second())
    });
    Some(Note {
        reason: Some(reason.to_string()),
        ..Note::new(
            ListenerSetEvent::Degraded,
            format!("{reason}/{was}"),
            format!("{reason}: {message}"),
        )
    })
}

/// A carried-out `baton listeners recover` (request `nonce`) that released `released` listeners.
pub fn recovered(nonce: &str, released: usize) -> Note {
    Note::new(
        ListenerSetEvent::Recovered,
        nonce.to_string(),
        format!("recover {nonce}: {released} orphaned listeners released for reassignment"),
    )
}

/// A message's idempotency key: `<set uid>-<16 hex digits>` of the occurrence and its event.
pub fn message_id(uid: &str, key: &str, event: ListenerSetEvent) -> String {
    format!("{uid}-{}", digest(key, event.as_str()))
}

/// What a message says (the `json` format, and the data of the others).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload<'a> {
    pub id: String,
    pub listener_set: &'a str,
    pub namespace: &'a str,
    #[serde(flatten)]
    pub note: &'a Note,
    pub time: Timestamp,
}

/// The ListenerSet a reconcile was made for.
pub struct Subject<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub sinks: &'a [ListenerSetNotification],
}

/// The messages of `notes`, in order, per subscribed sink.
pub fn messages(subject: &Subject<'_>, notes: &[Note], now: Timestamp) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for n in notes {
        let subscribed: Vec<usize> = (subject.sinks.iter().enumerate())
            .filter(|(_, s)| s.events.contains(&n.event))
            .map(|(i, _)| i)
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        let payload = Payload {
            id: message_id(subject.uid, &n.key, n.event),
            listener_set: subject.name,
            namespace: subject.namespace,
            note: n,
            time: now,
        };
        let message = Message {
            id: payload.id.clone(),
            event: n.event.as_str(),
            kind: ABOUT,
            name: subject.name.to_string(),
            namespace: subject.namespace.to_string(),
            message: n.message.clone(),
            time: now,
            data: serde_json::to_value(&payload).unwrap_or(serde_json::Value::Null),
        };
        out.extend(subscribed.into_iter().map(|sink| Outgoing {
            sink,
            message: message.clone(),
        }));
    }
    out
}

#[cfg(test)]
mod tests;
