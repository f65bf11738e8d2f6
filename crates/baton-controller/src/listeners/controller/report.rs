//! A ListenerSet's status: counts, the pods holding listeners, what needs attention and the Ready, Degraded,
//! Stalled and NotificationsReady conditions, and writing it.
//!
//! `Ready` and `Stalled` follow kstatus (what Flux's health checks read): `Stalled` is True, and
//! `Ready` False with the same reason and message, while only a person can fix what holds the set
//! (a Secret or key the spec names is missing or unreadable, a Lease name is taken); `Stalled`
//! False carries `Ready`'s reason and message. A set has no `Reconciling`: `Ready` False without
//! `Stalled` is kstatus's `InProgress` already. The invalid spec is reported apart (the reconcile's
//! `report_invalid_spec`), with `Stalled` True too.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::Context;
use crate::api::listenerset::view::CANNOT_MOVE;
use crate::api::listenerset::{
    Attention, ListenerSet, ListenerSetStatus, ATTENTION_HOLDER_LOST, ATTENTION_NOT_ACKNOWLEDGED,
    ATTENTION_NO_ELIGIBLE_POD, ATTENTION_ORPHANED, ATTENTION_PENDING, ATTENTION_STARTING, ATTENTION_WAITING,
    CONDITION_DEGRADED, CONDITION_READY, CONDITION_STALLED, MAX_ATTENTION, MAX_STATUS_PODS, REASON_AGENTS_NOT_RENEWING,
    REASON_ALL_RUNNING, REASON_AS_EXPECTED, REASON_LEASE_NAME_TAKEN, REASON_LISTENERS_NOT_RUNNING,
    REASON_LISTENERS_STARTING, REASON_MISSING_SECRET, REASON_NO_ELIGIBLE_PODS, REASON_ORPHANED, REASON_TERMINATING,
};
use crate::api::notifications::{CONDITION_NOTIFICATIONS_READY, REASON_SINKS_READY, REASON_SINK_INVALID};
use crate::error::Result;
use crate::listeners::assigner::{self, ListenerState};
use crate::listeners::decide::{Blocked, Decision, Silence, Silent};
use crate::listeners::MANAGER;

/// A set's new status, with the parts of it its Events are decided on.
pub(super) struct Report {
    pub(super) status: ListenerSetStatus,
    pub(super) ready_message: String,
    pub(super) degraded: bool,
    pub(super) degraded_reason: &'static str,
    pub(super) degraded_message: String,
}

/// The status of `set` from the decision (the state its writes start from, the pods that may
/// take listeners, the token ceiling); `problems` are the spec's (missing Secrets or keys),
/// `sink_problems` its notification sinks' (None without sinks). Bounded whatever the number of
/// listeners: counts, the pods that hold them (at most [`MAX_STATUS_PODS`]), the listeners that
/// need attention (at most [`MAX_ATTENTION`]).
pub(super) fn report(
    set: &ListenerSet,
    previous: &ListenerSetStatus,
    deleting: bool,
    (problems, sink_problems, collisions): (&[String], Option<&[String]>, &[String]),
    decision: &Decision,
) -> Report {
    let summary = &decision.summary;
    let c = if deleting {
        let message = terminating_message(summary);
        Conditions {
            ready: false,
            ready_reason: REASON_TERMINATING,
            ready_message: message.clone(),
            degraded: false,
            degraded_reason: REASON_TERMINATING,
            degraded_message: message,
            stalled: false,
        }
    } else {
        let c = conditions(
            summary,
            decision.blocked.as_ref(),
            &decision.silent,
            problems,
            decision.settling,
        );
        stall(c, problems, collisions)
    };
    let mut conditions = gate_conditions(previous, set, &c);
    conditions.extend(sink_problems.map(|p| sinks_condition(previous, set, p)));
    let (pods, pods_omitted) = pods_of(summary);
    let (attention, attention_omitted) = attention(summary, decision);
    let status = ListenerSetStatus {
        observed_generation: set.metadata.generation,
        listeners: summary.listeners,
        running: summary.running,
        starting: summary.starting,
        pending: summary.pending,
        orphaned: summary.orphaned,
        suspended: summary.suspended,
        pods,
        pods_omitted,
        attention,
        attention_omitted,
        fencing_token_ceiling: decision.ceiling,
        rebalance: (!deleting).then(|| super::balance::status(set, previous, decision)),
        conditions,
        assignments: Vec::new(),
        fencing_tokens: BTreeMap::new(),
    };
    Report {
        status,
        ready_message: c.ready_message,
        degraded: c.degraded,
        degraded_reason: c.degraded_reason,
        degraded_message: c.degraded_message,
    }
}

