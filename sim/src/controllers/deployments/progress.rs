//! The Deployment's status and conditions (pkg/controller/deployment: `calculateStatus`,
//! `syncRolloutStatus`, `requeueStuckDeployment`; util's `DeploymentComplete`,
//! `DeploymentProgressing`, `DeploymentTimedOut`).
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::model::{Condition, Status};
use super::sync::{Sync, PROGRESSING};
use super::util::max_unavailable;

const AVAILABLE: &str = "Available";
const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
const TIMED_OUT: &str = "ProgressDeadlineExceeded";

impl Sync<'_> {
    /// `calculateStatus`: counts summed over the ReplicaSets, and the Available condition.
    fn calculate_status(&self, new: Option<usize>, olds: &[usize]) -> Status {
        let all: Vec<usize> = olds.iter().chain(new.iter()).copied().collect();
        let sum = |f: fn(&super::model::ReplicaSet) -> i64| -> i64 { all.iter().map(|&i| f(&self.rses[i])).sum() };
        let available = sum(|r| r.available_replicas);
        let mut st = Status {
            observed_generation: self.d.generation,
            replicas: sum(|r| r.status_replicas),
            updated_replicas: new.map(|n| self.rses[n].status_replicas).unwrap_or(0),
            ready_replicas: sum(|r| r.ready_replicas),
            available_replicas: available,
            unavailable_replicas: (sum(|r| r.replicas) - available).max(0),
            conditions: self.d.status.conditions.clone(),
            collision_count: self.d.status.collision_count,
        };
        let c = if available >= self.d.replicas - max_unavailable(&self.d) {
            let msg = "Deployment has minimum availability.";
            Condition::new(AVAILABLE, "True", "MinimumReplicasAvailable", msg.into(), self.now)
        } else {
            let msg = "Deployment does not have minimum availability.";
            Condition::new(AVAILABLE, "False", "MinimumReplicasUnavailable", msg.into(), self.now)
        };
        st.set_condition(c);
        st
    }

    /// `syncDeploymentStatus`: the counts and Available, no progress estimate (scaling,
    /// paused, being deleted).
    pub(super) fn sync_deployment_status(&mut self, new: Option<usize>, olds: &[usize]) {
        self.d.status = self.calculate_status(new, olds);
    }

    /// `DeploymentComplete`: every replica updated and available, nothing old left, the
    /// latest spec observed.
    pub(super) fn complete(&self, st: &Status) -> bool {
        let r = self.d.replicas;
        st.updated_replicas == r
            && st.replicas == r
            && st.available_replicas == r
            && st.observed_generation >= self.d.generation
    }

    /// `DeploymentProgressing`: more updated, ready or available replicas than the last
    /// status said, or fewer old ones.
    fn progressing(&self, st: &Status) -> bool {
        let old = &self.d.status;
        st.updated_replicas > old.updated_replicas
            || st.replicas - st.updated_replicas < old.replicas - old.updated_replicas
            || st.ready_replicas > old.ready_replicas
            || st.available_replicas > old.available_replicas
    }

    /// `DeploymentTimedOut`: no progress reported for longer than the deadline.
    fn timed_out(&self, st: &Status) -> bool {
        let (Some(deadline), Some(c)) = (self.d.progress_deadline_seconds, st.condition(PROGRESSING)) else {
            return false;
        };
        match c.reason.as_str() {
            NEW_RS_AVAILABLE => false,
            TIMED_OUT => true,
            // An unreadable time is Go's zero time: long past.
            _ => c
                .last_update_time
                .parse::<Timestamp>()
                .map_or(true, |from| from + SignedDuration::from_secs(deadline) < self.now),
        }
    }

    /// `syncRolloutStatus`: the status with the Progressing condition brought up to date.
    pub(super) fn sync_rollout_status(&mut self, new: Option<usize>, olds: &[usize]) {
        let mut st = self.calculate_status(new, olds);
        if self.d.progress_deadline_seconds.is_none() {
            st.remove_condition(PROGRESSING);
        }
        let current = self.d.status.condition(PROGRESSING).cloned();
        let done = st.replicas == st.updated_replicas && current.as_ref().is_some_and(|c| c.reason == NEW_RS_AVAILABLE);
        let subject = match new {
            Some(n) => format!("ReplicaSet \"{}\"", self.rses[n].name),
            None => format!("Deployment \"{}\"", self.d.name),
        };
        if self.d.progress_deadline_seconds.is_some() && !done {
            if self.complete(&st) {
                let msg = format!("{subject} has successfully progressed.");
                st.set_condition(Condition::new(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, self.now));
            } else if self.progressing(&st) {
                let msg = format!("{subject} is progressing.");
                let mut c = Condition::new(PROGRESSING, "True", "ReplicaSetUpdated", msg, self.now);
                // Progress moves lastUpdateTime even when the reason stays the same.
                if let Some(cur) = &current {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    st.remove_condition(PROGRESSING);
                }
                st.set_condition(c);
            } else if self.timed_out(&st) {
                let msg = format!("{subject} has timed out progressing.");
                st.set_condition(Condition::new(PROGRESSING, "False", TIMED_OUT, msg, self.now));
            }
        }
        self.requeue = self.until_deadline(&st);
        self.d.status = st;
    }

    /// `requeueStuckDeployment`: when a rollout without progress will pass its deadline.
    fn until_deadline(&self, st: &Status) -> Option<Duration> {
        let deadline = self.d.progress_deadline_seconds?;
        let c = st.condition(PROGRESSING)?;
        if self.complete(st) || c.reason == TIMED_OUT {
            return None;
        }
        let from: Timestamp = c.last_update_time.parse().ok()?;
        let due = from + SignedDuration::from_secs(deadline);
        let left = due.duration_since(self.now).as_millis().max(0) as u64;
        // Timed out means strictly after the deadline.
        Some(Duration::from_millis(left + 50))
    }
}
