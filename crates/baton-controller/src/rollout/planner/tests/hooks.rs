//! Hooks and job checks: a preRollout hook holds batch 1 until its Job succeeds and, failing,
//! replaces nothing (Degraded, `HookFailed`) until a retry deletes its Job and runs it again; a
//! postRollout hook runs after the last batch and its failure rolls back; a Job is created once
//! per revision and hook; a `job` check fails its batch; Jobs go with their pruned revision.

use super::*;
use crate::api::rollout::hooks::hook_names::{POST_ROLLOUT, PRE_ROLLOUT};
use crate::api::rollout::{Check, JobTemplate};
use k8s_openapi::api::core::v1::{Container, PodSpec};

fn job(image: &str) -> Box<JobTemplate> {
    Box::new(JobTemplate {
        template: PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "migrate".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        },
        backoff_limit: None,
        active_deadline_seconds: None,
    })
}

/// v1 healthy on 3 instances, spec now v2 (batches 1, 50%, 100%) with the hooks set by `f`.
/// A `job` check named `name` running `image` once per batch.
fn job_check(name: &str, image: &str) -> Check {
    Check {
        name: name.into(),
        http: None,
        prometheus: None,
        job: Some(job(image)),
        count: 1,
        failure_limit: 0,
        interval_seconds: 2,
    }
}

fn hooked(f: impl FnOnce(&mut RolloutSpec)) -> World {
    let mut inp = healthy("v1", 3);
    let mut s = spec("v2", 3);
    f(&mut s);
    inp.spec = s;
    inp.generation += 1;
    World::new(inp)
}

fn message(p: &Plan) -> String {
    p.status.message.clone().unwrap_or_default()
}

fn v2_pods(w: &World) -> usize {
    let h = hash_of("v2");
    w.input.pods.iter().filter(|p| p.revision_hash == h).count()
}

fn run_until(w: &mut World, steps: usize, mut done: impl FnMut(&Plan) -> bool) -> Plan {
    for _ in 0..steps {
        let p = w.step();
        if done(&p) {
            return p;
        }
    }
    panic!(
        "not reached in {steps} steps: {:?}",
        w.input.status.as_ref().and_then(|s| s.message.clone())
    );
}

