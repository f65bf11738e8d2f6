//! Hands a reconcile's notes ([`crate::listeners::notices`]) to the shared notifier, which
//! delivers them off the reconcile.
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Resource, ResourceExt};

use super::Context;
use crate::api::listenerset::ListenerSet;
use crate::api::notifications::ListenerSetNotification;
use crate::listeners::notices::{messages, Note, Subject};

/// Queue `notes` for `set`'s sinks (nothing without `spec.notifications`).
pub(super) fn send(ctx: &Context, set: &ListenerSet, notes: Vec<Note>) {
    if let Some(target) = Target::of(set) {
        target.send(ctx, notes);
    }
}

/// Where a set's notes go, apart from the set: what a status write sends once it lands.
pub(super) struct Target {
    reference: ObjectReference,
    name: String,
    namespace: String,
    uid: String,
    sinks: Vec<ListenerSetNotification>,
}

impl Target {
    /// `set`'s sinks; `None` without `spec.notifications`.
    pub(super) fn of(set: &ListenerSet) -> Option<Target> {
        let sinks = &set.spec.notifications;
        let (Some(uid), Some(ns)) = (set.metadata.uid.as_deref(), set.metadata.namespace.as_deref()) else {
            return None;
        };
        (!sinks.is_empty()).then(|| Target {
            reference: set.object_ref(&()),
            name: set.name_any(),
            namespace: ns.to_string(),
            uid: uid.to_string(),
            sinks: sinks.clone(),
        })
    }

    /// Queue `notes` for these sinks.
    pub(super) fn send(&self, ctx: &Context, notes: Vec<Note>) {
        if notes.is_empty() {
            return;
        }
        let subject = Subject {
            name: &self.name,
            namespace: &self.namespace,
            uid: &self.uid,
            sinks: &self.sinks,
        };
        let out = messages(&subject, &notes, jiff::Timestamp::now());
        ctx.notifier
            .send(&self.reference, &self.uid, &self.namespace, &self.sinks, out);
    }
}
