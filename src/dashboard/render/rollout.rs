//! A Rollout's page: what serves and what is rolling out (the CLI's header), the actions, batch
//! progress, one tile per instance, conditions, the failed update, revision history with the
//! deploy records, and the Rollout's Events.
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use maud::{html, Markup};
use serde_json::json;

use super::{conditions, events, or_dash, segment, time, time_of};
use crate::actions::judge::{header, phase_word, refusal, verdict, Request, Verdict};
use crate::actions::revision_log::{entries, RevisionEntry};
use crate::api::rollout::{InstanceStatus, Rollout};

/// What the page shows of one Rollout.
pub struct RolloutView<'a> {
    pub rollout: &'a Rollout,
    /// The revisions it owns, oldest first.
    pub revisions: Vec<&'a ControllerRevision>,
    /// Events about it.
    pub events: Vec<&'a Event>,
    /// Hide the actions (`--read-only`).
    pub read_only: bool,
}

/// One action button: the action's URL, the confirmation it asks, its JSON body, and why it is
/// disabled (the CLI's refusal), if it is.
struct Action<'a> {
    label: &'a str,
    action: &'a str,
    confirm: String,
    body: serde_json::Value,
    refused: Option<String>,
    /// Ask for a value (the body key) among `choices` in the confirmation.
    pick: Option<(&'a str, &'a str, Vec<String>)>,
    danger: bool,
}

impl<'a> Action<'a> {
    fn new(label: &'a str, action: &'a str, confirm: String) -> Self {
        Action {
            label,
            action,
            confirm,
            body: json!({}),
            refused: None,
            pick: None,
            danger: false,
        }
    }
}

fn button(r: &Rollout, a: Action<'_>) -> Markup {
    let url = format!(
        "/api/rollouts/{}/{}/{}",
        segment(&r.namespace().unwrap_or_default()),
        segment(&r.name_any()),
        a.action
    );
    let choices = a.pick.as_ref().map(|(_, _, c)| json!(c).to_string());
    html! {
        button.action .danger[a.danger] type="button" data-action=(a.action) data-url=(url)
            data-confirm=(a.confirm) data-body=(a.body.to_string())
            data-pick=[a.pick.as_ref().map(|(k, _, _)| *k)]
            data-pick-label=[a.pick.as_ref().map(|(_, l, _)| *l)]
            data-choices=[choices]
            disabled[a.refused.is_some()] title=[a.refused.as_deref()] { (a.label) }
    }
}

/// The rollout-wide actions, each judged as the CLI judges it.
fn actions(r: &Rollout) -> Markup {
    let id = format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any());
    let judged = |label, action, req: Request, confirm: String| {
        let mut a = Action::new(label, action, confirm);
        a.refused = refusal(r, req);
        a
    };
    let mut list = vec![
        judged("Promote", "promote", Request::Promote, format!("Promote rollout {id}: end the current pause and start the next batch?")),
        judged(
            "Promote full",
            "promote-full",
            Request::PromoteFull,
            format!("Promote rollout {id} fully: skip every remaining batch and pause? The rest of the instances move now, still health-gated."),
        ),
    ];
    if r.spec.paused {
        list.push(Action::new(
            "Resume",
            "resume",
            format!("Resume rollout {id} (clear spec.paused)?"),
        ));
    } else {
        list.push(Action::new(
            "Pause",
            "pause",
            format!("Pause rollout {id}: stop all progress (set spec.paused)?"),
        ));
    }
    let mut abort = judged(
        "Abort",
        "abort",
        Request::Abort,
        format!("Abort rollout {id}: every instance returns to the last healthy revision at once?"),
    );
    abort.danger = true;
    list.push(abort);
    list.push(judged(
        "Retry",
        "retry",
        Request::Retry,
        format!("Retry rollout {id}: roll the failed revision out again?"),
    ));
    list.push(Action::new(
        "Restart",
        "restart",
        format!("Restart every instance of rollout {id} (a new revision, rolled out in batches)?"),
    ));
    html! {
        div.actions { @for a in list { (button(r, a)) } }
    }
}

