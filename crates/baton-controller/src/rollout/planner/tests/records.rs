//! `status.history`: deploy and rollback records, stepped through the small world.

use super::*;
use crate::api::rollout::origin::SpecOrigin;
use crate::api::rollout::{RecordKind, RecordOutcome, RecordTrigger};

fn records(w: &World) -> Vec<(i64, RecordKind, RecordTrigger, String, RecordOutcome)> {
    w.input
        .status
        .clone()
        .unwrap_or_default()
        .history
        .iter()
        .map(|r| (r.id, r.kind, r.trigger, r.version.clone(), r.outcome))
        .collect()
}

fn healthy_on(version: &'static str) -> impl Fn(&RolloutStatus) -> bool {
    move |s| s.phase == Some(RolloutPhase::Healthy) && s.versions == [(version.to_string(), 3)].into()
}

#[test]
fn each_deploy_is_a_record_that_closes_when_every_instance_is_on_it() {
    let mut inp = input(spec("v1", 3), vec![], vec![]);
    inp.origin = SpecOrigin {
        change_cause: Some("kubectl apply -f svc.yaml".into()),
        changed_by: Some("kubectl-client-side-apply".into()),
    }
    .into();
    let mut w = World::new(inp);
    let p = w.step();
    // The first plan opens the record, and the revision carries who and why.
    let Some(Action::CreateRevision { annotations: a, .. }) = p.actions.first() else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(
        a.get(annotations::CHANGE_CAUSE).map(String::as_str),
        Some("kubectl apply -f svc.yaml")
    );
    assert_eq!(
        a.get(annotations::CHANGED_BY).map(String::as_str),
        Some("kubectl-client-side-apply")
    );
    let open = &p.status.history[0];
    assert_eq!(
        (open.id, open.outcome, open.started_at.0),
        (1, RecordOutcome::InProgress, at(1000))
    );
    assert_eq!(open.changed_by.as_deref(), Some("kubectl-client-side-apply"));
    w.run_until(60, healthy_on("v1"));
    w.set_spec(spec("v2", 3));
    w.input.origin = SpecOrigin {
        change_cause: Some("baton rollout set image svc app=svc:v2".into()),
        changed_by: Some("baton".into()),
    }
    .into();
    w.run_until(200, healthy_on("v2"));
    assert_eq!(
        records(&w),
        [
            (
                1,
                RecordKind::Deploy,
                RecordTrigger::Spec,
                "v1".into(),
                RecordOutcome::Succeeded
            ),
            (
                2,
                RecordKind::Deploy,
                RecordTrigger::Spec,
                "v2".into(),
                RecordOutcome::Succeeded
            ),
        ]
    );
    let h = w.input.status.clone().unwrap().history;
    assert_eq!(h[1].from_version.as_deref(), Some("v1"));
    assert_eq!(
        h[1].change_cause.as_deref(),
        Some("baton rollout set image svc app=svc:v2")
    );
    assert!(h[1].finished_at.as_ref().unwrap().0 > h[1].started_at.0);
    // Nothing changes once done: no status write for the history.
    let before = w.input.status.clone();
    w.step();
    assert_eq!(w.input.status, before);
}

#[test]
fn a_failed_deploy_and_its_automatic_rollback_are_two_records() {
    // `healthy` starts from a status without records (as after an upgrade).
    let mut w = World::new(healthy("v1", 3));
    let mut v2 = spec("v2", 3);
    v2.progress_deadline_seconds = 10_000;
    w.set_spec(v2);
    w.behaviour.insert("v2".into(), Behaviour::CrashLoop);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::RolledBack));
    let h = w.input.status.clone().unwrap().history;
    let last_two: Vec<_> = records(&w).into_iter().rev().take(2).rev().collect();
    assert_eq!(
        last_two,
        [
            (
                1,
                RecordKind::Deploy,
                RecordTrigger::Spec,
                "v2".into(),
                RecordOutcome::Failed
            ),
            (
                2,
                RecordKind::Rollback,
                RecordTrigger::Automatic,
                "v1".into(),
                RecordOutcome::Succeeded
            ),
        ]
    );
    let failed = &h[h.len() - 2];
    assert!(failed.message.as_deref().unwrap_or("").contains("crash"), "{failed:?}");
    assert_eq!(h[h.len() - 1].from_version.as_deref(), Some("v2"));
    assert_eq!(h[h.len() - 1].revision, 1);
}

#[test]
fn undo_to_an_earlier_revision_is_a_rollback_and_a_newer_spec_supersedes() {
    let mut w = World::new(healthy("v1", 3));
    w.set_spec(spec("v2", 3));
    w.run_until(200, healthy_on("v2"));
    // v3 goes out, and before it is done the spec goes back to v1 (an undo).
    let mut v3 = spec("v3", 3);
    v3.strategy.pause = Some(Pause {
        duration: None,
        manual: Some(true),
    });
    w.set_spec(v3);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Paused));
    w.set_spec(spec("v1", 3));
    w.run_until(200, healthy_on("v1"));
    let tail: Vec<_> = records(&w).into_iter().rev().take(3).rev().collect();
    assert_eq!(
        tail,
        [
            (
                1,
                RecordKind::Deploy,
                RecordTrigger::Spec,
                "v2".into(),
                RecordOutcome::Succeeded
            ),
            (
                2,
                RecordKind::Deploy,
                RecordTrigger::Spec,
                "v3".into(),
                RecordOutcome::Superseded
            ),
            (
                3,
                RecordKind::Rollback,
                RecordTrigger::Undo,
                "v1".into(),
                RecordOutcome::Succeeded
            ),
        ]
    );
}

#[test]
fn the_history_is_bounded() {
    let mut w = World::new(healthy("v1", 1));
    for i in 2..=15 {
        let v: &'static str = Box::leak(format!("v{i}").into_boxed_str());
        w.set_spec(spec(v, 1));
        w.run_until(100, move |s| {
            s.phase == Some(RolloutPhase::Healthy) && s.versions == [(v.to_string(), 1)].into()
        });
    }
    let h = w.input.status.clone().unwrap().history;
    assert_eq!(h.len(), crate::api::rollout::history::MAX_RECORDS);
    assert_eq!(h.last().map(|r| (r.id, r.version.as_str())), Some((14, "v15")));
}
