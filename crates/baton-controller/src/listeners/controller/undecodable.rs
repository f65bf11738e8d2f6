//! A stored ListenerSet that does not decode (an integer outside the type's range, written
//! before the schema bounded it): it is left out of the cache, and reported on the object with
//! the InvalidSpec condition and a Warning Event naming the fields to fix. Its Leases are left
//! as they are: their holders keep running their listeners, nothing is reassigned, until the
//! set decodes again.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use tracing::{debug, warn};

use crate::api::listenerset::{
    self, ListenerSet, ListenerSetStatus, CONDITION_DEGRADED, CONDITION_READY, CONDITION_STALLED, REASON_INVALID_SPEC,
};
use crate::backoff::{delay, Retry};
use crate::cache::tolerant::Bad;
use crate::events::{Publisher, Severity};
use crate::listeners::MANAGER;

/// What the report says: what to fix, in at most a few hundred bytes.
pub(super) fn message(problem: &str) -> String {
    let mut problem = problem.to_string();
    if problem.len() > 1024 {
        let mut cut = 1024;
        while !problem.is_char_boundary(cut) {
            cut -= 1;
        }
        problem.truncate(cut);
        problem.push('…');
    }
    format!("the stored ListenerSet does not decode ({problem}); set each field within its range and apply again; its listeners stay where they run until then")
}

/// The status reporting it: `prior` (counts and assignments still hold: nothing moves) with
/// Ready False, Degraded and Stalled True for `generation`.
pub(super) fn status(prior: ListenerSetStatus, generation: Option<i64>, message: &str, now: Time) -> ListenerSetStatus {
    let condition = |type_: &str, status: &str| {
        let since = prior
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: REASON_INVALID_SPEC.to_string(),
            message: message.to_string(),
            last_transition_time: since,
            observed_generation: generation,
        }
    };
    ListenerSetStatus {
        observed_generation: generation,
        conditions: vec![
            condition(CONDITION_READY, "False"),
            condition(CONDITION_DEGRADED, "True"),
            condition(CONDITION_STALLED, "True"),
        ],
        ..prior
    }
}

/// Report `bad` on the object, unless its status already does: the status (retried a few
/// times) and one Warning Event.
pub async fn report_undecodable(client: &kube::Client, events: &Publisher, bad: Bad) {
    let Some(ns) = bad.namespace.clone() else { return };
    let prior: Option<ListenerSetStatus> = bad.status.clone().and_then(|s| serde_json::from_value(s).ok());
    let message = message(&bad.problem(&listenerset::crd()));
    let new = status(
        prior.clone().unwrap_or_default(),
        bad.generation,
        &message,
        Time(jiff::Timestamp::now()),
    );
    // Reported once: a restart or relist that finds the same status says nothing new.
    if prior.as_ref() == Some(&new) {
        return;
    }
    bad.apply_status::<ListenerSet>(client, MANAGER, &new, |n| delay(Retry::Later, n))
        .await;
    let reference = bad.reference::<ListenerSet>();
    warn!(namespace = %ns, name = %bad.name, reason = REASON_INVALID_SPEC, "{message}");
    if let Err(e) = events
        .publish(&reference, Severity::Warning, REASON_INVALID_SPEC, &message)
        .await
    {
        debug!(error = %e, "publishing an event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_keeps_counts_and_names_the_problem() {
        let prior = ListenerSetStatus {
            listeners: 2,
            running: 2,
            ..ListenerSetStatus::default()
        };
        let t = Time(jiff::Timestamp::UNIX_EPOCH);
        let m = message("spec.maxPerPod is 2147483648, outside 0..2147483647");
        let s = status(prior, Some(3), &m, t.clone());
        assert_eq!((s.listeners, s.running, s.observed_generation), (2, 2, Some(3)));
        let types: Vec<_> = s
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("Ready", "False", "InvalidSpec"),
                ("Degraded", "True", "InvalidSpec"),
                ("Stalled", "True", "InvalidSpec")
            ]
        );
        assert!(s.conditions[0].message.contains("spec.maxPerPod is 2147483648"));
        // Reported again: the same status, so nothing is rewritten.
        let again = status(s.clone(), Some(3), &m, Time(jiff::Timestamp::now()));
        assert_eq!(again, s);
        assert!(message(&"x".repeat(10_000)).len() < 1300);
    }
}
