//! When a planned Rollout status is written (API writes per replaced instance).
//!
//! Every reconcile plans a whole status, but not every difference from the stored one is worth a
//! write at once. A status differs from the stored one in
//! * *facts*: what the planner reads back (revisions, batch and its times, the failed update,
//!   handled actions, history, pins, phase, the conditions' status, reason, generation and
//!   transition time) and what `kubectl wait`, the CLI and readers gate on. Written at once:
//!   a plan made from a status without them would decide again (and repeat a transition);
//! * *progress*: the counts, the per-instance pods and versions, `versions`, `progress`, the
//!   available pods of the Deployment of `spec.workloadRef` and the messages. These move with
//!   every pod event of a rollout; they are written at most once per
//!   [`PROGRESS_INTERVAL`] per Rollout (the reconcile is requeued for the rest, so the stored
//!   status always catches up), and they ride along for free with the next fact change (a batch
//!   transition, the end of the rollout);
//! * times alone, to below the second: the API server keeps `Time` fields to the second, so a
//!   planned time with a fraction that is the stored one once truncated is no change at all.
//!
//! Pure: the caller passes the time since its last status write of that Rollout.
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::rollout::RolloutStatus;

/// Least time between two status writes of one Rollout that carry only progress.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// What to do with a planned status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    /// The stored status says the same: nothing to write.
    Unchanged,
    /// Write it now.
    Now,
    /// Only progress changed and the last write is recent: write it (as planned then) after
    /// this long, unless a fact changes first.
    After(Duration),
}

/// Decide for `planned` against `stored`; `since_last_write` is the time since this controller
/// last wrote the Rollout's status (None: not since it started).
pub fn decide(
    stored: Option<&RolloutStatus>,
    planned: &RolloutStatus,
    since_last_write: Option<Duration>,
) -> StatusWrite {
    let Some(stored) = stored else {
        return StatusWrite::Now;
    };
    if stored == planned {
        return StatusWrite::Unchanged;
    }
    // One copy of each, cut to the second, then stripped of progress in place (a decision is
    // made on every reconcile, and each copy of a status is dozens of allocations).
    let (mut stored, mut planned) = (to_seconds(stored), to_seconds(planned));
    if stored == planned {
        return StatusWrite::Unchanged;
    }
    strip_progress(&mut stored);
    strip_progress(&mut planned);
    if stored != planned {
        return StatusWrite::Now;
    }
    match since_last_write {
        Some(since) if since < PROGRESS_INTERVAL => StatusWrite::After(PROGRESS_INTERVAL - since),
        _ => StatusWrite::Now,
    }
}

fn truncate(t: &mut Time) {
    if let Ok(s) = jiff::Timestamp::from_second(t.0.as_second()) {
        t.0 = s;
    }
}

/// `s` with its `Time` fields cut to the second, as the API server stores them.
fn to_seconds(s: &RolloutStatus) -> RolloutStatus {
    let mut s = s.clone();
    for c in &mut s.conditions {
        truncate(&mut c.last_transition_time);
    }
    for i in &mut s.instances {
        if let Some(t) = i.since.as_mut() {
            truncate(t);
        }
    }
    if let Some(t) = s.failed_update.as_mut().and_then(|f| f.at.as_mut()) {
        truncate(t);
    }
    for h in &mut s.history {
        truncate(&mut h.started_at);
        if let Some(t) = h.finished_at.as_mut() {
            truncate(t);
        }
    }
    s
}