#[test]
fn a_pre_rollout_hook_holds_batch_one_until_its_job_succeeds() {
    let mut w = hooked(|s| s.hooks.pre_rollout = Some(job("migrate:v2")));
    let p = w.step();
    let name = hook_job_name(NAME, &hash_of("v2"), PRE_ROLLOUT);
    assert_eq!(name, format!("svc-{}-pre", hash_of("v2")));
    let created: Vec<&Action> = p
        .actions
        .iter()
        .filter(|a| matches!(a, Action::CreateJob { .. }))
        .collect();
    assert_eq!(created.len(), 1, "{:?}", p.actions);
    if let Action::CreateJob { name: n, labels: l, .. } = created[0] {
        assert_eq!(n, &name);
        assert_eq!(l.get(labels::HOOK).map(String::as_str), Some(PRE_ROLLOUT));
        assert_eq!(l.get(labels::REVISION_HASH), Some(&hash_of("v2")));
        assert_eq!(l.get(labels::ROLLOUT).map(String::as_str), Some(NAME));
    }
    assert!(creates(&p).is_empty(), "no pod before the hook: {:?}", p.actions);
    assert!(has_event(&p, EventReason::HookStarted));
    let st = &p.status;
    assert_eq!(st.phase, Some(RolloutPhase::Progressing));
    assert_eq!(condition(st, ConditionType::Progressing).reason, "HookRunning");
    assert_eq!(condition(st, ConditionType::Reconciling).reason, "HookRunning");
    assert!(
        message(&p).contains(&format!("waiting for hook preRollout (Job {name})")),
        "{}",
        message(&p)
    );
    // While it runs nothing moves and it is not created again.
    let p = w.step();
    assert!(creates(&p).is_empty() && p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(v2_pods(&w), 0);
    // It succeeds (2 ticks): the batches go on to Healthy, the Job created once.
    run_until(&mut w, 100, |p| {
        p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty()
    });
    assert_eq!(w.jobs_created, vec![name]);
    assert_eq!(v2_pods(&w), 3);
}

#[test]
fn a_failed_pre_rollout_hook_replaces_nothing_until_a_retry_runs_it_again() {
    let mut w = hooked(|s| s.hooks.pre_rollout = Some(job("migrate:v2")));
    w.job_outcome.insert(PRE_ROLLOUT.into(), false);
    let p = run_until(&mut w, 20, |p| p.status.phase == Some(RolloutPhase::Degraded));
    let st = &p.status;
    let f = st.failed_update.clone().expect("failedUpdate");
    assert_eq!(f.reason, FailureReason::HookFailed);
    assert!(!f.rolled_back, "nothing to roll back");
    assert!(
        f.message.contains("hook preRollout of v2 failed: Job svc-"),
        "{}",
        f.message
    );
    assert!(f.message.contains("failed pod"), "{}", f.message);
    assert_eq!(condition(st, ConditionType::Stalled).status, "True");
    assert_eq!(condition(st, ConditionType::Stalled).reason, "HookFailed");
    assert_eq!(condition(st, ConditionType::Ready).status, "False");
    assert!(message(&p).contains("nothing was replaced"), "{}", message(&p));
    let ev = p
        .events
        .iter()
        .find(|e| e.reason == EventReason::HookFailed)
        .expect("HookFailed event");
    assert_eq!(ev.type_, EventType::Warning);
    for _ in 0..10 {
        let p = w.step();
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.status.phase, Some(RolloutPhase::Degraded));
    }
    assert_eq!(v2_pods(&w), 0);
    assert_eq!(instance_versions(&w), map(&[("v1", 3)]));

    // Retry: the failed Job is deleted, then created again, and this time it succeeds.
    w.job_outcome.insert(PRE_ROLLOUT.into(), true);
    w.input.requests.retry = Some("r1".into());
    let p = w.step();
    let name = hook_job_name(NAME, &hash_of("v2"), PRE_ROLLOUT);
    assert!(
        p.actions.contains(&Action::DeleteJob { name: name.clone() }),
        "{:?}",
        p.actions
    );
    assert!(
        !p.actions.iter().any(|a| matches!(a, Action::CreateJob { .. })),
        "not in the same plan"
    );
    assert_eq!(condition(&p.status, ConditionType::Progressing).reason, "HookRunning");
    // Batch 1 starts again once the re-run hook succeeded: no start time while it runs, and
    // one BatchStarted when it is done (the retry's RetryRequested is not a start).
    assert_eq!(p.status.batch.as_ref().and_then(|b| b.started_at.clone()), None);
    let mut started = 0;
    run_until(&mut w, 100, |p| {
        let hook_done = w_jobs_succeeded(p);
        let batch_one = |e: &&PlanEvent| e.reason == EventReason::BatchStarted && e.batch == Some(1);
        for _ in p.events.iter().filter(batch_one) {
            assert!(hook_done, "batch 1 started before the re-run hook succeeded");
            started += 1;
        }
        p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty()
    });
    assert_eq!(started, 1, "one BatchStarted of batch 1 after the retry");
    assert_eq!(w.jobs_created, vec![name.clone(), name]);
}

/// The plan no longer waits for the preRollout hook (it has moved past `HookRunning`).
fn w_jobs_succeeded(p: &Plan) -> bool {
    p.status.conditions.iter().all(|c| c.reason != "HookRunning")
}

fn instance_versions(w: &World) -> BTreeMap<String, i32> {
    let mut out = BTreeMap::new();
    for p in w.input.pods.iter().filter(|p| !p.terminating) {
        *out.entry(p.version.clone()).or_default() += 1;
    }
    out
}

