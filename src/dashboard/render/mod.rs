//! The pages, rendered on the server with maud (every value from the cluster is escaped by the
//! template engine; the pages carry no inline script or style, which the Content-Security-Policy
//! forbids anyway). Each page is a layout around a *live fragment*: the part the live stream
//! sends again, whole, whenever what it shows changed. Pure functions of the caches' contents.
//!
//! Times are `<time datetime=…>` elements holding the RFC 3339 time; the page's script shows
//! them as kubectl's ages ("3m", "2d4h") and keeps them current, so a fragment only changes
//! when the cluster did.
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use maud::{html, Markup, DOCTYPE};

use crate::cache::tolerant::Bad;

use super::caches::{WatchState, Watched};

pub mod list;
pub mod listenerset;
pub mod rollout;

/// What the layout shows around a fragment.
pub struct Frame<'a> {
    pub title: &'a str,
    /// The live stream of this page.
    pub live: &'a str,
    pub csrf: &'a str,
    /// The API server (`host:port`) and the namespace scope, for the header.
    pub server: &'a str,
    pub scope: &'a str,
    pub read_only: bool,
}

/// The whole page: head (stylesheet, deferred script, CSRF token), header, the live fragment,
/// and the confirmation dialog the actions open.
pub fn page(frame: &Frame<'_>, fragment: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(frame.csrf);
                title { (frame.title) " · baton" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body data-live=(frame.live) data-read-only=(frame.read_only) {
                header.top {
                    a.brand href="/" { "baton" }
                    span.where { (frame.server) " · " (frame.scope) }
                    @if frame.read_only { span.badge.readonly { "read-only" } }
                    span #conn .conn { "connecting…" }
                }
                div #flash .flash hidden {}
                main #live { (fragment) }
                dialog #confirm {
                    form method="dialog" {
                        p #confirm-text {}
                        label #confirm-pick hidden {
                            span #confirm-pick-label {}
                            " "
                            select #confirm-select {}
                        }
                        menu {
                            button #confirm-cancel value="cancel" { "Cancel" }
                            button #confirm-ok value="ok" { "Confirm" }
                        }
                    }
                }
            }
        }
    }
}

/// A time the script shows as an age.
pub fn time(t: Option<Timestamp>) -> Markup {
    match t {
        Some(t) => {
            let s = t.round(jiff::Unit::Second).unwrap_or(t).to_string();
            html! { time datetime=(s) { (s) } }
        }
        None => html! { span.none { "-" } },
    }
}

pub fn time_of(t: Option<&Time>) -> Markup {
    time(t.map(|t| t.0))
}

/// `-` for nothing.
pub fn or_dash(s: Option<&str>) -> Markup {
    match s {
        Some(s) if !s.is_empty() => html! { (s) },
        _ => html! { span.none { "-" } },
    }
}

/// A path segment, percent-encoded beyond the characters Kubernetes names may hold.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn rollout_href(ns: &str, name: &str) -> String {
    format!("/rollouts/{}/{}", segment(ns), segment(name))
}

pub fn set_href(ns: &str, name: &str) -> String {
    format!("/listenersets/{}/{}", segment(ns), segment(name))
}

/// What the watches could not show, and objects left out because they do not decode.
pub fn problems(states: &[(Watched, WatchState)], bad: &[Bad]) -> Markup {
    let errors: Vec<&(Watched, WatchState)> = states.iter().filter(|(_, s)| s.error.is_some()).collect();
    html! {
        @if !errors.is_empty() || !bad.is_empty() {
            section.problems {
                @for (kind, state) in &errors {
                    p.problem data-kind=(kind.label()) {
                        strong { (kind.label()) ": " }
                        (state.error.as_deref().unwrap_or(""))
                    }
                }
                @for b in bad {
                    p.problem {
                        strong { (b.key()) ": " }
                        "left out, its stored object does not decode: " (b.error)
                    }
                }
            }
        }
    }
}

/// A table of conditions.
pub fn conditions(conds: &[Condition], generation: Option<i64>) -> Markup {
    html! {
        @if conds.is_empty() {
            p.none { "No conditions yet." }
        } @else {
            table.conditions {
                thead { tr { th { "Type" } th { "Status" } th { "Reason" } th { "Message" } th { "Since" } } }
                tbody {
                    @for c in conds {
                        @let stale = c.observed_generation.is_some_and(|g| Some(g) != generation);
                        tr.condition data-type=(c.type_) data-status=(c.status) .stale[stale] {
                            td { (c.type_) }
                            td.status { (c.status) }
                            td { (c.reason) }
                            td {
                                (c.message)
                                @if stale { " " span.note { "(of generation " (c.observed_generation.unwrap_or(0)) ")" } }
                            }
                            td { (time(Some(c.last_transition_time.0))) }
                        }
                    }
                }
            }
        }
    }
}

/// When an Event happened: its event time, else its last or first timestamp, else its creation.
pub fn event_time(e: &Event) -> Option<Timestamp> {
    e.event_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// At most this many Events on a page.
pub const MAX_EVENTS: usize = 100;

/// Events, newest first.
pub fn events(list: &[&Event]) -> Markup {
    let mut list: Vec<&Event> = list.to_vec();
    list.sort_by_key(|e| std::cmp::Reverse(event_time(e)));
    list.truncate(MAX_EVENTS);
    html! {
        @if list.is_empty() {
            p.none { "No events." }
        } @else {
            ol.events {
                @for e in &list {
                    @let kind = e.type_.as_deref().unwrap_or("Normal");
                    li.event .warning[kind == "Warning"] data-reason=(e.reason.as_deref().unwrap_or("")) {
                        span.when { (time(event_time(e))) }
                        span.reason { (e.reason.as_deref().unwrap_or("")) }
                        span.note { (e.message.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// The fragment of an object that is not (or no longer) there.
pub fn missing(kind: &str, ns: &str, name: &str, synced: bool) -> Markup {
    html! {
        section.missing {
            h1 { (kind) " " span.ns { (ns) "/" } (name) }
            @if synced {
                p { (kind) " " (ns) "/" (name) " not found. This page follows it if it is created." }
            } @else {
                p { "Loading…" }
            }
            p { a href="/" { "All Rollouts and ListenerSets" } }
        }
    }
}

#[cfg(test)]
mod tests;
