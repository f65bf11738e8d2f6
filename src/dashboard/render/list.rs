//! The front page: every Rollout and ListenerSet in scope, with what `kubectl get` shows of
//! them (phase, version, batch, age).
use kube::ResourceExt;
use maud::{html, Markup};

use super::{rollout_href, set_href, time_of};
use crate::actions::judge::{phase_word, verdict, Verdict};
use crate::api::listenerset::{view, ListenerSet, CONDITION_READY};
use crate::api::rollout::Rollout;

/// The list fragment: Rollouts, then ListenerSets, each sorted by namespace and name.
pub fn fragment(rollouts: &[&Rollout], sets: &[&ListenerSet]) -> Markup {
    let mut rollouts = rollouts.to_vec();
    rollouts.sort_by_key(|r| (r.namespace(), r.name_any()));
    let mut sets = sets.to_vec();
    sets.sort_by_key(|s| (s.namespace(), s.name_any()));
    html! {
        section {
            h1 { "Rollouts " span.count { (rollouts.len()) } }
            @if rollouts.is_empty() {
                p.none { "No Rollouts." }
            } @else {
                table #rollouts .list {
                    thead { tr {
                        th { "Namespace" } th { "Name" } th { "Phase" } th { "Version" } th { "Target" }
                        th { "Batch" } th { "Ready" } th { "Up-to-date" } th { "Age" }
                    } }
                    tbody { @for r in &rollouts { (rollout_row(r)) } }
                }
            }
        }
        section {
            h1 { "ListenerSets " span.count { (sets.len()) } }
            @if sets.is_empty() {
                p.none { "No ListenerSets." }
            } @else {
                table #listenersets .list {
                    // The columns of `kubectl get listenersets` and `baton listeners list`.
                    thead { tr {
                        th { "Namespace" } th { "Name" }
                        @for c in view::columns(false) { th { (title(c.name)) } }
                    } }
                    tbody { @for s in &sets { (set_row(s)) } }
                }
            }
        }
    }
}

fn rollout_row(r: &Rollout) -> Markup {
    let ns = r.namespace().unwrap_or_default();
    let name = r.name_any();
    let v = verdict(r);
    let phase = phase_word(r, v);
    let st = r.status.clone().unwrap_or_default();
    html! {
        tr.rollout data-name=(name) data-namespace=(ns) data-phase=(phase) {
            td { (ns) }
            td { a href=(rollout_href(&ns, &name)) { (name) } }
            td { span.phase .(format!("phase-{}", phase.to_lowercase())) .failed[v == Verdict::Failed] { (phase) } }
            td.version { (st.version.as_deref().unwrap_or("-")) }
            td { (r.spec.version) }
            td { (st.batch_label.as_deref().unwrap_or("-")) }
            td { (st.ready_replicas) "/" (r.spec.replicas) }
            td { (st.updated_replicas) }
            td { (time_of(r.metadata.creation_timestamp.as_ref())) }
        }
    }
}

/// A column name as the page's headings are written: "ORPHANED" → "Orphaned".
fn title(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn set_row(s: &ListenerSet) -> Markup {
    let ns = s.namespace().unwrap_or_default();
    let name = s.name_any();
    let st = s.status.as_ref();
    let ready = st
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == CONDITION_READY))
        .map(|c| c.status.clone())
        .unwrap_or_else(|| "Unknown".into());
    html! {
        tr.listenerset data-name=(name) data-namespace=(ns) data-ready=(ready) {
            td { (ns) }
            td { a href=(set_href(&ns, &name)) { (name) } }
            @for c in view::columns(false) {
                @if c.kind == "date" {
                    td { (time_of(s.metadata.creation_timestamp.as_ref())) }
                } @else {
                    td { (view::cell(c, st).unwrap_or_default()) }
                }
            }
        }
    }
}
