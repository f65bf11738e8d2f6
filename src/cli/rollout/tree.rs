//! `baton rollout get NAME`: a Rollout as Argo Rollouts' plugin shows one (`kubectl argo
//! rollouts get rollout`): a summary, then a tree of its revisions (newest first), the instances
//! with a pod of each revision, and those pods: old and new incarnations, Ready or why not.
//! [`render`] is a pure function of the Rollout, its ControllerRevisions and its pods;
//! [`live`] reads them and follows them with `--watch`.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::view::{phase_word, verdict, Verdict};
use crate::actions::revision_log;
use crate::api::rollout::{labels, Rollout, RolloutPhase};
use crate::cli::output;
pub use pod::PodRow;
use pod::{ICON_BAD, ICON_NEUTRAL, ICON_OK, ICON_PAUSED, ICON_PROGRESSING};

pub mod live;
pub mod pod;

const ICON_ROLLOUT: &str = "⟳";
const ICON_REVISION: &str = "#";
const ICON_INSTANCE: &str = "⧉";
const ICON_POD: &str = "□";

/// The Rollout's pods: those of its instances (a hook's or check's Job pods carry the Rollout
/// label too, but no instance), owned by this Rollout (not a deleted namesake).
pub fn instance_pods<'a>(r: &Rollout, pods: impl IntoIterator<Item = &'a Pod>) -> Vec<&'a Pod> {
    let uid = r.uid().unwrap_or_default();
    pods.into_iter()
        .filter(|p| p.labels().contains_key(labels::INSTANCE))
        .filter(|p| p.owner_references().iter().any(|o| o.uid == uid))
        .collect()
}

/// The progress deadline: a pod not Ready for longer is stuck.
pub fn deadline(r: &Rollout) -> Duration {
    Duration::from_secs(u64::try_from(r.spec.progress_deadline_seconds).unwrap_or(0))
}

/// Did the pod's instance fail on the pod's revision (`status.failedUpdate`)?
pub fn failed_here(r: &Rollout, p: &PodRow) -> bool {
    let Some(f) = r.status.as_ref().and_then(|s| s.failed_update.as_ref()) else {
        return false;
    };
    let failed_hash = f.revision.strip_prefix(&format!("{}-", r.name_any()));
    p.hash.as_deref().is_some_and(|h| Some(h) == failed_hash)
        && p.instance.as_ref().is_some_and(|i| f.instances.contains(i))
}

/// Icon and word of the Rollout's phase (the word agrees with `status`'s header).
fn phase(r: &Rollout) -> (&'static str, String) {
    let v = verdict(r);
    let word = phase_word(r, v);
    let icon = match v {
        Verdict::Healthy => ICON_OK,
        Verdict::Failed => ICON_BAD,
        Verdict::InProgress if r.status.as_ref().and_then(|s| s.phase) == Some(RolloutPhase::Paused) => ICON_PAUSED,
        Verdict::InProgress => ICON_PROGRESSING,
    };
    (icon, word)
}

