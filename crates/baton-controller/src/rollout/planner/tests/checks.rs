//! Checks per batch and the bake window: a batch waits for its checks, a failed check fails it
//! (rollback or Degraded) naming the check and its last result, a run the shell forgot is wanted
//! again from scratch; the bake keeps the revision from counting as healthy, fails on an
//! unavailable instance, and `promote --full` ends it.

use super::*;
use crate::api::rollout::{Check, HttpCheck, HttpMethod, PrometheusCheck};

pub(super) fn health_check(count: i32, failure_limit: i32) -> Check {
    Check {
        name: "health".into(),
        job: None,
        http: Some(HttpCheck {
            url: "http://{{podIP}}:8080/health/{{instance}}?v={{version}}".into(),
            method: HttpMethod::Get,
            body: None,
            expected_status: vec![200],
            json: None,
            timeout_seconds: 2,
        }),
        prometheus: None,
        count,
        failure_limit,
        interval_seconds: 2,
    }
}

/// v1 healthy on 3 instances, spec now v2 in batches [1, 100%] with `checks`.
pub(super) fn with_checks(checks: Vec<Check>) -> World {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.strategy.batches = vec![IntOrString::Int(1), pct("100%")];
    inp.spec.checks = checks;
    World::new(inp)
}

pub(super) fn progress(outcome: CheckOutcome, last: &str) -> CheckProgress {
    let (attempts, failures) = match outcome {
        CheckOutcome::Running => (1, 0),
        CheckOutcome::Passed => (1, 0),
        CheckOutcome::Failed => (3, 3),
    };
    CheckProgress {
        attempts,
        failures,
        last: Some(last.into()),
        outcome,
    }
}

