//! One sync of a Deployment (pkg/controller/deployment: `syncDeployment`, `sync`,
//! `getAllReplicaSetsAndSyncRevision`, `getNewReplicaSet`, `scale`, `cleanupDeployment`),
//! worked out on copies of the Deployment and its ReplicaSets; what changed becomes the
//! [`Plan`].
use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::model::{Condition, Deployment, ReplicaSet, Strategy, HASH_LABEL, MAX_REPLICAS, REVISION};
use super::util::{
    by_creation, by_revision, by_size_newer, by_size_older, equal_ignore_hash, is_saturated, max_surge,
    new_rs_new_replicas, normalized, replicas_annotations_need_update, set_new_rs_annotations,
    set_replicas_annotations, template_hash,
};
use crate::controllers::replicasets::events::Recorded;

pub const PROGRESSING: &str = "Progressing";

/// A change to an existing ReplicaSet: its replicas, `minReadySeconds` and annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct RsUpdate {
    pub name: String,
    pub replicas: i64,
    pub min_ready_seconds: i64,
    pub annotations: BTreeMap<String, String>,
}

/// What one sync of a Deployment does, in this order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// A new ReplicaSet to create.
    pub create: Option<Value>,
    pub update: Vec<RsUpdate>,
    /// Old ReplicaSets to delete (beyond `revisionHistoryLimit`).
    pub delete: Vec<String>,
    /// Events about the Deployment.
    pub events: Vec<Recorded>,
    /// The Deployment's annotations, when its revision changed.
    pub annotations: Option<BTreeMap<String, String>>,
    /// The Deployment's status, when it changed.
    pub status: Option<Value>,
    /// Sync again after this long (to see whether the progress deadline passed).
    pub requeue: Option<Duration>,
}

/// A sync stopped where kube's returns an error (a hash collision): what it did so far stands.
pub(super) struct Stop;

/// The sync under way: the Deployment and its ReplicaSets as this sync changes them.
pub(super) struct Sync<'a> {
    orig: &'a Deployment,
    orig_rses: &'a [ReplicaSet],
    pub d: Deployment,
    pub rses: Vec<ReplicaSet>,
    /// The ReplicaSet this sync creates (an index into `rses`) and its selector.
    created: Option<(usize, Value)>,
    pub deletes: Vec<String>,
    pub events: Vec<Recorded>,
    pub requeue: Option<Duration>,
    pub now: Timestamp,
}

/// The Deployment controller's decision for `d`, which controls `rses`, at `now`.
pub fn plan(d: &Deployment, rses: &[ReplicaSet], now: Timestamp) -> Plan {
    let mut s = Sync {
        orig: d,
        orig_rses: rses,
        d: d.clone(),
        rses: rses.to_vec(),
        created: None,
        deletes: Vec::new(),
        events: Vec::new(),
        requeue: None,
        now,
    };
    // A sync that stopped (as kube's returns an error) still did what it did until then.
    let _stopped = s.sync_deployment();
    s.finish()
}

fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