fn target(t: &IntOrString) -> String {
    match t {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `Name:`, `Status:`, … as Argo's plugin prints them (labels padded to 17 columns).
fn summary(r: &Rollout) -> String {
    let st = r.status.clone().unwrap_or_default();
    let (icon, word) = phase(r);
    let mut lines: Vec<(&str, String)> = vec![
        ("Name:", r.name_any()),
        ("Namespace:", r.namespace().unwrap_or_default()),
        ("Status:", format!("{icon} {word}")),
    ];
    if let Some(m) = st.message.as_ref().filter(|m| !m.is_empty()) {
        lines.push(("Message:", m.clone()));
    }
    let batches: Vec<String> = r.spec.strategy.batches.iter().map(target).collect();
    let batches = if batches.is_empty() {
        "100%".into()
    } else {
        batches.join(", ")
    };
    lines.push(("Strategy:", format!("Batches ({batches})")));
    if let Some(b) = &st.batch {
        lines.push(("  Batch:", format!("{}/{}", b.current, b.total)));
    }
    let serving = st.version.clone().unwrap_or_else(|| "-".into());
    lines.push(("Version:", format!("{serving} (serving), {} (spec)", r.spec.version)));
    let spec = r.spec.template.spec.as_ref();
    for (k, c) in spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let label = if k == 0 { "Images:" } else { "" };
        lines.push((label, format!("{} ({})", c.image.clone().unwrap_or_default(), c.name)));
    }
    let mut out: String = lines.iter().map(|(k, v)| format!("{k:<17}{v}\n")).collect();
    out.push_str("Replicas:\n");
    for (k, v) in [
        ("  Desired:", r.spec.replicas),
        ("  Current:", st.replicas),
        ("  Updated:", st.updated_replicas),
        ("  Ready:", st.ready_replicas),
        ("  Available:", st.available_replicas),
    ] {
        out.push_str(&format!("{k:<17}{v}\n"));
    }
    out
}

/// STATUS and INFO of a revision: stable (the last healthy), being rolled out (or paused),
/// failed with its reason, rolled back, failed before (an older revision whose last rollout
/// failed), or superseded.
fn revision_outcome(r: &Rollout, e: &revision_log::RevisionEntry) -> (String, String) {
    let st = r.status.clone().unwrap_or_default();
    let has = |m: &str| e.marks.iter().any(|x| x == m);
    let mut info = vec![e.version.clone()];
    let status = if let Some(f) = st.failed_update.as_ref().filter(|f| f.revision == e.name) {
        info.push(f.reason.to_string());
        if f.rolled_back {
            format!("{ICON_BAD} RolledBack")
        } else {
            format!("{ICON_BAD} Failed")
        }
    } else if has("failed") {
        // An older revision whose last rollout failed (its deploy record says so).
        format!("{ICON_BAD} Failed")
    } else if has("update") && !has("current") {
        let (icon, _) = phase(r);
        let word = if icon == ICON_PAUSED { "Paused" } else { "Progressing" };
        format!("{icon} {word}")
    } else if has("current") {
        info.push("stable".into());
        format!("{ICON_OK} Healthy")
    } else {
        format!("{ICON_NEUTRAL} Superseded")
    };
    (status, info.join(","))
}

/// `├──` or `└──` before a child, and what its own children are prefixed with.
fn prefixes(last: bool, parent: &str) -> (String, String) {
    if last {
        (format!("{parent}└──"), format!("{parent}   "))
    } else {
        (format!("{parent}├──"), format!("{parent}│  "))
    }
}

/// INFO of a pod: ready x/y, restarts, `current` for its instance's current pod, and why it is
/// stuck (or, not yet stuck, why it is not Ready).
fn pod_row(r: &Rollout, p: &PodRow, prefix: &str, now: Timestamp) -> Vec<String> {
    let st = r.status.as_ref();
    let current = st.is_some_and(|s| s.instances.iter().any(|i| i.pod.as_deref() == Some(p.name.as_str())));
    let stuck = p.stuck(now, deadline(r), failed_here(r, p));
    let mut info = vec![format!("ready:{}", p.ready_text())];
    if p.restarts > 0 {
        info.push(format!("restarts:{}", p.restarts));
    }
    if current {
        info.push("current".into());
    }
    match (&stuck, p.not_ready_reason(now)) {
        (Some(why), _) => info.push(format!("stuck: {why}")),
        (None, Some(why)) => info.push(why),
        (None, None) => {}
    }
    let created = p.created.map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
    vec![
        format!("{prefix}{ICON_POD} {}", p.name),
        "Pod".into(),
        format!("{} {}", p.icon(stuck.is_some()), p.status),
        output::age(created.as_ref(), now),
        info.join(","),
    ]
}

/// The tree at `now`: the summary, then NAME/KIND/STATUS/AGE/INFO rows.
pub fn render(r: &Rollout, revisions: &[ControllerRevision], pods: &[Pod], now: Timestamp) -> String {
    let mut out = summary(r);
    out.push('\n');
    let (icon, word) = phase(r);
    let mut rows = vec![
        ["NAME", "KIND", "STATUS", "AGE", "INFO"].map(String::from).to_vec(),
        vec![
            format!("{ICON_ROLLOUT} {}", r.name_any()),
            "Rollout".into(),
            format!("{icon} {word}"),
            output::age(r.metadata.creation_timestamp.as_ref(), now),
            String::new(),
        ],
    ];
    let views: Vec<PodRow> = instance_pods(r, pods).into_iter().map(PodRow::of).collect();
    // hash → instance → pods, oldest incarnation first.
    let mut by_hash: BTreeMap<&str, BTreeMap<&str, Vec<&PodRow>>> = BTreeMap::new();
    for p in &views {
        let (Some(h), Some(i)) = (p.hash.as_deref(), p.instance.as_deref()) else {
            continue;
        };
        by_hash.entry(h).or_default().entry(i).or_default().push(p);
    }
    let owned = revision_log::owned(r, revisions);
    let entries = revision_log::entries(r, owned.iter().copied());
    // Newest revision first; pods of a revision no longer kept come last.
    let mut groups: Vec<(Vec<String>, Option<&str>)> = owned
        .iter()
        .zip(&entries)
        .rev()
        .map(|(rev, e)| {
            let (status, info) = revision_outcome(r, e);
            let row = vec![
                format!("{ICON_REVISION} revision:{}", e.revision),
                "Revision".into(),
                status,
                output::age(rev.metadata.creation_timestamp.as_ref(), now),
                info,
            ];
            (row, rev.labels().get(labels::REVISION_HASH).map(String::as_str))
        })
        .collect();
    let known: BTreeSet<Option<&str>> = groups.iter().map(|(_, h)| *h).collect();
    if views.iter().any(|p| !known.contains(&p.hash.as_deref())) {
        let row = vec![
            format!("{ICON_REVISION} revision:?"),
            "Revision".into(),
            format!("{ICON_NEUTRAL} Unknown"),
            String::new(),
            "not kept".into(),
        ];
        groups.push((row, None));
    }
    let n = groups.len();
    for (k, (mut row, hash)) in groups.into_iter().enumerate() {
        let (prefix, sub) = prefixes(k + 1 == n, "");
        row[0] = format!("{prefix}{}", row[0]);
        rows.push(row);
        let instances: BTreeMap<&str, Vec<&PodRow>> = match hash {
            Some(h) => by_hash.get(h).cloned().unwrap_or_default(),
            None => orphans(&views, &known),
        };
        instance_rows(r, &instances, &sub, now, &mut rows);
    }
    for line in output::table(&rows).lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The pods whose revision is not among `known`, by instance.
fn orphans<'a>(views: &'a [PodRow], known: &BTreeSet<Option<&str>>) -> BTreeMap<&'a str, Vec<&'a PodRow>> {
    let mut m: BTreeMap<&str, Vec<&PodRow>> = BTreeMap::new();
    for p in views.iter().filter(|p| !known.contains(&p.hash.as_deref())) {
        m.entry(p.instance.as_deref().unwrap_or_default()).or_default().push(p);
    }
    m
}

/// Under a revision: each instance with a pod of it (by ordinal), and those pods, oldest first.
fn instance_rows(
    r: &Rollout,
    instances: &BTreeMap<&str, Vec<&PodRow>>,
    sub: &str,
    now: Timestamp,
    rows: &mut Vec<Vec<String>>,
) {
    let st = r.status.clone().unwrap_or_default();
    let mut names: Vec<&str> = instances.keys().copied().collect();
    // By ordinal: web-2 before web-10.
    names.sort_by_key(|i| (i.len(), *i));
    for (j, name) in names.iter().enumerate() {
        let (iprefix, isub) = prefixes(j + 1 == names.len(), sub);
        let info = st
            .instances
            .iter()
            .find(|i| i.name == *name && i.pinned)
            .map(|i| format!("pinned to {}", i.pinned_version.as_deref().unwrap_or("?")))
            .unwrap_or_default();
        rows.push(vec![
            format!("{iprefix}{ICON_INSTANCE} {name}"),
            "Instance".into(),
            String::new(),
            String::new(),
            info,
        ]);
        let mut pods = instances.get(name).cloned().unwrap_or_default();
        pods.sort_by_key(|p| (p.created, p.name.clone()));
        for (m, p) in pods.iter().enumerate() {
            let (pprefix, _) = prefixes(m + 1 == pods.len(), &isub);
            rows.push(pod_row(r, p, &pprefix, now));
        }
    }
}
