//! Hands a reconcile's notes ([`crate::listeners::notices`]) to the shared notifier, which
//! delivers them off the reconcile.
use kube::{Resource, ResourceExt};

use super::Context;
use crate::api::listenerset::ListenerSet;
use crate::listeners::notices::{messages, Note, Subject};

/// Queue `notes` for `set`'s sinks (nothing without `spec.notifications`).
pub(super) fn send(ctx: &Context, set: &ListenerSet, notes: Vec<Note>) {
    let sinks = &set.spec.notifications;
    let (Some(uid), Some(ns)) = (set.metadata.uid.as_deref(), set.metadata.namespace.as_deref()) else {
        return;
    };
    if sinks.is_empty() || notes.is_empty() {
        return;
    }
    let name = set.name_any();
    let subject = Subject {
        name: &name,
        namespace: ns,
        uid,
        sinks,
    };
    let out = messages(&subject, &notes, jiff::Timestamp::now());
    ctx.notifier.send(&set.object_ref(&()), uid, ns, sinks, out);
}
