//! Publishing the controller's Events, in the background.
use crate::events::{Occurrence, Severity as EventType};

use super::Context;

/// Publish an Event of `reason` on `reference`, off the reconcile: Events are informative,
/// never worth holding a handover up for.
pub(super) fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    ctx.events
        .publish_in_background(reference.clone(), vec![Occurrence::new(type_, reason, note)]);
}
