//! A Rollout's revisions (its ControllerRevisions) and how they are shown: when, why and by
//! whom each was made, and which is current, being rolled out or failed.
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use serde::Serialize;

use crate::api::rollout::{annotations, labels, FailureReason, RecordOutcome, Rollout};

/// The Rollout's ControllerRevisions, oldest first.
pub async fn revisions(
    client: &kube::Client,
    ns: &str,
    rollout: &Rollout,
) -> Result<Vec<ControllerRevision>, kube::Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    let all = api
        .list(&ListParams::default().labels(&format!("{}={}", labels::ROLLOUT, rollout.name_any())))
        .await?
        .items;
    Ok(owned(rollout, &all).into_iter().cloned().collect())
}

/// Of `all`, the revisions `rollout` owns (by uid: not those of a deleted namesake), oldest
/// first.
pub fn owned<'a>(
    rollout: &Rollout,
    all: impl IntoIterator<Item = &'a ControllerRevision>,
) -> Vec<&'a ControllerRevision> {
    let uid = rollout.uid().unwrap_or_default();
    let mut list: Vec<&ControllerRevision> = all
        .into_iter()
        .filter(|r| r.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    list.sort_by_key(|r| r.revision);
    list
}

/// One revision as `history` shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RevisionEntry {
    pub revision: i64,
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
    /// `current` (last healthy), `update` (being rolled out), `failed` (the failed update, or
    /// an older revision whose last rollout failed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

fn annotation(r: &ControllerRevision, key: &str) -> Option<String> {
    r.annotations().get(key).filter(|v| !v.is_empty()).cloned()
}

/// How each of `revs` is shown.
pub fn entries<'a>(rollout: &Rollout, revs: impl IntoIterator<Item = &'a ControllerRevision>) -> Vec<RevisionEntry> {
    let st = rollout.status.clone().unwrap_or_default();
    revs.into_iter()
        .map(|r| {
            let name = r.name_any();
            let mut marks = Vec::new();
            if st.current_revision.as_deref() == Some(name.as_str()) {
                marks.push("current".to_string());
            }
            if st.update_revision.as_deref() == Some(name.as_str()) {
                marks.push("update".to_string());
            }
            // The failed update, and any older revision whose last rollout failed: a newer
            // revision does not make it any less failed.
            let failed_update = st.failed_update.as_ref().is_some_and(|f| f.revision == name);
            if failed_update || matches!(outcome(rollout, &name), Outcome::Failed(_)) {
                marks.push("failed".to_string());
            }
            let images = r
                .data
                .as_ref()
                .and_then(|d| d.0.pointer("/template/spec/containers"))
                .and_then(|c| c.as_array())
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c.get("image")?.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            RevisionEntry {
                revision: r.revision,
                version: r.labels().get(labels::VERSION).cloned().unwrap_or_default(),
                created: r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                change_cause: annotation(r, annotations::CHANGE_CAUSE),
                changed_by: annotation(r, annotations::CHANGED_BY),
                name,
                marks,
                images,
            }
        })
        .collect()
}

/// How a revision's last rollout ended, as the Rollout's status records it (the last healthy
/// revision, the failed update, the deploy and rollback records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every instance ran it: the last healthy revision, or its last record succeeded.
    Succeeded,
    /// Its last rollout failed, for this reason.
    Failed(String),
    /// Its last rollout was aborted by a person.
    Aborted,
    /// Its last rollout is under way, or a newer spec replaced it before it finished.
    Unfinished,
    /// No record of it: older than the records kept ([`crate::api::rollout::history::MAX_RECORDS`]).
    Unknown,
}

impl std::fmt::Display for Outcome {
    /// What happened to it, after "revision N".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Succeeded => f.write_str("rolled out successfully"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::Aborted => f.write_str("was aborted"),
            Outcome::Unfinished => f.write_str("never finished rolling out"),
            Outcome::Unknown => f.write_str("has no recorded rollout"),
        }
    }
}

/// How the last rollout of revision `name` (a ControllerRevision's name) of `rollout` ended.
pub fn outcome(rollout: &Rollout, name: &str) -> Outcome {
    let Some(st) = &rollout.status else {
        return Outcome::Unknown;
    };
    if st.current_revision.as_deref() == Some(name) {
        return Outcome::Succeeded;
    }
    if let Some(f) = st.failed_update.as_ref().filter(|f| f.revision == name) {
        return match f.reason {
            FailureReason::Aborted => Outcome::Aborted,
            _ => Outcome::Failed(f.message.clone()),
        };
    }
    // Records are oldest first: the last one naming the revision is its last rollout (a deploy
    // of it, or a rollback to it).
    match st.history.iter().rev().find(|r| r.revision_name == name) {
        None => Outcome::Unknown,
        Some(r) => match r.outcome {
            RecordOutcome::Succeeded => Outcome::Succeeded,
            RecordOutcome::Failed => Outcome::Failed(r.message.clone().unwrap_or_else(|| "no message".into())),
            RecordOutcome::Aborted => Outcome::Aborted,
            RecordOutcome::InProgress | RecordOutcome::Superseded => Outcome::Unfinished,
        },
    }
}

/// Revisions passed over, newest first: their numbers and how their last rollout ended.
pub type Skipped = Vec<(i64, Outcome)>;

/// Where a plain `undo` goes: of `revs` (oldest first), the newest revision other than the one
/// the spec names (`status.updateRevision`) whose last rollout succeeded, with the newer ones
/// passed over (newest first) and why. Err: no such revision, and why each was passed over.
pub fn last_good<'a>(
    rollout: &Rollout,
    revs: &'a [ControllerRevision],
) -> Result<(&'a ControllerRevision, Skipped), Skipped> {
    let update = rollout.status.as_ref().and_then(|st| st.update_revision.as_deref());
    let mut skipped = Vec::new();
    for r in revs.iter().rev() {
        let name = r.name_any();
        if Some(name.as_str()) == update {
            continue;
        }
        match outcome(rollout, &name) {
            Outcome::Succeeded => return Ok((r, skipped)),
            other => skipped.push((r.revision, other)),
        }
    }
    Err(skipped)
}
