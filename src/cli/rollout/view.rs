//! How `baton rollout` shows a Rollout: the view `status` prints (its header from
//! [`crate::actions::judge`], so it always agrees with the verdict). Pure functions of the
//! Rollout object.
use std::collections::BTreeMap;

use super::tree::{self, PodRow};
pub use crate::actions::judge::{header, observed, phase_word, refusal, verdict, Request, Verdict};
use crate::api::rollout::Rollout;
use crate::cli::output;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn bar(done: i32, total: i32, width: usize) -> String {
    let filled = if total <= 0 {
        width
    } else {
        (usize::try_from(done.max(0)).unwrap_or(0) * width) / usize::try_from(total).unwrap_or(1)
    };
    format!(
        "[{}{}]",
        "#".repeat(filled.min(width)),
        ".".repeat(width - filled.min(width))
    )
}

/// `  [####....] 1/3 updated  batch 1/3  (failed 0, pending 2)`, when there is progress.
fn progress_text(r: &Rollout) -> Option<String> {
    let st = r.status.as_ref()?;
    let p = st.progress.as_ref()?;
    let batch = st
        .batch
        .as_ref()
        .map(|b| format!("batch {}/{}", b.current, b.total))
        .unwrap_or_default();
    let rolled_back = if p.rolled_back > 0 {
        format!(", rolled back {}", p.rolled_back)
    } else {
        String::new()
    };
    Some(format!(
        "{} {}/{} updated  {}  (failed {}, pending {}{rolled_back})",
        bar(p.completed, p.total, 30),
        p.completed,
        p.total,
        batch,
        p.failed,
        p.pending
    ))
}

/// The live view at `now`: header, progress bar, message, instance table (AGE: how long each
/// instance has been Ready, or since its pod was created), versions. `wide` adds the pod and
/// revision of each instance.
pub fn render(r: &Rollout, now: Timestamp, wide: bool) -> String {
    render_with_pods(r, &[], now, wide)
}

/// [`render`], told about the Rollout's `pods` too: a pod stuck short of Ready (see
/// [`PodRow::stuck`]) is named with why on one line, even when it is not an instance's current
/// pod (a new incarnation kept beside the old one); `wide` adds a table of every pod not Ready.
pub fn render_with_pods(r: &Rollout, pods: &[Pod], now: Timestamp, wide: bool) -> String {
    let st = r.status.clone().unwrap_or_default();
    let views: Vec<PodRow> = tree::instance_pods(r, pods).into_iter().map(PodRow::of).collect();
    let mut out = format!("{}\n", header(r));
    if let Some(p) = progress_text(r) {
        out.push_str(&format!("  {p}\n"));
    }
    if let Some(m) = &st.message {
        out.push_str(&format!("  {m}\n"));
    }
    if !wide {
        if let Some(line) = stuck_line(r, &views, now) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    let mut head = vec!["INSTANCE"];
    if wide {
        head.push("POD");
    }
    head.extend(["VERSION", "READY", "AGE"]);
    if wide {
        head.push("REVISION");
    }
    head.push("PINNED");
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for i in &st.instances {
        let mut row = vec![i.name.clone()];
        if wide {
            row.push(output::or_none(i.pod.as_deref()));
        }
        row.push(output::or_none(i.version.as_deref()));
        row.push(if i.ready { "yes" } else { "no" }.into());
        row.push(output::age(i.since.as_ref(), now));
        if wide {
            row.push(i.revision.to_string());
        }
        row.push(match (i.pinned, &i.pinned_version) {
            (true, Some(v)) => format!("pinned to {v}"),
            (true, None) => "pinned".into(),
            (false, _) => "-".into(),
        });
        rows.push(row);
    }
    if !st.instances.is_empty() {
        out.push_str(&output::table_indented(&rows, "  "));
    }
    if wide {
        out.push_str(&not_ready_table(r, &views, now));
    }
    let versions: BTreeMap<_, _> = st.versions.clone();
    let summary: Vec<String> = versions.iter().map(|(v, n)| format!("{v}: {n}")).collect();
    if !summary.is_empty() {
        out.push_str(&format!("  versions: {}\n", summary.join(", ")));
    }
    out
}

/// `stuck: POD (READY): why; …`, when a pod is stuck.
fn stuck_line(r: &Rollout, views: &[PodRow], now: Timestamp) -> Option<String> {
    let stuck: Vec<String> = views
        .iter()
        .filter_map(|p| {
            let why = p.stuck(now, tree::deadline(r), tree::failed_here(r, p))?;
            Some(format!("{} ({}): {why}", p.name, p.ready_text()))
        })
        .collect();
    (!stuck.is_empty()).then(|| format!("stuck: {}", stuck.join("; ")))
}

/// `not ready:` and a table of the pods not Ready (not those going away), with why.
fn not_ready_table(r: &Rollout, views: &[PodRow], now: Timestamp) -> String {
    let mut rows = vec![["POD", "INSTANCE", "READY", "RESTARTS", "AGE", "REASON"]
        .map(String::from)
        .to_vec()];
    for p in views {
        let Some(why) = p.not_ready_reason(now) else {
            continue;
        };
        let why = match p.stuck(now, tree::deadline(r), tree::failed_here(r, p)) {
            Some(_) => format!("stuck: {why}"),
            None => why,
        };
        rows.push(vec![
            p.name.clone(),
            output::or_none(p.instance.as_deref()),
            p.ready_text(),
            p.restarts.to_string(),
            output::age(p.created.map(Time).as_ref(), now),
            why,
        ]);
    }
    if rows.len() == 1 {
        return String::new();
    }
    format!("  not ready:\n{}", output::table_indented(&rows, "    "))
}

/// One line saying where the rollout is (for logs): header, progress, message.
pub fn summary_line(r: &Rollout) -> String {
    let mut parts = vec![header(r)];
    if let Some(st) = &r.status {
        if let Some(p) = &st.progress {
            let batch = st
                .batch
                .as_ref()
                .map(|b| format!("batch {}/{}, ", b.current, b.total))
                .unwrap_or_default();
            parts.push(format!(
                "{batch}{}/{} updated (failed {}, pending {})",
                p.completed, p.total, p.failed, p.pending
            ));
        }
        if let Some(m) = &st.message {
            parts.push(m.clone());
        }
    }
    parts.join(" · ")
}