/// Batch progress: the batch under way, a bar of updated instances, the counts.
fn progress(r: &Rollout) -> Markup {
    let st = r.status.clone().unwrap_or_default();
    let batches: Vec<String> = r
        .spec
        .strategy
        .batches
        .iter()
        .map(|b| match b {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
        })
        .collect();
    html! {
        section.progress {
            @if let Some(b) = &st.batch {
                p.batch data-current=(b.current) data-total=(b.total) {
                    "Batch " strong { (b.current) "/" (b.total) }
                    @if !batches.is_empty() { span.note { " (strategy: " (batches.join(", ")) ")" } }
                    @if let Some(t) = &b.started_at { span.note { " started " (time(Some(t.0))) } }
                }
            }
            @if let Some(p) = &st.progress {
                p.counts data-completed=(p.completed) data-total=(p.total) {
                    progress max=(p.total.max(1)) value=(p.completed) {}
                    " " strong { (p.completed) "/" (p.total) } " updated · failed " (p.failed)
                    " · pending " (p.pending)
                    @if p.rolled_back > 0 { " · rolled back " (p.rolled_back) }
                }
            }
            @if let Some(m) = &st.message { p.message { (m) } }
        }
    }
}

/// One tile per instance: version (on the target or not), revision, Ready, pinned, since, pod,
/// and pin/unpin.
fn tiles(r: &Rollout, versions: &[String], read_only: bool) -> Markup {
    let st = r.status.clone().unwrap_or_default();
    html! {
        section.instances {
            h2 { "Instances" }
            @if st.instances.is_empty() {
                p.none { "No instances yet." }
            } @else {
                ul #tiles .tiles {
                    @for i in &st.instances { (tile(r, i, versions, read_only)) }
                }
            }
            @if !st.versions.is_empty() {
                p.versions {
                    "Versions: "
                    @for (n, (v, count)) in st.versions.iter().enumerate() {
                        @if n > 0 { ", " }
                        span.version data-version=(v) { (v) ": " (count) }
                    }
                }
            }
        }
    }
}

fn tile(r: &Rollout, i: &InstanceStatus, versions: &[String], read_only: bool) -> Markup {
    let version = i.version.as_deref().unwrap_or("");
    let target = version == r.spec.version;
    let id = format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any());
    let mut pin = Action::new(
        "Pin…",
        "pin",
        format!("Pin instance {} of rollout {id} to a version from its history?", i.name),
    );
    pin.body = json!({"instances": [i.name]});
    pin.pick = Some(("version", "Version", versions.to_vec()));
    let mut unpin = Action::new(
        "Unpin",
        "unpin",
        format!(
            "Unpin instance {} of rollout {id}: it follows the rollout's version again?",
            i.name
        ),
    );
    unpin.body = json!({"instances": [i.name]});
    html! {
        li.tile .ready[i.ready] .unready[!i.ready] .target[target] .old[!target] .pinned[i.pinned]
            data-instance=(i.name) data-version=(version) data-revision=(i.revision)
            data-ready=(i.ready) data-pinned=(i.pinned) {
            div.name { (i.name) }
            div.ver { (or_dash(i.version.as_deref())) span.rev { " rev " (i.revision) } }
            div.state { @if i.ready { "Ready" } @else { "Not ready" } }
            @if i.pinned {
                div.pin { "pinned" @if let Some(v) = &i.pinned_version { " to " (v) } }
            }
            div.since { "since " (time_of(i.since.as_ref())) }
            div.pod { (or_dash(i.pod.as_deref())) }
            @if !read_only {
                div.tile-actions {
                    @if i.pinned { (button(r, unpin)) } @else { (button(r, pin)) }
                }
            }
        }
    }
}

fn failed_update(r: &Rollout) -> Markup {
    let Some(f) = r.status.as_ref().and_then(|s| s.failed_update.as_ref()) else {
        return html! {};
    };
    html! {
        section.failed {
            h2 { "Failed update" }
            p {
                strong { (f.version) } " (" (f.revision) ") failed at batch " (f.batch) ": " (f.reason)
                @if f.rolled_back { " — rolled back" }
                @if let Some(t) = &f.at { " " (time_of(Some(t))) }
            }
            p.message { (f.message) }
            @if !f.instances.is_empty() { p { "Instances: " (f.instances.join(", ")) } }
        }
    }
}

