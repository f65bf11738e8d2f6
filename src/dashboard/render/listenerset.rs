//! A ListenerSet's page: which pod holds which listener, with its fencing token, from the set's
//! status and from the listener Leases themselves (holder, token, last renewal, a release asked
//! for), and the handover Events.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use maud::{html, Markup};

use super::{conditions, events, or_dash, time, time_of};
use crate::api::listenerset::lease::{fencing_token, listener_of, release_requested};
use crate::api::listenerset::{Assignment, ListenerSet};

/// What the page shows of one ListenerSet.
pub struct SetView<'a> {
    pub set: &'a ListenerSet,
    /// Its listener Leases.
    pub leases: Vec<&'a Lease>,
    /// Why the Leases cannot be shown, if they cannot (kubectl's words).
    pub leases_error: Option<String>,
    pub events: Vec<&'a Event>,
}

/// One listener's row: from the spec, the status and its Lease.
struct Row<'a> {
    id: String,
    suspended: bool,
    assignment: Option<&'a Assignment>,
    token: Option<i32>,
    lease: Option<&'a Lease>,
}

fn rows<'a>(view: &SetView<'a>) -> Vec<Row<'a>> {
    let set = view.set;
    let name = set.name_any();
    let st = set.status.as_ref();
    let leases: BTreeMap<&str, &Lease> = view
        .leases
        .iter()
        .filter_map(|l| listener_of(l).filter(|(s, _)| *s == name).map(|(_, id)| (id, *l)))
        .collect();
    let mut ids: BTreeSet<String> = set.spec.listeners.iter().map(|l| l.id.clone()).collect();
    if let Some(st) = st {
        ids.extend(st.assignments.iter().map(|a| a.listener.clone()));
    }
    ids.extend(leases.keys().map(|k| k.to_string()));
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort_by_cached_key(|id| natural(id));
    ids.into_iter()
        .map(|id| Row {
            suspended: set.spec.listeners.iter().any(|l| l.id == id && l.suspend),
            assignment: st.and_then(|s| s.assignments.iter().find(|a| a.listener == id)),
            token: st.and_then(|s| s.fencing_tokens.get(&id).copied()),
            lease: leases.get(id.as_str()).copied(),
            id,
        })
        .collect()
}

/// A sort key that puts `listener2` before `listener10`: runs of digits compare as numbers.
pub fn natural(s: &str) -> Vec<(String, u128)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((std::mem::take(&mut text), digits.parse().unwrap_or(u128::MAX)));
                digits.clear();
            }
            text.push(c);
        }
    }
    key.push((
        text,
        if digits.is_empty() {
            0
        } else {
            digits.parse().unwrap_or(u128::MAX)
        },
    ));
    key
}

fn row(r: &Row<'_>) -> Markup {
    let holder = r
        .lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty());
    let state = match (r.assignment, r.suspended) {
        (Some(_), _) => "running",
        (None, true) => "suspended",
        (None, false) if holder.is_some() => "starting",
        (None, false) => "not running",
    };
    let renewed = r
        .lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    html! {
        tr.listener data-listener=(r.id) data-state=(state) data-pod=(r.assignment.map(|a| a.pod.as_str()).unwrap_or("")) {
            td { (r.id) }
            td.state { (state) }
            td.pod { (or_dash(r.assignment.map(|a| a.pod.as_str()))) }
            td { (time_of(r.assignment.and_then(|a| a.since.as_ref()))) }
            td.token { (r.assignment.map(|a| a.transitions.to_string()).or(r.token.map(|t| t.to_string())).unwrap_or_else(|| "-".into())) }
            td { (or_dash(holder)) }
            td { (r.lease.map(|l| fencing_token(l).to_string()).unwrap_or_else(|| "-".into())) }
            td { (time(renewed)) }
            td { (or_dash(r.lease.and_then(release_requested))) }
        }
    }
}

/// The ListenerSet page's live fragment.
pub fn fragment(view: &SetView<'_>) -> Markup {
    let set = view.set;
    let st = set.status.clone().unwrap_or_default();
    let rows = rows(view);
    let mut pods: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &rows {
        if let Some(a) = r.assignment {
            pods.entry(a.pod.as_str()).or_default().push(r.id.as_str());
        }
    }
    html! {
        section.head {
            h1 { "ListenerSet " span.ns { (set.namespace().unwrap_or_default()) "/" } (set.name_any()) }
            p.counts {
                (st.listeners) " listeners · " (st.running) " running · " (st.pending) " pending · "
                (st.orphaned) " orphaned · " (st.suspended) " suspended"
            }
        }
        section {
            h2 { "Pods" }
            @if pods.is_empty() {
                p.none { "No listener runs on any pod." }
            } @else {
                ul.pods {
                    @for (pod, ids) in &pods {
                        li.podcard data-pod=(pod) {
                            div.name { (pod) }
                            div.ids { (ids.join(", ")) }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Listeners" }
            @if let Some(e) = &view.leases_error { p.problem { strong { "Leases: " } (e) } }
            table #listeners .list {
                thead { tr {
                    th { "Listener" } th { "State" } th { "Pod" } th { "Since" } th { "Token" }
                    th { "Lease holder" } th { "Lease token" } th { "Renewed" } th { "Release asked" }
                } }
                tbody { @for r in &rows { (row(r)) } }
            }
        }
        section {
            h2 { "Conditions" }
            (conditions(&st.conditions, set.metadata.generation))
        }
        section {
            h2 { "Events" }
            (events(&view.events))
        }
    }
}
