//! Revisions: the ControllerRevision of a pod template and version (named by its hash), the
//! update revision of the current spec, the last healthy revision, and pruning the history.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::batches::RolloutState;
use super::{revision_name, Action, Planner};
use crate::api::listenerset::lease::fnv1a64;
use crate::api::rollout::{annotations, RolloutSpec};

/// A ControllerRevision of the Rollout.
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionInfo {
    pub name: String,
    /// `revision` of the ControllerRevision.
    pub revision: i64,
    /// Label `baton.dev/revision-hash`.
    pub hash: String,
    /// Label `app.kubernetes.io/version`.
    pub version: String,
    /// The pod template it stores (`data.template`): pods of this revision are made from it.
    pub template: Arc<PodTemplateSpec>,
}

/// `data` of a ControllerRevision: `{"version": …, "template": …}`.
pub fn revision_data(template: &PodTemplateSpec, version: &str) -> serde_json::Value {
    serde_json::json!({ "version": version, "template": template })
}

/// The pod template actually rolled out: `spec.template` plus, when a restart was requested,
/// annotation `baton.dev/restartedAt`.
pub fn effective_template(spec: &RolloutSpec, restarted_at: Option<&str>) -> PodTemplateSpec {
    restarted_template(&spec.template, restarted_at)
}

/// `template` (`spec.template`, or the Deployment's of `spec.workloadRef`) plus, when a
/// restart was requested, annotation `baton.dev/restartedAt`.
pub fn restarted_template(template: &PodTemplateSpec, restarted_at: Option<&str>) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(value) = restarted_at {
        template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default)
            .insert(annotations::RESTARTED_AT.to_string(), value.to_string());
    }
    template
}

/// Stable, short, DNS-safe revision hash: 10 hex digits of FNV-1a 64 over the canonical JSON
/// of `(version, template)` (object keys sorted).
pub fn revision_hash(template: &PodTemplateSpec, version: &str) -> String {
    let value = serde_json::to_value(template).unwrap_or(serde_json::Value::Null);
    let mut text = String::new();
    canonical_json(&value, &mut text);
    let bytes = [version.as_bytes(), &[0u8], text.as_bytes()].concat();
    format!("{:016x}", fnv1a64(&bytes))[..10].to_string()
}

fn canonical_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    canonical_json(v, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The revision of the current spec (`status.updateRevision`), created by this plan when new.
pub(super) struct UpdateRevision {
    pub(super) info: RevisionInfo,
    /// A ControllerRevision with its hash exists already.
    pub(super) exists: bool,
    /// The stored revisions plus the update revision.
    pub(super) known: Vec<RevisionInfo>,
}

impl Planner<'_> {
    /// The update (target) revision: the stored one with the spec's hash, or the next number.
    pub(super) fn update_revision(&self) -> UpdateRevision {
        let input = self.input;
        let spec = self.spec;
        let name = input.name.as_str();

        let template = Arc::new(restarted_template(
            self.pod_template(),
            input.requests.restarted_at.as_deref(),
        ));
        let hash = revision_hash(&template, &spec.version);
        let existing_target = input.revisions.iter().find(|r| r.hash == hash).cloned();
        let next_number = input.revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
        let target = existing_target.clone().unwrap_or(RevisionInfo {
            name: revision_name(name, &hash),
            revision: next_number,
            hash: hash.clone(),
            version: spec.version.clone(),
            template,
        });
        let mut known: Vec<RevisionInfo> = input.revisions.clone();
        if existing_target.is_none() {
            known.push(target.clone());
        }
        UpdateRevision {
            info: target,
            exists: existing_target.is_some(),
            known,
        }
    }

    /// The last healthy revision: `status.currentRevision`, or, when it is not recorded, the one
    /// the serving pods vote for.
    pub(super) fn last_healthy_revision(&self, known: &[RevisionInfo]) -> Option<RevisionInfo> {
        let mut stable: Option<RevisionInfo> = match &self.prior.current_revision {
            Some(current) => known.iter().find(|r| &r.name == current).cloned(),
            None => None,
        };
        if stable.is_none() && (self.prior.current_revision.is_some() || self.prior.update_revision.is_none()) {
            stable = self.infer_stable(known);
        }
        stable
    }

    /// Without a recorded current revision: the revision most Ready pods run.
    fn infer_stable(&self, known: &[RevisionInfo]) -> Option<RevisionInfo> {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for pod in self.input.pods.iter().filter(|p| p.serving()) {
            *votes.entry(pod.revision_hash.as_str()).or_default() += 1;
        }
        known
            .iter()
            .filter_map(|r| votes.get(r.hash.as_str()).map(|v| (*v, r.revision, r)))
            .max_by_key(|(v, n, _)| (*v, *n))
            .map(|(_, _, r)| r.clone())
    }

    /// Prunes old revisions beyond `revisionHistoryLimit`, oldest first, never one in use.
    pub(super) fn prune_revisions(&mut self, rollout: &RolloutState) {
        let input = self.input;
        let mut in_use: BTreeSet<&str> = BTreeSet::new();
        in_use.insert(rollout.target.hash.as_str());
        if let Some(s) = &rollout.stable {
            in_use.insert(s.hash.as_str());
        }
        for rev in rollout.pins.values() {
            in_use.insert(rev.hash.as_str());
        }
        for pod in input.pods.iter().filter(|p| !p.failed) {
            in_use.insert(pod.revision_hash.as_str());
        }
        let mut prunable: Vec<&RevisionInfo> = input
            .revisions
            .iter()
            .filter(|r| !in_use.contains(r.hash.as_str()))
            .collect();
        prunable.sort_by(|a, b| b.revision.cmp(&a.revision).then(a.name.cmp(&b.name)));
        let keep = usize::try_from(self.spec.revision_history_limit.max(0)).unwrap_or(0);
        let mut pruned = BTreeSet::new();
        for rev in prunable.into_iter().skip(keep) {
            self.actions.push(Action::DeleteRevision { name: rev.name.clone() });
            pruned.insert(rev.name.clone());
        }
        self.prune_jobs(&rollout.target, &pruned);
    }
}