fn map(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn a_first_rollout_starts_no_pod_before_its_pre_rollout_hook() {
    let mut s = spec("v1", 2);
    s.hooks.pre_rollout = Some(job("migrate:v1"));
    let mut w = World::new(input(s, vec![], vec![]));
    w.job_outcome.insert(PRE_ROLLOUT.into(), false);
    let p = run_until(&mut w, 20, |p| p.status.phase == Some(RolloutPhase::Degraded));
    assert!(w.input.pods.is_empty(), "no pod of the new code: {:?}", w.input.pods);
    assert_eq!(
        p.status.failed_update.map(|f| f.reason),
        Some(FailureReason::HookFailed)
    );
}

#[test]
fn a_failed_post_rollout_hook_rolls_back() {
    let mut w = hooked(|s| s.hooks.post_rollout = Some(job("smoke:v2")));
    w.job_outcome.insert(POST_ROLLOUT.into(), false);
    let mut waited = false;
    let p = run_until(&mut w, 100, |p| {
        if condition(&p.status, ConditionType::Progressing).reason == "HookRunning" {
            waited = true;
            // The post hook runs only once every instance is on v2.
            assert!(
                message(p).contains("all 3 instances of v2 healthy; waiting for hook postRollout"),
                "{}",
                message(p)
            );
        }
        p.status.phase == Some(RolloutPhase::RolledBack)
    });
    assert!(waited, "the rollout waited for the postRollout hook");
    let f = p.status.failed_update.clone().expect("failedUpdate");
    assert_eq!(f.reason, FailureReason::HookFailed);
    assert!(f.rolled_back);
    assert!(f.message.contains("hook postRollout of v2 failed"), "{}", f.message);
    assert_eq!(instance_versions(&w), map(&[("v1", 3)]));
    assert_eq!(w.jobs_created, vec![hook_job_name(NAME, &hash_of("v2"), POST_ROLLOUT)]);
}

#[test]
fn a_post_rollout_hook_runs_before_the_revision_counts_as_healthy() {
    let mut w = hooked(|s| s.hooks.post_rollout = Some(job("smoke:v2")));
    let mut seen_running = false;
    run_until(&mut w, 100, |p| {
        if condition(&p.status, ConditionType::Progressing).reason == "HookRunning" {
            seen_running = true;
            assert_ne!(p.status.phase, Some(RolloutPhase::Healthy));
            assert_ne!(p.status.current_revision, p.status.update_revision);
        }
        p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty()
    });
    assert!(seen_running);
}

#[test]
fn the_progress_deadline_of_batch_one_counts_from_the_hook_success() {
    let mut w = hooked(|s| {
        s.hooks.pre_rollout = Some(job("migrate:v2"));
        s.progress_deadline_seconds = 5;
    });
    w.behaviour.insert("v2".into(), Behaviour::ReadyAfter(3));
    // The hook Job runs long: 20 ticks (well past the deadline) before it succeeds.
    let p = w.step();
    assert!(p.actions.iter().any(|a| matches!(a, Action::CreateJob { .. })));
    let name = hook_job_name(NAME, &hash_of("v2"), PRE_ROLLOUT);
    for _ in 0..20 {
        if let Some(j) = w.jobs.get_mut(&name) {
            j.0 = w.input.now;
        }
        w.step();
    }
    run_until(&mut w, 100, |p| {
        assert!(p.status.failed_update.is_none(), "{:?}", p.status.failed_update);
        p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty()
    });
}

#[test]
fn a_failing_job_check_fails_its_batch() {
    let mut w = hooked(|s| s.checks = vec![job_check("smoke", "smoke:v2")]);
    w.job_outcome.insert("smoke".into(), false);
    let p = run_until(&mut w, 100, |p| p.status.phase == Some(RolloutPhase::RolledBack));
    let f = p.status.failed_update.expect("failedUpdate");
    assert_eq!(f.reason, FailureReason::CheckFailed);
    assert_eq!(f.batch, 1);
    assert!(f.message.contains("check smoke failed: Job svc-"), "{}", f.message);
    assert_eq!(w.jobs_created, vec![check_job_name(NAME, &hash_of("v2"), "smoke", "1")]);
}

#[test]
fn jobs_go_with_their_pruned_revision() {
    let mut inp = healthy("v2", 1);
    inp.revisions.insert(0, rev("v1", 0));
    inp.spec.revision_history_limit = 0;
    let old = hook_job_name(NAME, &hash_of("v1"), PRE_ROLLOUT);
    let current = hook_job_name(NAME, &hash_of("v2"), PRE_ROLLOUT);
    for (name, version) in [(&old, "v1"), (&current, "v2")] {
        inp.jobs.push(ObservedJob {
            name: name.clone(),
            revision_hash: hash_of(version),
            hook: Some(PRE_ROLLOUT.into()),
            state: JobState::Succeeded { at: None },
        });
    }
    let p = plan(&inp);
    assert!(p.actions.contains(&Action::DeleteJob { name: old }), "{:?}", p.actions);
    assert!(
        !p.actions.contains(&Action::DeleteJob { name: current }),
        "{:?}",
        p.actions
    );
}

#[test]
fn a_job_check_runs_one_job_per_batch_and_one_for_the_bake_window() {
    let mut w = hooked(|s| {
        s.bake_seconds = 20;
        s.checks = vec![job_check("smoke", "smoke:v2")]
    });
    run_until(&mut w, 200, |p| p.status.phase == Some(RolloutPhase::Healthy));
    let h = hash_of("v2");
    let want: Vec<String> = ["1", "2", "3", "bake"]
        .iter()
        .map(|phase| check_job_name(NAME, &h, "smoke", phase))
        .collect();
    assert_eq!(w.jobs_created, want);
}

#[test]
fn batch_one_starts_when_the_pre_rollout_hook_succeeded() {
    for first_rollout in [false, true] {
        let mut w = if first_rollout {
            let mut inp = input(spec("v1", 3), vec![], vec![]);
            inp.spec.hooks.pre_rollout = Some(job("migrate:v1"));
            World::new(inp)
        } else {
            hooked(|s| s.hooks.pre_rollout = Some(job("migrate:v2")))
        };
        // While the hook runs: no BatchStarted, and batch 1 has no start time.
        let p = w.step();
        assert!(has_event(&p, EventReason::HookStarted));
        assert!(!has_event(&p, EventReason::BatchStarted), "{:?}", p.events);
        let batch = p.status.batch.clone().expect("batch");
        assert_eq!((batch.current, batch.started_at), (1, None));
        // The hook's Job succeeds 2 ticks after its creation: batch 1 starts in the plan that
        // sees it, with its pods.
        let mut started = Vec::new();
        for i in 0..100 {
            let p = w.step();
            let jobs_done = w
                .input
                .jobs
                .iter()
                .all(|j| matches!(j.state, JobState::Succeeded { .. }));
            for e in p
                .events
                .iter()
                .filter(|e| e.reason == EventReason::BatchStarted && e.batch == Some(1))
            {
                started.push((i, e.message.clone(), creates(&p).len()));
            }
            if started.is_empty() {
                assert!(creates(&p).is_empty(), "a pod before batch 1 started: {:?}", p.actions);
            } else if !jobs_done {
                panic!("batch 1 started before the hook succeeded");
            }
            if p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty() {
                break;
            }
        }
        assert_eq!(started.len(), 1, "BatchStarted for batch 1 once: {started:?}");
        let (_, message, pods) = &started[0];
        assert!(message.contains("batch 1/"), "{message}");
        assert!(*pods > 0, "the plan that starts batch 1 creates its pods");
    }
}

#[test]
fn a_refused_job_says_which_template_to_fix() {
    let h = hash_of("v2");
    let refused = |object: &str| {
        format!("Job.batch \"{object}\" is invalid: spec.template.spec.containers[0].image: Required value")
    };
    let smoke = job_check("smoke", "smoke:v2");
    let cases = [
        (
            hook_job_name(NAME, &h, PRE_ROLLOUT),
            "the Job of hook preRollout",
            "fix spec.hooks.preRollout.template",
        ),
        (
            hook_job_name(NAME, &h, POST_ROLLOUT),
            "the Job of hook postRollout",
            "fix spec.hooks.postRollout.template",
        ),
        (
            check_job_name(NAME, &h, "smoke", "2"),
            "the Job of check smoke",
            "fix spec.checks[0].job.template",
        ),
        (
            check_job_name(NAME, &h, "smoke", "bake"),
            "the Job of check smoke",
            "fix spec.checks[0].job.template",
        ),
        (
            "svc-0-abc".to_string(),
            "the pods of this spec",
            "fix spec.template or spec.version",
        ),
    ];
    for (object, what, fix) in cases {
        let mut w = hooked(|s| {
            s.hooks.pre_rollout = Some(job("migrate:v2"));
            s.hooks.post_rollout = Some(job("contract:v2"));
            s.checks = vec![smoke.clone()];
        });
        w.input.rejected = Some(refused(&object));
        let p = plan(&w.input);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        let c = condition(&p.status, ConditionType::InvalidSpec);
        assert_eq!(c.status, "True");
        assert!(
            c.message.contains(&format!("the API server refuses {what}: Job.batch")),
            "{}",
            c.message
        );
        assert!(c.message.contains(fix), "{}", c.message);
        let ev = p
            .events
            .iter()
            .find(|e| e.reason == EventReason::InvalidSpec)
            .expect("InvalidSpec Event");
        assert!(ev.message.contains(fix), "{}", ev.message);
    }
}
