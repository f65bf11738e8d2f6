//! The words every view of a ListenerSet uses (`baton listeners NAME`, `baton listeners list`,
//! `recover`, the dashboard, `kubectl get lset`): one state per listener, one summary line, why
//! nothing can move, and the table columns, defined once so the views cannot disagree.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceColumnDefinition;

use super::{lease, ListenerSetStatus, ATTENTION_ORPHANED, CONDITION_READY};

/// The start of the `Ready` message the controller writes when listeners wait and no pod may
/// take any (the rest says why: no eligible pod, or agents not renewing).
pub const CANNOT_MOVE: &str = "no listener can move: ";

/// What one listener is doing, as every view names it. The status counts `Stopping` listeners
/// with their holder's state (running or starting) until the holder lets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Its holder's agent acknowledged the assignment and runs it.
    Running,
    /// Assigned; the holder's agent has not acknowledged yet.
    Starting,
    /// Its holder was asked to release it (a move, a suspend, a deleted Lease).
    Stopping,
    /// Its holder is gone or its agent fell silent: it waits to be taken over.
    Orphaned,
    /// No pod holds it.
    Pending,
    /// Suspended and not running.
    Suspended,
}

impl State {
    /// The word every table and summary uses.
    pub fn word(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Starting => "starting",
            State::Stopping => "stopping",
            State::Orphaned => "orphaned",
            State::Pending => "pending",
            State::Suspended => "suspended",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// The state of listener `id` from its Lease (who holds it, acknowledged, asked to release) and
/// the set's status (which holders the controller found gone or silent: `status.attention`, or,
/// when that list is cut short, a holder missing from `status.pods`).
pub fn state(id: &str, lease: Option<&Lease>, suspended: bool, status: Option<&ListenerSetStatus>) -> State {
    let holder = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty());
    match (holder, lease) {
        (Some(h), _) if status.is_some_and(|st| orphaned(st, id, h)) => State::Orphaned,
        (Some(_), Some(l)) if lease::is_terminating(l) || lease::release_requested(l).is_some() => State::Stopping,
        (Some(_), Some(l)) if lease::acknowledged(l) => State::Running,
        (Some(_), _) => State::Starting,
        (None, _) if suspended => State::Suspended,
        (None, _) => State::Pending,
    }
}

/// Whether the status says listener `id`, held by `holder`, is orphaned.
fn orphaned(st: &ListenerSetStatus, id: &str, holder: &str) -> bool {
    let named = st
        .attention
        .iter()
        .any(|a| a.listener == id && a.state == ATTENTION_ORPHANED && a.pod.as_deref() == Some(holder));
    // `attention` is capped: past the cap, a holder the status does not count as holding
    // anything (and `pods` is complete) is one the controller found gone or silent.
    named || (st.orphaned > 0 && st.attention_omitted > 0 && st.pods_omitted == 0 && !st.pods.contains_key(holder))
}

/// "6 listeners, 4 running, 0 starting, 0 pending, 2 orphaned, 0 suspended".
pub fn summary(st: &ListenerSetStatus) -> String {
    format!(
        "{} listeners, {} running, {} starting, {} pending, {} orphaned, {} suspended",
        st.listeners, st.running, st.starting, st.pending, st.orphaned, st.suspended
    )
}

/// Why no waiting listener can move, when the controller found that none can: "no eligible pod
/// (…)" or "agents not renewing (…)".
pub fn cannot_move(st: &ListenerSetStatus) -> Option<&str> {
    st.conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY && c.status == "False")
        .and_then(|c| c.message.strip_prefix(CANNOT_MOVE))
}

/// A column of the ListenerSet tables (`kubectl get lset`, `baton listeners list`, the
/// dashboard's list); `priority` 1 columns show with `-o wide` only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// `integer`, `string` or `date`.
    pub kind: &'static str,
    pub json_path: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

const fn column(name: &'static str, kind: &'static str, json_path: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        json_path,
        description,
        priority: 0,
    }
}

/// The columns after NAME, in order.
pub const COLUMNS: [Column; 9] = [
    column("LISTENERS", "integer", ".status.listeners", "Listeners in the set"),
    column(
        "RUNNING",
        "integer",
        ".status.running",
        "Listeners run by a live pod whose agent acknowledged the assignment",
    ),
    column(
        "STARTING",
        "integer",
        ".status.starting",
        "Listeners assigned to a live pod whose agent has not acknowledged yet",
    ),
    column("PENDING", "integer", ".status.pending", "Listeners no pod holds"),
    column(
        "ORPHANED",
        "integer",
        ".status.orphaned",
        "Listeners whose holder is gone or whose agent fell silent",
    ),
    column(
        "REASON",
        "string",
        ".status.conditions[?(@.type==\"Ready\")].reason",
        "Why the set is Ready or not",
    ),
    column("AGE", "date", ".metadata.creationTimestamp", ""),
    Column {
        priority: 1,
        ..column(
            "SUSPENDED",
            "integer",
            ".status.suspended",
            "Suspended listeners no longer running",
        )
    },
    Column {
        priority: 1,
        ..column(
            "MESSAGE",
            "string",
            ".status.conditions[?(@.type==\"Ready\")].message",
            "The Ready condition's message: what runs, or why listeners wait",
        )
    },
];

/// The columns shown, `wide` or not.
pub fn columns(wide: bool) -> impl Iterator<Item = &'static Column> {
    COLUMNS.iter().filter(move |c| wide || c.priority == 0)
}