fn revisions(r: &Rollout, list: &[RevisionEntry], read_only: bool) -> Markup {
    let id = format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any());
    html! {
        @if list.is_empty() {
            p.none { "No revisions yet." }
        } @else {
            table #revisions .list {
                thead { tr {
                    th { "Revision" } th { "Version" } th { "Age" } th { "Change cause" } th { "Changed by" }
                    th { "Status" } th { "Images" } @if !read_only { th {} }
                } }
                tbody {
                    @for e in list.iter().rev() {
                        tr.revision data-revision=(e.revision) data-version=(e.version) {
                            td { (e.revision) }
                            td { (e.version) }
                            td { (time(e.created)) }
                            td.cause { (or_dash(e.change_cause.as_deref())) }
                            td { (or_dash(e.changed_by.as_deref())) }
                            td { (e.marks.join(", ")) }
                            td { (e.images.join(", ")) }
                            @if !read_only {
                                td {
                                    @if !e.marks.iter().any(|m| m == "update") { (undo(r, &id, e)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn undo(r: &Rollout, id: &str, e: &RevisionEntry) -> Markup {
    let mut undo = Action::new(
        "Undo to this",
        "undo",
        format!(
            "Roll rollout {id} back to revision {} ({})? The instances move straight there, without the strategy's batches and pauses.",
            e.revision, e.version
        ),
    );
    undo.body = json!({"revision": e.revision});
    button(r, undo)
}

fn records(r: &Rollout) -> Markup {
    let list = r.status.as_ref().map(|s| s.history.as_slice()).unwrap_or(&[]);
    html! {
        @if !list.is_empty() {
            h3 { "Deploys and rollbacks" }
            table #records .list {
                thead { tr {
                    th { "ID" } th { "Kind" } th { "Trigger" } th { "Revision" } th { "Version" } th { "From" }
                    th { "Started" } th { "Finished" } th { "Outcome" } th { "Message" }
                } }
                tbody {
                    @for d in list.iter().rev() {
                        tr.record data-outcome=(d.outcome.to_string()) {
                            td { (d.id) } td { (d.kind.to_string()) } td { (d.trigger.to_string()) }
                            td { (d.revision) } td { (d.version) } td { (or_dash(d.from_version.as_deref())) }
                            td { (time_of(Some(&d.started_at))) } td { (time_of(d.finished_at.as_ref())) }
                            td { (d.outcome.to_string()) } td { (or_dash(d.message.as_deref())) }
                        }
                    }
                }
            }
        }
    }
}

/// The Rollout page's live fragment.
pub fn fragment(view: &RolloutView<'_>) -> Markup {
    let r = view.rollout;
    let v = verdict(r);
    let phase = phase_word(r, v);
    let history = entries(r, view.revisions.iter().copied());
    let mut versions: Vec<String> = history.iter().map(|e| e.version.clone()).collect();
    versions.sort();
    versions.dedup();
    html! {
        section.head data-phase=(phase) {
            h1 { "Rollout " span.ns { (r.namespace().unwrap_or_default()) "/" } (r.name_any()) }
            p.header {
                span.phase .(format!("phase-{}", phase.to_lowercase())) .failed[v == Verdict::Failed] { (phase) }
                " " (header(r))
            }
            @if r.spec.paused { p.paused { "spec.paused is true: nothing moves until it is resumed." } }
            @if !view.read_only { (actions(r)) }
        }
        (progress(r))
        (tiles(r, &versions, view.read_only))
        section {
            h2 { "Conditions" }
            (conditions(r.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]), r.metadata.generation))
        }
        (failed_update(r))
        section.history {
            h2 { "Revision history" }
            (revisions(r, &history, view.read_only))
            (records(r))
        }
        section {
            h2 { "Events" }
            (events(&view.events))
        }
    }
}