/// Listeners held (running or starting) per pod: the [`MAX_STATUS_PODS`] pods holding the most,
/// and how many pods are left out.
fn pods_of(summary: &assigner::Summary) -> (BTreeMap<String, i32>, i32) {
    let mut held: BTreeMap<&str, i32> = BTreeMap::new();
    for (_, state) in &summary.states {
        if let ListenerState::Running { pod, .. } | ListenerState::Starting { pod, .. } = state {
            *held.entry(pod.as_str()).or_default() += 1;
        }
    }
    for (pod, n) in &summary.settled {
        *held.entry(pod.as_str()).or_default() += n;
    }
    let mut ranked: Vec<(&str, i32)> = held.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let omitted = i32::try_from(ranked.len().saturating_sub(MAX_STATUS_PODS)).unwrap_or(i32::MAX);
    let kept = ranked
        .into_iter()
        .take(MAX_STATUS_PODS)
        .map(|(p, n)| (p.to_string(), n))
        .collect();
    (kept, omitted)
}

/// The listeners that need attention, orphaned first, then pending, then those starting on a pod
/// whose agent does not answer: at most [`MAX_ATTENTION`], and how many more there are.
fn attention(summary: &assigner::Summary, decision: &Decision) -> (Vec<Attention>, i32) {
    let silent: std::collections::BTreeSet<&str> = decision.silent.iter().map(|s| s.pod.as_str()).collect();
    let mut out: Vec<(u8, Attention)> = Vec::new();
    for (id, state) in &summary.states {
        let item = match state {
            ListenerState::Orphaned { holder } => {
                Some((0, ATTENTION_ORPHANED, ATTENTION_HOLDER_LOST, Some(holder.clone())))
            }
            ListenerState::Pending if decision.eligible == 0 => {
                Some((1, ATTENTION_PENDING, ATTENTION_NO_ELIGIBLE_POD, None))
            }
            ListenerState::Pending => Some((1, ATTENTION_PENDING, ATTENTION_WAITING, None)),
            ListenerState::Starting { pod, .. } if silent.contains(pod.as_str()) => {
                Some((2, ATTENTION_STARTING, ATTENTION_NOT_ACKNOWLEDGED, Some(pod.clone())))
            }
            _ => None,
        };
        if let Some((rank, state, reason, pod)) = item {
            out.push((
                rank,
                Attention {
                    listener: id.clone(),
                    state: state.to_string(),
                    reason: reason.to_string(),
                    pod,
                },
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.listener.cmp(&b.1.listener)));
    let omitted = i32::try_from(out.len().saturating_sub(MAX_ATTENTION)).unwrap_or(i32::MAX);
    (out.into_iter().take(MAX_ATTENTION).map(|(_, a)| a).collect(), omitted)
}

/// `NotificationsReady` (with `spec.notifications` only): False names every sink problem.
fn sinks_condition(previous: &ListenerSetStatus, set: &ListenerSet, problems: &[String]) -> Condition {
    if problems.is_empty() {
        let n = set.spec.notifications.len();
        let s = if n == 1 { "" } else { "s" };
        let message = format!("{n} notification sink{s} ready");
        condition(
            previous,
            CONDITION_NOTIFICATIONS_READY,
            true,
            REASON_SINKS_READY,
            &message,
            set,
        )
    } else {
        let message = problems.join("; ");
        condition(
            previous,
            CONDITION_NOTIFICATIONS_READY,
            false,
            REASON_SINK_INVALID,
            &message,
            set,
        )
    }
}

/// Ready, Degraded and Stalled of a set.
#[derive(Debug)]
struct Conditions {
    ready: bool,
    ready_reason: &'static str,
    ready_message: String,
    degraded: bool,
    degraded_reason: &'static str,
    degraded_message: String,
    /// Only a person can fix what holds the set: `Stalled` is True with Ready's reason and message.
    stalled: bool,
}

/// `Ready`, `Degraded` and `Stalled` as `c` says them (`Stalled` with `Ready`'s reason and
/// message, True or False).
fn gate_conditions(previous: &ListenerSetStatus, set: &ListenerSet, c: &Conditions) -> Vec<Condition> {
    vec![
        condition(
            previous,
            CONDITION_READY,
            c.ready,
            c.ready_reason,
            &c.ready_message,
            set,
        ),
        condition(
            previous,
            CONDITION_DEGRADED,
            c.degraded,
            c.degraded_reason,
            &c.degraded_message,
            set,
        ),
        condition(
            previous,
            CONDITION_STALLED,
            c.stalled,
            c.ready_reason,
            &c.ready_message,
            set,
        ),
    ]
}

/// `c` with what only a person can fix, if anything: listeners' Lease names taken by Leases that
/// are not the set's (`collisions`), Secrets or keys the spec names missing or unreadable
/// (`problems`). Then the set is Stalled, Degraded, and not Ready, all three saying what to fix,
/// whatever runs: kstatus (Flux) fails on it at once instead of waiting for a Ready that cannot
/// come.
fn stall(mut c: Conditions, problems: &[String], collisions: &[String]) -> Conditions {
    let reason = if !collisions.is_empty() {
        REASON_LEASE_NAME_TAKEN
    } else if !problems.is_empty() {
        REASON_MISSING_SECRET
    } else {
        return c;
    };
    let message = collisions
        .iter()
        .chain(problems)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    c.ready = false;
    c.ready_reason = reason;
    c.ready_message = message.clone();
    c.degraded = true;
    c.degraded_reason = reason;
    c.degraded_message = message;
    c.stalled = true;
    c
}

/// Ready is True only when every listener that is not suspended runs (its holder renewed since
/// the assignment); otherwise the reason says why: when no pod may take a listener (`blocked`),
/// the message is [`CANNOT_MOVE`] and why, the words every view of the set repeats; it names the
/// pods whose agents do not renew; a new set `settling` says it waits for its pods to settle.
fn conditions(
    summary: &assigner::Summary,
    blocked: Option<&Blocked>,
    silent: &[Silent],
    problems: &[String],
    settling: bool,
) -> Conditions {
    let wanted = summary.listeners - summary.suspended;
    let all_running =
        summary.running >= wanted && summary.pending == 0 && summary.orphaned == 0 && summary.starting == 0;
    let counts = format!(
        "{} of {} listeners running ({} starting, {} pending, {} orphaned)",
        summary.running, wanted, summary.starting, summary.pending, summary.orphaned
    );
    let silent_message = (!silent.is_empty()).then(|| format!("{counts}; {}", silent_pods(silent)));
    let (ready_reason, ready_message) = if all_running {
        (
            REASON_ALL_RUNNING,
            format!("{} of {} listeners running", summary.running, wanted),
        )
    } else if let Some(b) = blocked {
        let reason = match b {
            Blocked::NoEligiblePod { .. } => REASON_NO_ELIGIBLE_PODS,
            Blocked::AgentsNotRenewing { .. } => REASON_AGENTS_NOT_RENEWING,
        };
        let hint = if silent.is_empty() {
            String::new()
        } else {
            format!("; {}", silent_pods(silent))
        };
        (reason, format!("{CANNOT_MOVE}{b}{hint}"))
    } else if let Some(m) = &silent_message {
        (REASON_AGENTS_NOT_RENEWING, m.clone())
    } else if summary.pending == 0 && summary.orphaned == 0 {
        (
            REASON_LISTENERS_STARTING,
            format!("{counts}: waiting for the holders' agents to renew their Leases"),
        )
    } else if settling {
        let settle = crate::listeners::decide::PODS_SETTLE.as_secs();
        let why = format!(
            "{counts}: the first are placed once the pods that may take them have stayed the same for {settle} s"
        );
        (REASON_LISTENERS_NOT_RUNNING, why)
    } else {
        (REASON_LISTENERS_NOT_RUNNING, counts)
    };
    let (degraded, degraded_reason, degraded_message) = if !problems.is_empty() {
        (true, REASON_MISSING_SECRET, problems.join("; "))
    } else if !silent.is_empty() {
        // Without the counts: an Event goes with every new message.
        (true, REASON_AGENTS_NOT_RENEWING, silent_pods(silent))
    } else if !all_running && blocked.is_some() {
        (true, ready_reason, ready_message.clone())
    } else if summary.orphaned > 0 {
        (
            true,
            REASON_ORPHANED,
            format!(
                "{} listeners have a gone or expired holder and are being taken over",
                summary.orphaned
            ),
        )
    } else {
        (false, REASON_AS_EXPECTED, "nothing needs attention".to_string())
    };
    Conditions {
        ready: all_running,
        ready_reason,
        ready_message,
        degraded,
        degraded_reason,
        degraded_message,
        stalled: false,
    }
}

/// "pods a, b never renewed a Lease assigned to them (…); pods c stopped renewing (…); they get no
/// listeners until they renew again or restart; pods d renew their liveness Lease but did not
/// acknowledge (…)": each pod for what its Leases show.
fn silent_pods(silent: &[Silent]) -> String {
    let names = |why: Silence| {
        let mut v: Vec<&str> = silent.iter().filter(|s| s.why == why).map(|s| s.pod.as_str()).collect();
        v.sort_unstable();
        let more = v.len().saturating_sub(10);
        let mut list = v.into_iter().take(10).collect::<Vec<_>>().join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        list
    };
    let mut parts = Vec::new();
    let never = names(Silence::NeverRenewed);
    if !never.is_empty() {
        parts.push(format!(
            "pods {never} never renewed a Lease assigned to them: is the baton agent sidecar running in them, \
             allowed to patch Leases?"
        ));
    }
    let stopped = names(Silence::Stopped);
    if !stopped.is_empty() {
        parts.push(format!(
            "pods {stopped} stopped renewing their Leases (agent dead, hung or cut off from the API server)"
        ));
    }
    let mut out = Vec::new();
    if !parts.is_empty() {
        out.push(format!(
            "{}; they get no listeners until they renew again or restart",
            parts.join("; ")
        ));
    }
    let not_serving = names(Silence::NotServing);
    if !not_serving.is_empty() {
        out.push(format!(
            "pods {not_serving} renew their liveness Lease but did not acknowledge a listener of this set \
             assigned to them: does their agent serve this set (its --listenerset)? They get no more of its \
             listeners until their agent registers anew (a restart)"
        ));
    }
    out.join("; ")
}

fn terminating_message(summary: &assigner::Summary) -> String {
    if summary.listeners == 0 {
        return "the ListenerSet is being deleted: no Lease is left".to_string();
    }
    format!(
        "the ListenerSet is being deleted: {} Leases left, {} of them held by a pod that was asked to stop the \
         listener; each Lease is deleted once its holder released it or it expired, then the ListenerSet goes",
        summary.listeners,
        summary.running + summary.starting
    )
}

pub(super) fn condition(
    previous: &ListenerSetStatus,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    set: &ListenerSet,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_string();
    let since = previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(jiff::Timestamp::now()));
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: since,
        observed_generation: set.metadata.generation,
    }
}

