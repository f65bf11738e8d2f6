//! The bake window's checks: round after round until the window ends (each round a new key,
//! the next one `intervalSeconds` after the previous passed); a round that fails rolls back; a
//! round still running at the window's end holds nothing; after a restart the rounds start
//! again from the first; a `job` check runs once per window.

use super::checks::{health_check, message, step_with, with_checks};
use super::*;
use crate::api::rollout::Check;

/// The round of a bake run's key (`<hash>/bake<r>/<check>/<pod>`), None for a batch's.
fn round(run: &CheckRun) -> Option<u32> {
    run.key.split('/').nth(1)?.strip_prefix("bake")?.parse().ok()
}

/// A world baking v2 for `secs` with `check`, at the plan that started the bake.
fn baking(check: Check, secs: i32) -> World {
    let mut w = with_checks(vec![check]);
    w.input.spec.bake_seconds = secs;
    let pass = |_: &CheckRun| (CheckOutcome::Passed, "HTTP 200");
    for _ in 0..80 {
        let p = step_with(&mut w, &pass);
        if p.status.batch.as_ref().is_some_and(|b| b.bake_started_at.is_some()) {
            return w;
        }
    }
    panic!(
        "the bake did not start: {:?}",
        w.input.status.as_ref().and_then(|s| s.message.clone())
    );
}

#[test]
fn bake_checks_run_round_after_round_until_the_window_ends() {
    let mut w = baking(health_check(1, 0), 30);
    let pass = |_: &CheckRun| (CheckOutcome::Passed, "HTTP 200");
    let mut keys = BTreeSet::new();
    let mut rounds: BTreeMap<String, Vec<(u32, Duration)>> = BTreeMap::new();
    let mut healthy = None;
    for _ in 0..60 {
        let p = step_with(&mut w, &pass);
        for run in &p.checks {
            let r = round(run).expect("only bake runs are wanted while baking");
            if keys.insert(run.key.clone()) {
                rounds
                    .entry(run.target.clone().unwrap_or_default())
                    .or_default()
                    .push((r, run.delay));
            }
        }
        if p.status.phase == Some(RolloutPhase::Healthy) {
            healthy = Some(p);
            break;
        }
    }
    let p = healthy.expect("healthy once the window ended");
    assert!(p.checks.is_empty(), "no run is wanted after the bake: {:?}", p.checks);
    assert_eq!(rounds.keys().cloned().collect::<Vec<_>>(), ["svc-0", "svc-1", "svc-2"]);
    for (target, seen) in &rounds {
        // The plan that started the bake wanted round 1; each later plan the next round.
        assert!(seen.len() >= 20, "{target}: {} rounds in a 30 s window", seen.len());
        for (i, (r, delay)) in seen.iter().enumerate() {
            assert_eq!(*r as usize, i + 2, "{target}: rounds in order, each once: {seen:?}");
            assert_eq!(
                *delay,
                Duration::from_secs(2),
                "round {r} starts an interval after the last"
            );
        }
    }
}

#[test]
fn the_first_bake_round_starts_at_once_with_its_own_key() {
    let mut w = with_checks(vec![health_check(1, 0)]);
    w.input.spec.bake_seconds = 30;
    let pass = |_: &CheckRun| (CheckOutcome::Passed, "HTTP 200");
    for _ in 0..80 {
        let p = step_with(&mut w, &pass);
        if p.status.batch.as_ref().is_some_and(|b| b.bake_started_at.is_some()) {
            let bake: Vec<&CheckRun> = p.checks.iter().filter(|r| round(r).is_some()).collect();
            assert_eq!(bake.len(), 3, "{:?}", p.checks);
            for run in bake {
                assert_eq!(round(run), Some(1));
                assert_eq!(run.delay, Duration::ZERO);
                assert!(run.key.contains("/bake1/health/svc-"), "{}", run.key);
            }
            return;
        }
    }
    panic!("the bake did not start");
}

#[test]
fn a_bake_round_that_fails_after_passing_ones_rolls_back() {
    let mut w = baking(health_check(3, 0), 600);
    let answer = |r: &CheckRun| match round(r) {
        Some(n) if n >= 5 => (CheckOutcome::Failed, "HTTP 500 (expected 200)"),
        _ => (CheckOutcome::Passed, "HTTP 200"),
    };
    let mut failed = None;
    for _ in 0..30 {
        let p = step_with(&mut w, &answer);
        if p.status.failed_update.is_some() {
            failed = Some(p);
            break;
        }
    }
    let p = failed.expect("round 5 fails the bake, well within its 600 s");
    let f = p.status.failed_update.clone().unwrap();
    assert_eq!(f.reason, FailureReason::CheckFailed);
    assert!(f.rolled_back);
    assert!(
        f.message.contains("v2 during the bake window: check health on svc-"),
        "{}",
        f.message
    );
    assert!(f.message.contains("last: HTTP 500 (expected 200)"), "{}", f.message);
    assert!(has_event(&p, EventReason::CheckFailed));
    assert!(p.checks.is_empty(), "no run is wanted once the bake failed");
    w.run_until(60, |s| s.phase == Some(RolloutPhase::RolledBack));
}

#[test]
fn a_round_still_running_when_the_window_ends_holds_nothing() {
    let mut w = baking(health_check(10, 9), 30);
    let answer = |r: &CheckRun| match round(r) {
        Some(1) => (CheckOutcome::Passed, "HTTP 200"),
        _ => (CheckOutcome::Running, "HTTP 503 (expected 200)"),
    };
    let mut steps = 0;
    loop {
        let p = step_with(&mut w, &answer);
        steps += 1;
        if p.status.phase == Some(RolloutPhase::Healthy) {
            break;
        }
        assert!(steps < 40, "not completed at the window's end: {}", message(&p));
    }
    assert!(
        (29..=31).contains(&steps),
        "completed when the window ended: {steps} steps"
    );
}

#[test]
fn after_a_restart_the_bake_rounds_start_again_from_the_first() {
    let mut w = baking(health_check(1, 0), 300);
    let pass = |_: &CheckRun| (CheckOutcome::Passed, "HTTP 200");
    for _ in 0..5 {
        step_with(&mut w, &pass);
    }
    let started = w
        .input
        .status
        .as_ref()
        .and_then(|s| s.batch.clone())
        .and_then(|b| b.bake_started_at);
    let p = step_with(&mut w, &pass);
    assert!(
        p.checks.iter().all(|r| round(r).is_some_and(|n| n > 1)),
        "{:?}",
        p.checks
    );
    // A controller restart: the shell remembers no run.
    w.input.checks.clear();
    let p = w.step();
    assert_eq!(p.checks.len(), 3);
    for run in &p.checks {
        assert_eq!(round(run), Some(1), "{}", run.key);
        assert_eq!(run.delay, Duration::ZERO);
    }
    assert_eq!(
        p.status.batch.and_then(|b| b.bake_started_at),
        started,
        "the window itself is not restarted"
    );
}
