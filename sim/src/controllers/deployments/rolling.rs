//! The two rollout strategies (pkg/controller/deployment: rolling.go, recreate.go): one step
//! per sync — scale the new ReplicaSet up, or the old ones down — each bounded by `maxSurge`
//! and `maxUnavailable`; or all old pods gone before the new ones start.
use super::model::ReplicaSet;
use super::sync::{Stop, Sync};
use super::util::{by_creation, max_unavailable, new_rs_new_replicas};

/// A scale-down that would grow a ReplicaSet: kube reports it as an error and scales nothing
/// more in this sync.
struct Invalid;

impl Sync<'_> {
    fn replicas_of(&self, idx: &[usize]) -> i64 {
        idx.iter().map(|&i| self.rses[i].replicas).sum()
    }

    fn active(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().copied().filter(|&i| self.rses[i].replicas > 0).collect()
    }

    fn sorted_by_creation(&self, idx: &[usize]) -> Vec<usize> {
        let mut v = idx.to_vec();
        v.sort_by(|a, b| by_creation(&self.rses[*a], &self.rses[*b]));
        v
    }

    /// `rolloutRolling`.
    pub(super) fn rollout_rolling(&mut self) -> Result<(), Stop> {
        let (new, olds) = self.get_all(true)?;
        let Some(n) = new else {
            return Ok(());
        };
        if self.reconcile_new(&olds, n) {
            self.sync_rollout_status(new, &olds);
            return Ok(());
        }
        let active_olds = self.active(&olds);
        if self.reconcile_old(&active_olds, n) {
            self.sync_rollout_status(new, &olds);
            return Ok(());
        }
        if self.complete(&self.d.status.clone()) {
            self.cleanup(&olds);
        }
        self.sync_rollout_status(new, &olds);
        Ok(())
    }

    /// `reconcileNewReplicaSet`: grow the new ReplicaSet as far as `maxSurge` allows (or shrink
    /// it to the Deployment's size).
    fn reconcile_new(&mut self, olds: &[usize], n: usize) -> bool {
        let desired = self.d.replicas;
        if self.rses[n].replicas == desired {
            return false;
        }
        if self.rses[n].replicas > desired {
            return self.scale_and_record(n, desired);
        }
        let all: Vec<&ReplicaSet> = olds.iter().chain([&n]).map(|&i| &self.rses[i]).collect();
        let size = new_rs_new_replicas(&self.d, &all, &self.rses[n]);
        self.scale_and_record(n, size)
    }

    /// `reconcileOldReplicaSets`: shrink old ReplicaSets, unhealthy replicas first, never
    /// below `replicas - maxUnavailable` available pods, counting the new ReplicaSet's
    /// unavailable pods as missing.
    fn reconcile_old(&mut self, olds: &[usize], n: usize) -> bool {
        if self.replicas_of(olds) == 0 {
            return false;
        }
        let all_pods = self.replicas_of(olds) + self.rses[n].replicas;
        let min_available = self.d.replicas - max_unavailable(&self.d);
        let new_unavailable = self.rses[n].replicas - self.rses[n].available_replicas;
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        let olds = self.sorted_by_creation(olds);
        let Ok(cleaned) = self.cleanup_unhealthy(&olds, max_scaled_down) else {
            return false;
        };
        let Ok(scaled) = self.scale_down_old_for_rolling(&olds, n) else {
            return false;
        };
        cleaned + scaled > 0
    }

    /// `cleanupUnhealthyReplicas`: drop old ReplicaSets' unavailable replicas (their pods go
    /// first, being the least ready), at most `max` of them.
    fn cleanup_unhealthy(&mut self, olds: &[usize], max: i64) -> Result<i64, Invalid> {
        let mut total = 0;
        for &i in olds {
            if total >= max {
                break;
            }
            let rs = &self.rses[i];
            if rs.replicas == 0 || rs.replicas == rs.available_replicas {
                continue;
            }
            let count = (max - total).min(rs.replicas - rs.available_replicas);
            let size = rs.replicas - count;
            if size > rs.replicas {
                return Err(Invalid);
            }
            self.scale_and_record(i, size);
            total += count;
        }
        Ok(total)
    }

    /// `scaleDownOldReplicaSetsForRollingUpdate`: shrink old ReplicaSets, oldest first, by as
    /// many available pods as there are beyond `replicas - maxUnavailable`.
    fn scale_down_old_for_rolling(&mut self, olds: &[usize], n: usize) -> Result<i64, Invalid> {
        let min_available = self.d.replicas - max_unavailable(&self.d);
        let available: i64 = olds.iter().chain([&n]).map(|&i| self.rses[i].available_replicas).sum();
        if available <= min_available {
            return Ok(0);
        }
        let to_scale = available - min_available;
        let mut total = 0;
        for &i in olds {
            if total >= to_scale {
                break;
            }
            let rs = &self.rses[i];
            if rs.replicas == 0 {
                continue;
            }
            let count = rs.replicas.min(to_scale - total);
            let size = rs.replicas - count;
            if size > rs.replicas {
                return Err(Invalid);
            }
            self.scale_and_record(i, size);
            total += count;
        }
        Ok(total)
    }

    /// `rolloutRecreate`: old ReplicaSets to zero; once none of their pods is left (being
    /// deleted or not), the new ReplicaSet at full size.
    pub(super) fn rollout_recreate(&mut self) -> Result<(), Stop> {
        let (mut new, mut olds) = self.get_all(false)?;
        let mut scaled_down = false;
        for i in self.active(&olds) {
            scaled_down |= self.scale_and_record(i, 0);
        }
        if scaled_down || self.old_pods_running(new, &olds) {
            self.sync_rollout_status(new, &olds);
            return Ok(());
        }
        if new.is_none() {
            (new, olds) = self.get_all(true)?;
        }
        if let Some(n) = new {
            let size = self.d.replicas;
            self.scale_and_record(n, size);
        }
        if self.complete(&self.d.status.clone()) {
            self.cleanup(&olds);
        }
        self.sync_rollout_status(new, &olds);
        Ok(())
    }

    /// `oldPodsRunning`: an old ReplicaSet counts replicas, or has a pod not yet finished.
    fn old_pods_running(&self, new: Option<usize>, olds: &[usize]) -> bool {
        let counted: i64 = olds.iter().map(|&i| self.rses[i].status_replicas).sum();
        counted > 0
            || self
                .rses
                .iter()
                .enumerate()
                .any(|(i, rs)| Some(i) != new && rs.live_pods > 0)
    }
}