pub(super) async fn write_status(ctx: &Context, ns: &str, name: &str, status: &ListenerSetStatus) -> Result<()> {
    let api: Api<ListenerSet> = Api::namespaced(ctx.client.clone(), ns);
    let body = json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": "ListenerSet",
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
        .await?;
    ctx.stats.status_writes.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `listeners` listeners, `running` of them running, the others pending.
    fn summary(listeners: i32, running: i32) -> assigner::Summary {
        assigner::Summary {
            listeners,
            running,
            pending: listeners - running,
            ..Default::default()
        }
    }

    fn set() -> ListenerSet {
        let mut s = ListenerSet::new("sxt", Default::default());
        s.metadata.generation = Some(2);
        s
    }

    /// `(type, status, reason)` of each condition.
    fn gates(c: &[Condition]) -> Vec<(&str, &str, &str)> {
        c.iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn the_pods_held_count_settled_listeners_and_listed_ones() {
        let mut s = summary(5, 5);
        let on = |pod: &str| ListenerState::Running {
            pod: pod.into(),
            uid: format!("uid-{pod}"),
            transitions: 1,
        };
        s.states = vec![("a".into(), on("q")), ("b".into(), on("p"))];
        s.settled = [("p".to_string(), 2), ("r".to_string(), 1)].into();
        let (pods, omitted) = pods_of(&s);
        let pods: Vec<(&str, i32)> = pods.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        assert_eq!((pods, omitted), (vec![("p", 3), ("q", 1), ("r", 1)], 0));
    }

    #[test]
    fn a_missing_secret_stalls_the_set_until_it_is_there() {
        let missing =
            vec!["Secret default/tokens (spec.listenersFrom.secretRef) does not exist: create it".to_string()];
        // No listener is known without the Secret: nothing pends, yet the set is not Ready.
        let c = stall(conditions(&summary(0, 0), None, &[], &missing, false), &missing, &[]);
        let stalled = gate_conditions(&ListenerSetStatus::default(), &set(), &c);
        assert_eq!(
            gates(&stalled),
            [
                ("Ready", "False", "MissingSecret"),
                ("Degraded", "True", "MissingSecret"),
                ("Stalled", "True", "MissingSecret")
            ]
        );
        assert!(stalled.iter().all(|c| c.message == missing[0]), "{stalled:?}");
        assert!(stalled.iter().all(|c| c.observed_generation == Some(2)));

        // The Secret is there and its listeners run: Stalled turns False, with Ready's reason.
        let previous = ListenerSetStatus {
            conditions: stalled,
            ..Default::default()
        };
        let c = stall(conditions(&summary(2, 2), None, &[], &[], false), &[], &[]);
        let fixed = gate_conditions(&previous, &set(), &c);
        assert_eq!(
            gates(&fixed),
            [
                ("Ready", "True", "AllRunning"),
                ("Degraded", "False", "AsExpected"),
                ("Stalled", "False", "AllRunning")
            ]
        );
        assert_eq!(fixed[2].message, "2 of 2 listeners running");
    }

    #[test]
    fn only_what_a_person_must_fix_stalls_and_it_is_never_ready_then() {
        // Listeners waiting for a pod, or starting: in progress, not stalled.
        let waiting = stall(conditions(&summary(3, 1), None, &[], &[], false), &[], &[]);
        assert_eq!(
            (waiting.ready, waiting.stalled, waiting.ready_reason),
            (false, false, REASON_LISTENERS_NOT_RUNNING)
        );
        let blocked = Blocked::NoEligiblePod {
            selected: 0,
            not_ready: 0,
            draining: 0,
        };
        let settling = conditions(&summary(3, 0), None, &[], &[], true);
        assert_eq!(
            settling.ready_message,
            "0 of 3 listeners running (0 starting, 3 pending, 0 orphaned): the first are placed once the pods that may take them have stayed the same for 5 s"
        );
        let nobody = stall(conditions(&summary(3, 0), Some(&blocked), &[], &[], false), &[], &[]);
        assert_eq!((nobody.stalled, nobody.ready_reason), (false, REASON_NO_ELIGIBLE_PODS));

        // A listener's config Secret is missing: the others run, the set is stalled all the same.
        let missing = vec!["listener tokened: Secret default/tokens does not exist".to_string()];
        let c = stall(conditions(&summary(4, 3), None, &[], &missing, false), &missing, &[]);
        assert_eq!(
            (c.ready, c.stalled, c.ready_reason),
            (false, true, REASON_MISSING_SECRET)
        );

        // A Lease name taken: every listener the set could place runs, still not Ready; the
        // message names both problems, the taken name first.
        let taken = vec!["listener l1: Lease sxt-l1 is not this set's: delete or rename it".to_string()];
        let c = stall(conditions(&summary(2, 2), None, &[], &missing, false), &missing, &taken);
        assert_eq!(
            (c.ready, c.stalled, c.ready_reason),
            (false, true, REASON_LEASE_NAME_TAKEN)
        );
        assert_eq!(c.ready_message, format!("{}; {}", taken[0], missing[0]));
        assert_eq!(
            (c.degraded_reason, &c.degraded_message),
            (REASON_LEASE_NAME_TAKEN, &c.ready_message)
        );
    }

    #[test]
    fn each_pod_is_named_for_what_its_leases_show() {
        let s = |pod: &str, why| Silent { pod: pod.into(), why };
        let m = silent_pods(&[
            s("b", Silence::NotServing),
            s("a", Silence::NeverRenewed),
            s("c", Silence::Stopped),
        ]);
        assert!(m.contains("pods a never renewed a Lease"), "{m}");
        assert!(m.contains("pods c stopped renewing"), "{m}");
        assert!(
            m.contains("pods b renew their liveness Lease but did not acknowledge a listener of this set"),
            "{m}"
        );
        let renewing = silent_pods(&[s("b", Silence::NotServing)]);
        assert!(
            !renewing.contains("stopped") && !renewing.contains("renew again"),
            "{renewing}"
        );
    }
}
