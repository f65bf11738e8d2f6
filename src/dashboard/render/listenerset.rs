//! A ListenerSet's page: which pod holds which listener, with its fencing token, from the listener
//! Leases themselves (holder, since when, token, acknowledged or not, a release asked for; the
//! status only counts), and the handover Events.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use maud::{html, Markup};

use super::{conditions, events, or_dash, time};
use crate::api::listenerset::lease::{acknowledged, fencing_token, listener_of, release_requested};
use crate::api::listenerset::view;
use crate::api::listenerset::{ListenerSet, ListenerSetStatus};

/// What the page shows of one ListenerSet.
pub struct SetView<'a> {
    pub set: &'a ListenerSet,
    /// Its listener Leases.
    pub leases: Vec<&'a Lease>,
    /// Why the Leases cannot be shown, if they cannot (kubectl's words).
    pub leases_error: Option<String>,
    pub events: Vec<&'a Event>,
}

/// One listener's row: from the spec and its Lease.
struct Row<'a> {
    id: String,
    suspended: bool,
    lease: Option<&'a Lease>,
}

impl Row<'_> {
    /// The pod that holds the listener's Lease, if any.
    fn holder(&self) -> Option<&str> {
        self.lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.holder_identity.as_deref())
            .filter(|h| !h.is_empty())
    }
}

fn rows<'a>(view: &SetView<'a>) -> Vec<Row<'a>> {
    let set = view.set;
    let name = set.name_any();
    let leases: BTreeMap<&str, &Lease> = view
        .leases
        .iter()
        .filter_map(|l| listener_of(l).filter(|(s, _)| *s == name).map(|(_, id)| (id, *l)))
        .collect();
    let mut ids: BTreeSet<String> = set.spec.listeners.iter().map(|l| l.id.clone()).collect();
    ids.extend(leases.keys().map(|k| k.to_string()));
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort_by_cached_key(|id| natural(id));
    ids.into_iter()
        .map(|id| Row {
            suspended: set.spec.listeners.iter().any(|l| l.id == id && l.suspend),
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

fn row(r: &Row<'_>, status: Option<&ListenerSetStatus>) -> Markup {
    let holder = r.holder();
    let lease = r.lease;
    // The words of every view of the set: a holder the status found gone or silent is orphaned.
    let state = view::state(&r.id, lease, r.suspended, status).word();
    let spec = lease.and_then(|l| l.spec.as_ref());
    let since = spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0);
    let acked = spec
        .filter(|_| lease.is_some_and(acknowledged))
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    html! {
        tr.listener data-listener=(r.id) data-state=(state) data-pod=(holder.unwrap_or("")) {
            td { (r.id) }
            td.state { (state) }
            td.pod { (or_dash(holder)) }
            td { (time(since.filter(|_| holder.is_some()))) }
            td.token { (lease.map(|l| fencing_token(l).to_string()).unwrap_or_else(|| "-".into())) }
            td { (time(acked)) }
            td { (or_dash(lease.and_then(release_requested))) }
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
        if let Some(pod) = r.holder() {
            pods.entry(pod).or_default().push(r.id.as_str());
        }
    }
    html! {
        section.head {
            h1 { "ListenerSet " span.ns { (set.namespace().unwrap_or_default()) "/" } (set.name_any()) }
            p.counts { (view::summary(&st).replace(", ", " · ")) }
            @if let Some(why) = view::cannot_move(&st) {
                p.problem.blocked { strong { (view::CANNOT_MOVE.trim_end_matches(": ")) ": " } (why) }
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
                    th { "Acknowledged" } th { "Release asked" }
                } }
                tbody { @for r in &rows { (row(r, set.status.as_ref())) } }
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
