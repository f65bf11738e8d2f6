//! A Rollout's notifications (`spec.notifications`): the messages a plan makes
//! ([`decide::messages`]) go to the shared [`Notifier`](crate::webhooks::Notifier), which
//! delivers them in order per Rollout and sink, off the reconcile.
use std::sync::Arc;

use kube::{Resource, ResourceExt};

use crate::api::rollout::{Rollout, RolloutStatus};
use crate::rollout::planner::PlanEvent;
use crate::webhooks::Notifier;

pub mod decide;

/// Queue the messages of a plan's `events` (its status `status`) for `rollout`'s sinks.
pub fn send(notifier: &Arc<Notifier>, rollout: &Rollout, status: &RolloutStatus, events: &[PlanEvent]) {
    let sinks = &rollout.spec.notifications;
    let (Some(uid), Some(ns)) = (rollout.metadata.uid.as_deref(), rollout.metadata.namespace.as_deref()) else {
        return;
    };
    if sinks.is_empty() || events.is_empty() {
        return;
    }
    let name = rollout.name_any();
    let subject = decide::Subject {
        name: &name,
        namespace: ns,
        uid,
        generation: rollout.metadata.generation.unwrap_or(0),
        version: &rollout.spec.version,
        sinks,
    };
    let out = decide::messages(&subject, status, events, jiff::Timestamp::now());
    notifier.send(&rollout.object_ref(&()), uid, ns, sinks, out);
}