/// `f` (cut to the second) without its progress: what must be written at once when it changes.
fn strip_progress(f: &mut RolloutStatus) {
    f.replicas = 0;
    f.ready_replicas = 0;
    f.updated_replicas = 0;
    f.available_replicas = 0;
    f.progress = None;
    f.versions.clear();
    f.message = None;
    for c in &mut f.conditions {
        c.message.clear();
    }
    // The Deployment of `spec.workloadRef` losing pods as the Rollout takes over is progress
    // too; its replicas (what this controller set) are a fact.
    if let Some(w) = f.workload_ref.as_mut() {
        w.available_replicas = 0;
    }
    for i in &mut f.instances {
        // The pin stays a fact: the planner reports pin changes against the stored one.
        i.pod = None;
        i.version = None;
        i.revision = 0;
        i.ready = false;
        i.since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rollout::{BatchStatus, InstanceStatus, ProgressStatus, RolloutPhase};
    use jiff::Timestamp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn base() -> RolloutStatus {
        RolloutStatus {
            observed_generation: Some(2),
            phase: Some(RolloutPhase::Progressing),
            update_revision: Some("r-b".into()),
            current_revision: Some("r-a".into()),
            replicas: 2,
            ready_replicas: 2,
            available_replicas: 2,
            batch: Some(BatchStatus {
                current: 1,
                total: 2,
                started_at: Some(MicroTime(ts("2026-11-23T10:00:00.123456Z"))),
                pause_started_at: None,
                bake_started_at: None,
            }),
            progress: Some(ProgressStatus {
                total: 2,
                pending: 2,
                ..ProgressStatus::default()
            }),
            instances: vec![InstanceStatus {
                name: "r-0".into(),
                pod: Some("r-0-a".into()),
                version: Some("v1".into()),
                revision: 1,
                ready: true,
                since: Some(Time(ts("2026-11-23T09:00:00Z"))),
                ..InstanceStatus::default()
            }],
            versions: [("v1".to_string(), 2)].into(),
            conditions: vec![Condition {
                type_: "Progressing".into(),
                status: "True".into(),
                reason: "ReplicaSetUpdated".into(),
                message: "batch 1/2: rolling out v2 to 1 of 2 instances".into(),
                last_transition_time: Time(ts("2026-11-23T10:00:00Z")),
                observed_generation: Some(2),
            }],
            message: Some("batch 1/2: rolling out v2 to 1 of 2 instances".into()),
            ..RolloutStatus::default()
        }
    }

    /// The progress of a pod of the update revision created and not Ready yet.
    fn progressed(mut s: RolloutStatus) -> RolloutStatus {
        s.updated_replicas = 1;
        s.instances[0].pod = Some("r-0-b".into());
        s.instances[0].version = Some("v2".into());
        s.instances[0].revision = 2;
        s.instances[0].ready = false;
        s.versions = [("v1".to_string(), 1), ("v2".to_string(), 1)].into();
        let m = "batch 1/2: rolling out v2 to 1 of 2 instances; waiting for r-0 (not Ready)";
        s.message = Some(m.into());
        s.conditions[0].message = m.into();
        s
    }

    #[test]
    fn the_same_status_is_not_written() {
        let s = base();
        assert_eq!(decide(Some(&s), &s.clone(), None), StatusWrite::Unchanged);
    }

    #[test]
    fn a_first_status_is_written() {
        assert_eq!(decide(None, &base(), Some(Duration::ZERO)), StatusWrite::Now);
    }

    #[test]
    fn a_time_that_differs_below_the_second_is_no_change() {
        let stored = base();
        let mut planned = base();
        planned.conditions[0].last_transition_time = Time(ts("2026-11-23T10:00:00.734Z"));
        planned.instances[0].since = Some(Time(ts("2026-11-23T09:00:00.5Z")));
        assert_eq!(decide(Some(&stored), &planned, None), StatusWrite::Unchanged);
        planned.conditions[0].last_transition_time = Time(ts("2026-11-23T10:00:01Z"));
        assert_eq!(decide(Some(&stored), &planned, None), StatusWrite::Now);
    }

    #[test]
    fn progress_waits_for_the_interval_since_the_last_write() {
        let stored = base();
        let planned = progressed(base());
        assert_eq!(
            decide(Some(&stored), &planned, Some(Duration::from_millis(500))),
            StatusWrite::After(PROGRESS_INTERVAL - Duration::from_millis(500))
        );
        assert_eq!(
            decide(Some(&stored), &planned, Some(PROGRESS_INTERVAL)),
            StatusWrite::Now
        );
        // A controller that never wrote it (e.g. just started) writes at once.
        assert_eq!(decide(Some(&stored), &planned, None), StatusWrite::Now);
    }

    #[test]
    fn facts_are_written_at_once_with_the_progress_they_come_with() {
        let stored = base();
        let recent = Some(Duration::from_millis(10));
        type Change = (&'static str, fn(&mut RolloutStatus));
        let changes: Vec<Change> = vec![
            ("phase", |s| s.phase = Some(RolloutPhase::Healthy)),
            ("generation", |s| s.observed_generation = Some(3)),
            ("batch", |s| s.batch.as_mut().unwrap().current = 2),
            ("batch start", |s| {
                s.batch.as_mut().unwrap().started_at = Some(MicroTime(ts("2026-11-23T10:00:00.2Z")))
            }),
            ("pause", |s| {
                s.batch.as_mut().unwrap().pause_started_at = Some(MicroTime(ts("2026-11-23T10:00:03Z")))
            }),
            ("condition status", |s| s.conditions[0].status = "False".into()),
            ("condition reason", |s| s.conditions[0].reason = "BatchPaused".into()),
            ("revision", |s| s.current_revision = Some("r-b".into())),
            ("version", |s| s.version = Some("v2".into())),
            ("pin", |s| s.instances[0].pinned = true),
            ("pinned version", |s| s.instances[0].pinned_version = Some("v1".into())),
            ("an instance more", |s| {
                s.instances.push(InstanceStatus {
                    name: "r-1".into(),
                    ..InstanceStatus::default()
                })
            }),
        ];
        for (what, change) in changes {
            let mut planned = progressed(base());
            change(&mut planned);
            assert_eq!(decide(Some(&stored), &planned, recent), StatusWrite::Now, "{what}");
        }
    }

    #[test]
    fn the_deployments_available_pods_are_progress_and_its_replicas_a_fact() {
        use crate::api::rollout::WorkloadRefStatus;
        let mut stored = base();
        stored.workload_ref = Some(WorkloadRefStatus {
            name: "web".into(),
            observed_generation: 1,
            replicas: 3,
            available_replicas: 3,
            original_replicas: Some(3),
        });
        let recent = Some(Duration::from_millis(10));
        let mut planned = stored.clone();
        planned.workload_ref.as_mut().unwrap().available_replicas = 2;
        assert!(matches!(decide(Some(&stored), &planned, recent), StatusWrite::After(_)));
        planned.workload_ref.as_mut().unwrap().replicas = 2;
        assert_eq!(decide(Some(&stored), &planned, recent), StatusWrite::Now);
    }
}
