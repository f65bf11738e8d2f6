//! A Rollout's revisions (its ControllerRevisions) and how they are shown: when, why and by
//! whom each was made, and which is current, being rolled out or failed.
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use serde::Serialize;

use crate::api::rollout::{annotations, labels, Rollout};

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
    /// `current` (last healthy), `update` (being rolled out), `failed`.
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
            if st.failed_update.as_ref().is_some_and(|f| f.revision == name) {
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
