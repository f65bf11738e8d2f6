//! `baton rollout history`: the revisions (when, why, by whom) and the deploy and rollback
//! records of `status.history`; `--revision N` shows one revision's pod template.
use crate::api::ROLLOUT_RESOURCE;
use std::process::ExitCode;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::Api;
use serde::Serialize;

pub use crate::actions::revision_log::{entries, revisions, RevisionEntry};
use crate::api::rollout::{DeployRecord, RecordOutcome, Rollout};
use crate::cli::output::{self, Format, Got, PrintFlags};
use crate::cli::{emit, CliError, Session};

/// `-o json|yaml` of `history`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct History<'a> {
    pub rollout: String,
    pub namespace: String,
    pub revisions: Vec<RevisionEntry>,
    pub deploys: &'a [DeployRecord],
}

fn ago(t: Option<Timestamp>, now: Timestamp) -> String {
    t.map(|t| output::human_duration(now.duration_since(t)))
        .unwrap_or_else(|| "<unknown>".into())
}

/// The revisions table at `now`.
pub fn revisions_table(entries: &[RevisionEntry], now: Timestamp, wide: bool) -> String {
    let mut head = vec!["REVISION", "VERSION", "AGE", "CHANGE-CAUSE", "CHANGED-BY", "STATUS"];
    if wide {
        head.extend(["NAME", "IMAGES"]);
    }
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for e in entries {
        let mut row = vec![
            e.revision.to_string(),
            e.version.clone(),
            ago(e.created, now),
            output::or_none(e.change_cause.as_deref()),
            output::or_none(e.changed_by.as_deref()),
            if e.marks.is_empty() {
                "-".into()
            } else {
                e.marks.join(",")
            },
        ];
        if wide {
            row.push(e.name.clone());
            row.push(output::or_none(Some(&e.images.join(","))));
        }
        rows.push(row);
    }
    output::table(&rows)
}

/// The deploys and rollbacks table at `now`: STARTED is an age, DURATION how long it took (or
/// has taken so far).
pub fn records_table(records: &[DeployRecord], now: Timestamp, wide: bool) -> String {
    let mut head = vec![
        "ID", "KIND", "TRIGGER", "REVISION", "VERSION", "STARTED", "DURATION", "OUTCOME",
    ];
    if wide {
        head.extend(["FROM", "CHANGED-BY", "MESSAGE"]);
    }
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for r in records {
        let end = r.finished_at.as_ref().map(|t| t.0).unwrap_or(now);
        let mut row = vec![
            r.id.to_string(),
            r.kind.to_string(),
            r.trigger.to_string(),
            r.revision.to_string(),
            r.version.clone(),
            output::age(Some(&r.started_at), now),
            output::human_duration(end.duration_since(r.started_at.0)),
            r.outcome.to_string(),
        ];
        if wide {
            row.push(output::or_none(r.from_version.as_deref()));
            row.push(output::or_none(r.changed_by.as_deref()));
            row.push(output::or_none(r.message.as_deref()));
        }
        rows.push(row);
    }
    output::table(&rows)
}

/// `-o name`: each revision as `kubectl get controllerrevisions -o name` names it.
fn revision_names(entries: &[RevisionEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("{REVISION_RESOURCE}/{}\n", e.name))
        .collect()
}

/// The resource of a ControllerRevision as kubectl names it (`-o name`).
const REVISION_RESOURCE: &str = "controllerrevision.apps";

/// `history --revision N`: its version, origin and pod template (YAML), as text.
fn revision_detail(
    name: &str,
    rev: &ControllerRevision,
    entry: &RevisionEntry,
    now: Timestamp,
) -> Result<String, CliError> {
    let template = rev
        .data
        .as_ref()
        .and_then(|d| d.0.get("template"))
        .cloned()
        .unwrap_or_default();
    let created = entry
        .created
        .map(|t| format!("{t} ({} ago)", ago(Some(t), now)))
        .unwrap_or_else(|| "<unknown>".into());
    let mut out = format!("{ROLLOUT_RESOURCE}/{name} with revision #{}\n", entry.revision);
    out.push_str(&output::table(&[
        vec!["Version:".into(), entry.version.clone()],
        vec!["Revision:".into(), entry.name.clone()],
        vec!["Created:".into(), created],
        vec!["Change-Cause:".into(), output::or_none(entry.change_cause.as_deref())],
        vec!["Changed-By:".into(), output::or_none(entry.changed_by.as_deref())],
    ]));
    out.push_str("Pod Template:\n");
    for line in output::yaml(&template)?.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    Ok(out)
}

/// `history NAME [--revision N]` with kubectl's printing flags: the tables (or one revision's
/// detail), `-o name` the ControllerRevisions' names, any other format the history document
/// (or the one ControllerRevision).
pub async fn history(
    s: &Session,
    api: &Api<Rollout>,
    name: &str,
    revision: Option<i64>,
    flags: &PrintFlags,
) -> Result<ExitCode, CliError> {
    let printer = flags.printer()?;
    let rollout = api.get(name).await.map_err(|e| s.error(&e))?;
    let revs = revisions(&s.client, &s.namespace, &rollout)
        .await
        .map_err(|e| s.error(&e))?;
    let entries = entries(&rollout, &revs);
    let now = Timestamp::now();
    let print = |object: serde_json::Value| {
        let objects = [object];
        let got = Got {
            resource: REVISION_RESOURCE,
            objects: &objects,
            single: true,
        };
        printer.print(&got, Vec::new())
    };
    if let Some(n) = revision {
        let Some((rev, entry)) = revs.iter().zip(&entries).find(|(r, _)| r.revision == n) else {
            return Err(CliError::msg(format!(
                "unable to find the specified revision {n}; see `baton rollout history {name}`"
            )));
        };
        match printer.format {
            Format::Table { .. } => emit(&revision_detail(name, rev, entry, now)?),
            Format::Name => emit(&revision_names(std::slice::from_ref(entry))),
            _ => emit(&print(output::object(rev)?)?),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let records = rollout.status.as_ref().map(|st| st.history.as_slice()).unwrap_or(&[]);
    match printer.format {
        Format::Name => emit(&revision_names(&entries)),
        Format::Table { wide } => {
            emit(&revisions_table(&entries, now, wide));
            if !records.is_empty() {
                emit("\n");
                emit(&records_table(records, now, wide));
            }
            if let Some(r) = records.last().filter(|r| r.outcome == RecordOutcome::InProgress) {
                emit(&format!(
                    "\n{} {} of revision {} is in progress\n",
                    r.kind, r.id, r.revision
                ));
            }
        }
        _ => {
            let doc = History {
                rollout: name.to_string(),
                namespace: s.namespace.clone(),
                revisions: entries,
                deploys: records,
            };
            emit(&print(output::object(&doc)?)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