impl Sync<'_> {
    fn sync_deployment(&mut self) -> Result<(), Stop> {
        if normalized(&self.d.selector).is_none() {
            let msg = "This deployment is selecting all pods. A non-empty selector is required.";
            self.events.push(Recorded::warning("SelectingAll", msg.into()));
            self.d.status.observed_generation = self.d.status.observed_generation.max(self.d.generation);
            return Ok(());
        }
        if self.d.deleting {
            let (new, olds) = self.get_all(false)?;
            self.sync_deployment_status(new, &olds);
            return Ok(());
        }
        self.check_paused_conditions();
        if self.d.paused || self.is_scaling_event()? {
            return self.sync();
        }
        match self.d.strategy {
            Strategy::Recreate => self.rollout_recreate(),
            Strategy::RollingUpdate { .. } => self.rollout_rolling(),
        }
    }

    /// The plan: the ReplicaSets and Deployment fields that differ from what was read.
    fn finish(self) -> Plan {
        let mut plan = Plan {
            delete: self.deletes,
            events: self.events,
            requeue: self.requeue,
            ..Plan::default()
        };
        for (i, rs) in self.rses.iter().enumerate() {
            if let Some((_, selector)) = self.created.as_ref().filter(|(c, _)| *c == i) {
                plan.create = Some(new_rs_object(&self.d, rs, selector));
                continue;
            }
            let Some(was) = self.orig_rses.iter().find(|o| o.name == rs.name) else {
                continue;
            };
            if (was.replicas, was.min_ready_seconds, &was.annotations)
                != (rs.replicas, rs.min_ready_seconds, &rs.annotations)
            {
                plan.update.push(RsUpdate {
                    name: rs.name.clone(),
                    replicas: rs.replicas,
                    min_ready_seconds: rs.min_ready_seconds,
                    annotations: rs.annotations.clone(),
                });
            }
        }
        if self.d.annotations != self.orig.annotations {
            plan.annotations = Some(self.d.annotations.clone());
        }
        if self.d.status != self.orig.status {
            plan.status = Some(self.d.status.to_value());
        }
        plan
    }

    /// `checkPausedConditions`: a paused or resumed Deployment's Progressing condition says so
    /// (Unknown), so the time spent paused never counts against the deadline.
    fn check_paused_conditions(&mut self) {
        if self.d.progress_deadline_seconds.is_none() {
            return;
        }
        let reason = self.d.status.condition(PROGRESSING).map(|c| c.reason.clone());
        if reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return;
        }
        let paused_cond = reason.as_deref() == Some("DeploymentPaused");
        let (reason, msg) = match (self.d.paused, paused_cond) {
            (true, false) => ("DeploymentPaused", "Deployment is paused"),
            (false, true) => ("DeploymentResumed", "Deployment is resumed"),
            _ => return,
        };
        let c = Condition::new(PROGRESSING, "Unknown", reason, msg.into(), self.now);
        self.d.status.set_condition(c);
    }

    /// `isScalingEvent`: an active ReplicaSet was sized for another replica count.
    fn is_scaling_event(&mut self) -> Result<bool, Stop> {
        let (new, olds) = self.get_all(false)?;
        Ok(olds.iter().chain(new.iter()).any(|&i| {
            let rs = &self.rses[i];
            let desired = rs
                .annotations
                .get(super::model::DESIRED_REPLICAS)
                .and_then(|s| s.parse::<i64>().ok());
            rs.replicas > 0 && desired.is_some_and(|n| n != self.d.replicas)
        }))
    }

    /// `sync`: scale (proportionally, mid-rollout), clean up when paused, report.
    fn sync(&mut self) -> Result<(), Stop> {
        let (new, olds) = self.get_all(false)?;
        self.scale(new, &olds);
        if self.d.paused {
            self.cleanup(&olds);
        }
        self.sync_deployment_status(new, &olds);
        Ok(())
    }

    fn find_new(&self) -> Option<usize> {
        let mut idx: Vec<usize> = (0..self.rses.len()).collect();
        idx.sort_by(|a, b| by_creation(&self.rses[*a], &self.rses[*b]));
        idx.into_iter()
            .find(|&i| equal_ignore_hash(&self.rses[i].template, &self.d.template))
    }

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (the one with the Deployment's
    /// template, created when `create` says so) with its revision brought up past the old
    /// ones', and the old ReplicaSets.
    pub(super) fn get_all(&mut self, create: bool) -> Result<(Option<usize>, Vec<usize>), Stop> {
        let new = self.find_new();
        let olds: Vec<usize> = (0..self.rses.len()).filter(|i| Some(*i) != new).collect();
        let max_old = olds.iter().filter_map(|&i| self.rses[i].revision()).max().unwrap_or(0);
        let new_revision = max_old + 1;
        let Some(i) = new else {
            if !create {
                return Ok((None, olds));
            }
            return self.create_new(olds, new_revision);
        };
        let changed = set_new_rs_annotations(&self.d, &mut self.rses[i], new_revision, true);
        if changed || self.rses[i].min_ready_seconds != self.d.min_ready_seconds {
            self.rses[i].min_ready_seconds = self.d.min_ready_seconds;
            return Ok((new, olds));
        }
        let revision = self.rses[i].annotations.get(REVISION).cloned().unwrap_or_default();
        self.d.annotations.insert(REVISION.into(), revision);
        if self.d.progress_deadline_seconds.is_some() && self.d.status.condition(PROGRESSING).is_none() {
            let msg = format!("Found new replica set {}", quoted(&self.rses[i].name));
            let c = Condition::new(PROGRESSING, "True", "FoundNewReplicaSet", msg, self.now);
            self.d.status.set_condition(c);
        }
        Ok((new, olds))
    }

    /// The new ReplicaSet `<deployment>-<hash>`, sized as far as the strategy allows.
    fn create_new(&mut self, olds: Vec<usize>, revision: i64) -> Result<(Option<usize>, Vec<usize>), Stop> {
        let hash = template_hash(&self.d.template, self.d.status.collision_count);
        let name = format!("{}-{hash}", self.d.name);
        if self.rses.iter().any(|r| r.name == name) {
            // Ours, with another template: a hash collision. The next sync hashes differently.
            self.d.status.collision_count = Some(self.d.status.collision_count.unwrap_or(0) + 1);
            return Err(Stop);
        }
        let mut template = self.d.template.clone();
        crate::handlers::set_pointer(&mut template, &format!("/metadata/labels/{HASH_LABEL}"), json!(hash));
        let mut selector = self.d.selector.clone();
        crate::handlers::set_pointer(&mut selector, &format!("/matchLabels/{HASH_LABEL}"), json!(hash));
        let mut rs = ReplicaSet::of(&json!({"metadata": {"name": name}, "spec": {"replicas": 0}}), 0);
        rs.created = Some(self.now);
        rs.template = template;
        rs.min_ready_seconds = self.d.min_ready_seconds;
        let all: Vec<&ReplicaSet> = olds.iter().map(|&i| &self.rses[i]).chain([&rs]).collect();
        rs.replicas = new_rs_new_replicas(&self.d, &all, &rs);
        set_new_rs_annotations(&self.d, &mut rs, revision, false);
        if rs.replicas > 0 {
            let msg = format!("Scaled up replica set {name} from 0 to {}", rs.replicas);
            self.events.push(Recorded::normal("ScalingReplicaSet", msg));
        }
        self.d.annotations.insert(REVISION.into(), revision.to_string());
        if self.d.progress_deadline_seconds.is_some() {
            let msg = format!("Created new replica set {}", quoted(&name));
            let c = Condition::new(PROGRESSING, "True", "NewReplicaSetCreated", msg, self.now);
            self.d.status.set_condition(c);
        }
        self.rses.push(rs);
        let i = self.rses.len() - 1;
        self.created = Some((i, selector));
        Ok((Some(i), olds))
    }

    /// `scaleReplicaSetAndRecordEvent`: resize when the size differs.
    pub(super) fn scale_and_record(&mut self, i: usize, size: i64) -> bool {
        if self.rses[i].replicas == size {
            return false;
        }
        let op = if self.rses[i].replicas > size { "down" } else { "up" };
        self.scale_rs(i, size, op)
    }

    /// `scaleReplicaSet`: set the size and the replica annotations; true when resized.
    fn scale_rs(&mut self, i: usize, size: i64, op: &str) -> bool {
        let (desired, max) = (self.d.replicas, self.d.replicas + max_surge(&self.d));
        let rs = &mut self.rses[i];
        let resize = rs.replicas != size;
        if !resize && !replicas_annotations_need_update(rs, desired, max) {
            return false;
        }
        let old = rs.replicas;
        rs.replicas = size;
        set_replicas_annotations(rs, desired, max);
        if !resize {
            return false;
        }
        // The API server bumps the generation of a resized ReplicaSet.
        rs.generation += 1;
        let msg = format!("Scaled {op} replica set {} from {old} to {size}", rs.name);
        self.events.push(Recorded::normal("ScalingReplicaSet", msg));
        true
    }

    /// `FindActiveOrLatest`: the one active ReplicaSet, or the newest when none is active.
    fn active_or_latest(&self, new: Option<usize>, olds: &[usize]) -> Option<usize> {
        let mut olds = olds.to_vec();
        olds.sort_by(|a, b| by_creation(&self.rses[*b], &self.rses[*a]));
        let active: Vec<usize> = olds
            .iter()
            .chain(new.iter())
            .copied()
            .filter(|&i| self.rses[i].replicas > 0)
            .collect();
        match active.len() {
            0 => new.or(olds.first().copied()),
            1 => Some(active[0]),
            _ => None,
        }
    }

    /// `scale`: bring the ReplicaSets to the Deployment's size, proportionally to their sizes
    /// when a rolling update is under way.
    fn scale(&mut self, new: Option<usize>, olds: &[usize]) {
        if let Some(i) = self.active_or_latest(new, olds) {
            let size = self.d.replicas;
            self.scale_and_record(i, size);
            return;
        }
        if new.is_some_and(|n| is_saturated(&self.d, &self.rses[n])) {
            for &o in olds {
                if self.rses[o].replicas > 0 {
                    self.scale_and_record(o, 0);
                }
            }
            return;
        }
        if matches!(self.d.strategy, Strategy::RollingUpdate { .. }) {
            self.scale_proportionally(new, olds);
        }
    }

    fn scale_proportionally(&mut self, new: Option<usize>, olds: &[usize]) {
        let mut all: Vec<usize> = olds
            .iter()
            .chain(new.iter())
            .copied()
            .filter(|&i| self.rses[i].replicas > 0)
            .collect();
        let current: i64 = all.iter().map(|&i| self.rses[i].replicas).sum();
        let allowed = if self.d.replicas > 0 {
            self.d.replicas + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - current;
        let op = match to_add.signum() {
            1 => {
                all.sort_by(|a, b| by_size_newer(&self.rses[*a], &self.rses[*b]));
                "up"
            }
            -1 => {
                all.sort_by(|a, b| by_size_older(&self.rses[*a], &self.rses[*b]));
                "down"
            }
            _ => "",
        };
        let mut added = 0;
        let mut sizes = Vec::with_capacity(all.len());
        for &i in &all {
            let p = self.proportion(&self.rses[i], to_add, added);
            sizes.push(self.rses[i].replicas + p);
            added += p;
        }
        // Leftovers go to (or come from) the largest.
        if let Some(first) = sizes.first_mut().filter(|_| to_add != 0) {
            *first = (*first + to_add - added).max(0);
        }
        for (k, &i) in all.iter().enumerate() {
            self.scale_rs(i, sizes[k], op);
        }
    }

    /// `GetReplicaSetProportion`: this ReplicaSet's share of `to_add`, within what is left.
    fn proportion(&self, rs: &ReplicaSet, to_add: i64, added: i64) -> i64 {
        if rs.replicas == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.fraction(rs);
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    /// `getReplicaSetFraction`: its size scaled from the Deployment's old maximum (its
    /// `max-replicas` annotation) to the new one, less its size.
    fn fraction(&self, rs: &ReplicaSet) -> i64 {
        if self.d.replicas == 0 {
            return -rs.replicas;
        }
        let max = self.d.replicas + max_surge(&self.d);
        let before = rs
            .annotations
            .get(MAX_REPLICAS)
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|n| *n != 0)
            .unwrap_or(self.d.status.replicas);
        if before == 0 {
            return 0;
        }
        let size = (rs.replicas * max) as f64 / before as f64;
        (size + 0.5).floor() as i64 - rs.replicas
    }

    /// `cleanupDeployment`: delete the oldest old ReplicaSets beyond `revisionHistoryLimit`
    /// that are scaled to zero, with no pods, their last resize observed.
    pub(super) fn cleanup(&mut self, olds: &[usize]) {
        let Some(limit) = self.d.revision_history_limit else {
            return;
        };
        let mut alive: Vec<usize> = olds.iter().copied().filter(|&i| !self.rses[i].deleting).collect();
        let excess = alive.len() as i64 - limit;
        if excess <= 0 {
            return;
        }
        alive.sort_by(|a, b| by_revision(&self.rses[*a], &self.rses[*b]));
        for &i in alive.iter().take(excess as usize) {
            let rs = &mut self.rses[i];
            if rs.status_replicas != 0 || rs.replicas != 0 || rs.generation > rs.observed_generation || rs.deleting {
                continue;
            }
            rs.deleting = true;
            self.deletes.push(rs.name.clone());
        }
    }
}

/// The ReplicaSet a Deployment creates: named and labelled by the template hash, selecting
/// by it too, controlled by the Deployment.
fn new_rs_object(d: &Deployment, rs: &ReplicaSet, selector: &Value) -> Value {
    let labels = rs
        .template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": rs.name, "labels": labels, "annotations": rs.annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": d.name, "uid": d.uid, "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"replicas": rs.replicas, "minReadySeconds": rs.min_ready_seconds, "selector": selector, "template": rs.template},
    })
}