/// [`COLUMNS`] as the CRD's `additionalPrinterColumns`.
pub fn printer_columns() -> Vec<CustomResourceColumnDefinition> {
    COLUMNS
        .iter()
        .map(|c| CustomResourceColumnDefinition {
            name: c.name.to_string(),
            type_: c.kind.to_string(),
            json_path: c.json_path.to_string(),
            description: (!c.description.is_empty()).then(|| c.description.to_string()),
            priority: (c.priority != 0).then_some(c.priority),
            format: None,
        })
        .collect()
}

/// The value of a status column (not `date` ones: the caller formats ages), as kubectl prints
/// it; `None` where kubectl prints nothing (no status yet, no Ready condition).
pub fn cell(c: &Column, st: Option<&ListenerSetStatus>) -> Option<String> {
    let st = st?;
    let ready = || st.conditions.iter().find(|c| c.type_ == CONDITION_READY);
    match c.name {
        "LISTENERS" => Some(st.listeners.to_string()),
        "RUNNING" => Some(st.running.to_string()),
        "STARTING" => Some(st.starting.to_string()),
        "PENDING" => Some(st.pending.to_string()),
        "ORPHANED" => Some(st.orphaned.to_string()),
        "SUSPENDED" => Some(st.suspended.to_string()),
        "REASON" => ready().map(|c| c.reason.clone()),
        "MESSAGE" => ready().map(|c| c.message.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listenerset::Attention;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn held(holder: &str) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ready(status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: CONDITION_READY.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    #[test]
    fn a_holder_the_status_names_orphaned_is_orphaned_whatever_its_lease_says() {
        let st = ListenerSetStatus {
            orphaned: 1,
            attention: vec![Attention {
                listener: "l1".into(),
                state: ATTENTION_ORPHANED.into(),
                reason: "HolderGoneOrSilent".into(),
                pod: Some("web-0".into()),
            }],
            ..Default::default()
        };
        let lease = held("web-0");
        assert_eq!(state("l1", Some(&lease), false, Some(&st)), State::Orphaned);
        // Once another pod holds it, the stale entry does not matter.
        let lease = held("web-1");
        assert_eq!(state("l1", Some(&lease), false, Some(&st)), State::Starting);
        assert_eq!(state("l2", None, false, Some(&st)), State::Pending);
        assert_eq!(state("l2", None, true, Some(&st)), State::Suspended);
    }

    #[test]
    fn past_the_attention_cap_a_holder_missing_from_pods_is_orphaned() {
        let mut st = ListenerSetStatus {
            orphaned: 30,
            attention_omitted: 10,
            ..Default::default()
        };
        st.pods.insert("web-1".into(), 3);
        assert_eq!(state("l9", Some(&held("web-0")), false, Some(&st)), State::Orphaned);
        assert_eq!(state("l9", Some(&held("web-1")), false, Some(&st)), State::Starting);
        st.pods_omitted = 1;
        assert_eq!(state("l9", Some(&held("web-0")), false, Some(&st)), State::Starting);
    }

    #[test]
    fn the_summary_counts_every_state_the_status_counts() {
        let st = ListenerSetStatus {
            listeners: 6,
            running: 3,
            starting: 1,
            pending: 1,
            orphaned: 1,
            ..Default::default()
        };
        assert_eq!(
            summary(&st),
            "6 listeners, 3 running, 1 starting, 1 pending, 1 orphaned, 0 suspended"
        );
    }

    #[test]
    fn why_nothing_can_move_comes_from_a_false_ready_condition_only() {
        let why = "no eligible pod (no pod matches spec.selector)";
        let mut st = ListenerSetStatus {
            conditions: vec![ready("False", "NoEligiblePods", &format!("{CANNOT_MOVE}{why}"))],
            ..Default::default()
        };
        assert_eq!(cannot_move(&st), Some(why));
        st.conditions = vec![ready("False", "ListenersNotRunning", "1 of 2 listeners running")];
        assert_eq!(cannot_move(&st), None);
        st.conditions = vec![ready("True", "AllRunning", &format!("{CANNOT_MOVE}{why}"))];
        assert_eq!(cannot_move(&st), None);
    }

    #[test]
    fn wide_adds_the_priority_columns_and_cells_follow_the_status() {
        let narrow: Vec<&str> = columns(false).map(|c| c.name).collect();
        assert_eq!(
            narrow,
            [
                "LISTENERS",
                "RUNNING",
                "STARTING",
                "PENDING",
                "ORPHANED",
                "REASON",
                "AGE"
            ]
        );
        let wide: Vec<&str> = columns(true).map(|c| c.name).collect();
        assert_eq!(wide.len(), narrow.len() + 2);
        assert_eq!(&wide[narrow.len()..], ["SUSPENDED", "MESSAGE"]);
        let st = ListenerSetStatus {
            listeners: 2,
            orphaned: 2,
            conditions: vec![ready("False", "NoEligiblePods", "why")],
            ..Default::default()
        };
        let cells: Vec<Option<String>> = COLUMNS.iter().map(|c| cell(c, Some(&st))).collect();
        let want = ["2", "0", "0", "0", "2"].map(|s| Some(s.to_string()));
        assert_eq!(&cells[..5], &want);
        assert_eq!(cells[5].as_deref(), Some("NoEligiblePods"));
        assert_eq!(cells[6], None);
        assert_eq!(cells[8].as_deref(), Some("why"));
        assert_eq!(cell(&COLUMNS[0], None), None);
        assert_eq!(printer_columns()[7].priority, Some(1));
    }
}