/// One step, then the shell's part: forget runs no longer wanted, report on the new ones.
pub(super) fn step_with(w: &mut World, answer: &dyn Fn(&CheckRun) -> (CheckOutcome, &'static str)) -> Plan {
    let p = w.step();
    let wanted: BTreeSet<String> = p.checks.iter().map(|r| r.key.clone()).collect();
    w.input.checks.retain(|k, _| wanted.contains(k));
    for run in &p.checks {
        let (outcome, last) = answer(run);
        w.input.checks.insert(run.key.clone(), progress(outcome, last));
    }
    p
}

pub(super) fn message(p: &Plan) -> String {
    p.status.message.clone().unwrap_or_default()
}

#[test]
fn outcome_passes_after_enough_successes_and_fails_past_the_limit() {
    // The seed's curl loop: ten tries, the first success passes.
    let curl = health_check(10, 9);
    assert_eq!(check_outcome(&curl, 1, 0), CheckOutcome::Passed);
    assert_eq!(check_outcome(&curl, 9, 9), CheckOutcome::Running);
    assert_eq!(check_outcome(&curl, 10, 10), CheckOutcome::Failed);
    // Five successes in a row.
    let strict = health_check(5, 0);
    assert_eq!(check_outcome(&strict, 4, 0), CheckOutcome::Running);
    assert_eq!(check_outcome(&strict, 5, 0), CheckOutcome::Passed);
    assert_eq!(check_outcome(&strict, 1, 1), CheckOutcome::Failed);
    let some = health_check(5, 1);
    assert_eq!(check_outcome(&some, 5, 1), CheckOutcome::Passed);
    assert_eq!(check_outcome(&some, 3, 2), CheckOutcome::Failed);
}

#[test]
fn a_batch_waits_for_its_checks_then_moves_on() {
    let mut w = with_checks(vec![health_check(3, 0)]);
    let running = |_: &CheckRun| (CheckOutcome::Running, "HTTP 200");
    let mut seen = None;
    for _ in 0..20 {
        let p = step_with(&mut w, &running);
        if let Some(run) = p.checks.first() {
            seen = Some((run.clone(), p));
            break;
        }
    }
    let (run, p) = seen.expect("a check run is wanted once batch 1 is available");
    assert_eq!(run.rendered, "http://10.0.0.0:8080/health/svc-0?v=v2");
    assert_eq!(run.target.as_deref(), Some("svc-0"));
    assert!(run.key.contains("/b1/health/svc-0-"), "{}", run.key);
    assert!(
        message(&p).contains("check health on svc-0 (attempt 0/3)"),
        "{}",
        message(&p)
    );
    // While it runs, batch 1 does not end (and no instance beyond the canary moves).
    for _ in 0..10 {
        let p = step_with(&mut w, &running);
        assert_eq!(p.status.batch.as_ref().map(|b| b.current), Some(1));
        assert_eq!(p.status.updated_replicas, 1);
        assert!(message(&p).contains("attempt 1/3, last: HTTP 200"), "{}", message(&p));
    }
    // Passed: batch 2, whose pods are checked in turn.
    let pass = |_: &CheckRun| (CheckOutcome::Passed, "HTTP 200");
    let mut batch2_targets = BTreeSet::new();
    for _ in 0..60 {
        let p = step_with(&mut w, &pass);
        if p.status.batch.as_ref().map(|b| b.current) == Some(2) {
            batch2_targets.extend(p.checks.iter().filter_map(|r| r.target.clone()));
        }
        if p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty() {
            break;
        }
    }
    assert_eq!(
        w.input.status.as_ref().and_then(|s| s.phase),
        Some(RolloutPhase::Healthy)
    );
    assert_eq!(
        batch2_targets,
        ["svc-0", "svc-1", "svc-2"].map(String::from).into(),
        "batch 2 checks every pod of the batch"
    );
}

fn error_ratio(query: &str) -> Check {
    Check {
        name: "errors".into(),
        http: None,
        job: None,
        prometheus: Some(PrometheusCheck {
            address: "http://prometheus:9090".into(),
            query: query.into(),
            condition: "< 0.05".into(),
            secret_ref: None,
            timeout_seconds: 5,
        }),
        count: 1,
        failure_limit: 0,
        interval_seconds: 2,
    }
}

#[test]
fn a_prometheus_query_is_filled_in_per_batch_or_per_pod() {
    let per_batch = error_ratio(r#"max(errors{rollout="{{rollout}}",version="{{version}}"})"#);
    let per_pod = error_ratio(r#"max(errors{instance="{{instance}}"})"#);
    assert!(!per_batch.per_pod() && per_pod.per_pod());
    let mut w = with_checks(vec![
        per_batch,
        Check {
            name: "pod-errors".into(),
            ..per_pod
        },
    ]);
    let running = |_: &CheckRun| (CheckOutcome::Running, "0.01");
    let runs = (0..20)
        .map(|_| step_with(&mut w, &running).checks)
        .find(|c| !c.is_empty())
        .expect("check runs are wanted once batch 1 is available");
    let rendered: Vec<(&str, Option<&str>, &str)> = runs
        .iter()
        .map(|r| (r.name.as_str(), r.target.as_deref(), r.rendered.as_str()))
        .collect();
    assert_eq!(
        rendered,
        [
            ("errors", None, r#"max(errors{rollout="svc",version="v2"})"#),
            ("pod-errors", Some("svc-0"), r#"max(errors{instance="svc-0"})"#),
        ]
    );
}

#[test]
fn a_failed_check_fails_the_batch_naming_the_check_and_its_last_result() {
    for auto_rollback in [true, false] {
        let mut w = with_checks(vec![health_check(3, 0)]);
        w.input.spec.auto_rollback = auto_rollback;
        let fail = |_: &CheckRun| (CheckOutcome::Failed, "HTTP 500 (expected 200)");
        let mut failed = None;
        for _ in 0..20 {
            let p = step_with(&mut w, &fail);
            if p.status.failed_update.is_some() {
                failed = Some(p);
                break;
            }
        }
        let p = failed.expect("the batch fails");
        let f = p.status.failed_update.clone().unwrap();
        assert_eq!(f.reason, FailureReason::CheckFailed);
        assert_eq!(f.instances, ["svc-0"]);
        assert!(
            f.message
                .contains("check health on svc-0 failed: 3 of 3 attempts failed, last: HTTP 500 (expected 200)"),
            "{}",
            f.message
        );
        let check_event = p
            .events
            .iter()
            .find(|e| e.reason == EventReason::CheckFailed)
            .expect("CheckFailed");
        assert_eq!(check_event.type_, EventType::Warning);
        assert!(check_event.message.contains("HTTP 500"), "{}", check_event.message);
        assert!(has_event(&p, EventReason::BatchFailed));
        assert!(p.checks.is_empty(), "no check is wanted once the batch failed");
        if auto_rollback {
            w.run_until(60, |s| s.phase == Some(RolloutPhase::RolledBack));
            assert_eq!(w.versions(), map(&[("v1", 3)]));
        } else {
            assert_eq!(p.status.phase, Some(RolloutPhase::Degraded));
            assert_eq!(condition(&p.status, ConditionType::Progressing).reason, "CheckFailed");
        }
    }
}

#[test]
fn a_run_the_shell_forgot_is_wanted_again_from_its_first_attempt() {
    let mut w = with_checks(vec![health_check(3, 0)]);
    let running = |_: &CheckRun| (CheckOutcome::Running, "HTTP 200");
    let mut key = None;
    for _ in 0..20 {
        let p = step_with(&mut w, &running);
        if let Some(run) = p.checks.first() {
            key = Some(run.key.clone());
            break;
        }
    }
    let key = key.expect("a run");
    // A controller restart: no memory of any run.
    w.input.checks.clear();
    let p = w.step();
    assert_eq!(p.checks.iter().map(|r| r.key.clone()).collect::<Vec<_>>(), [key]);
    assert!(message(&p).contains("(attempt 0/3)"), "{}", message(&p));
    assert_eq!(p.status.batch.as_ref().map(|b| b.current), Some(1));
}

#[test]
fn the_bake_window_holds_the_revision_until_it_ends() {
    let mut w = with_checks(vec![]);
    w.input.spec.bake_seconds = 30;
    let mut baking = None;
    for _ in 0..60 {
        let p = w.step();
        if p.status.batch.as_ref().is_some_and(|b| b.bake_started_at.is_some()) {
            baking = Some(p);
            break;
        }
    }
    let p = baking.expect("the bake starts");
    assert!(has_event(&p, EventReason::BakeStarted));
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(condition(&p.status, ConditionType::Ready).status, "False");
    assert_eq!(condition(&p.status, ConditionType::Progressing).reason, "Baking");
    // The message names the end of the window (bake start + 30 s), which does not go stale.
    let started = p
        .status
        .batch
        .as_ref()
        .and_then(|b| b.bake_started_at.clone())
        .expect("bakeStartedAt")
        .0;
    // Rounded up to the second, as the message says it.
    let end = started
        .checked_add(jiff::SignedDuration::from_nanos(30_999_999_999))
        .expect("end");
    let want = format!("baking until {}", end.strftime("%Y-%m-%dT%H:%M:%SZ"));
    assert!(message(&p).contains(&want), "{} (want {want})", message(&p));
    assert_eq!(
        p.status.current_revision,
        Some(rev("v1", 1).name),
        "not healthy before the bake ends"
    );
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    assert!(!has_event(&p, EventReason::RolloutCompleted));
    let steps = w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert!(
        (28..=31).contains(&steps),
        "healthy after the 30 s bake, took {steps} steps"
    );
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.version.as_deref(), Some("v2"));
    assert!(w.events.iter().any(|e| e.reason == EventReason::RolloutCompleted));
}

#[test]
fn an_instance_unavailable_during_the_bake_rolls_back() {
    let mut w = with_checks(vec![]);
    w.input.spec.bake_seconds = 300;
    w.run_until(60, |s| s.batch.as_ref().is_some_and(|b| b.bake_started_at.is_some()));
    let pod = w
        .input
        .pods
        .iter_mut()
        .find(|p| p.slot == 1 && p.version == "v2")
        .unwrap();
    pod.ready = false;
    pod.ready_since = None;
    let p = w.step();
    let f = p.status.failed_update.clone().expect("the bake failed");
    assert_eq!(f.reason, FailureReason::BakeFailed);
    assert!(
        f.message.contains("during the bake window: svc-1 (not ready)"),
        "{}",
        f.message
    );
    assert!(f.rolled_back);
    assert_eq!(p.status.phase, Some(RolloutPhase::RollingBack));
    assert!(p.status.batch.as_ref().unwrap().bake_started_at.is_none());
    w.run_until(60, |s| s.phase == Some(RolloutPhase::RolledBack));
    assert_eq!(w.versions(), map(&[("v1", 3)]));
}

#[test]
fn promote_full_ends_the_bake() {
    let mut w = with_checks(vec![]);
    w.input.spec.bake_seconds = 3600;
    w.run_until(60, |s| s.batch.as_ref().is_some_and(|b| b.bake_started_at.is_some()));
    w.input.requests.promote_full = Some("now".into());
    let p = w.step();
    assert!(p
        .events
        .iter()
        .any(|e| e.reason == EventReason::Promoted && e.message.contains("bake window ends early")));
    assert_eq!(p.status.phase, Some(RolloutPhase::Healthy), "{}", message(&p));
    assert_eq!(p.status.version.as_deref(), Some("v2"));
    // Recorded: the next plan stays healthy and does not act again.
    let p = w.step();
    assert_eq!(p.status.phase, Some(RolloutPhase::Healthy));
    assert!(!has_event(&p, EventReason::Promoted));
}

fn map(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
