//! What a user and a CI gate read, with real kubectl. After an automatic rollback
//! nothing says Healthy or Ready about the failed version; `kubectl wait --for=condition=Ready`
//! times out for a failed version and returns for a good one, also right after a spec change;
//! a merge patch asks for a manual pause; times are kept below the second; events are not
//! repeated.

use std::collections::BTreeMap;

use baton::api::rollout::RolloutPhase;
use baton::cli::rollout::RolloutCommand;
use serde_json::json;

use crate::helpers::*;
use crate::support::kubectl::{cell, finish};
use crate::support::*;

/// (1) `kubectl get rollout` after an automatic rollback: VERSION is the version that serves,
/// PHASE is RolledBack; `-o wide` adds the spec's target and the Ready gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_after_a_rollback_shows_the_serving_version_and_rolled_back() {
    let (env, op, _) = operator_with_v1().await;
    let k = env.kubectl();
    let out = k.ok(&["get", "rollout", NAME]).await;
    assert_eq!(cell(&out, NAME, "VERSION").as_deref(), Some("v1"), "{out}");
    assert_eq!(cell(&out, NAME, "PHASE").as_deref(), Some("Healthy"), "{out}");

    let mut m = env.manifest(NAME, 3, "v2", "svc:v2-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    k.ok(&["apply", "-f", &k.file("v2.json", &m)]).await;
    wait_phase(&env, "RolledBack", RolloutPhase::RolledBack).await;
    let out = k.ok(&["get", "rollout", NAME]).await;
    let header = out.lines().next().unwrap_or_default().to_string();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        crate::support::ROLLOUT_COLUMNS,
        "{out}"
    );
    assert_eq!(cell(&out, NAME, "VERSION").as_deref(), Some("v1"), "{out}");
    assert_eq!(cell(&out, NAME, "PHASE").as_deref(), Some("RolledBack"), "{out}");
    assert_eq!(cell(&out, NAME, "AVAILABLE").as_deref(), Some("3"), "{out}");
    assert_eq!(cell(&out, NAME, "UP-TO-DATE").as_deref(), Some("0"), "{out}");
    assert!(!out.contains("Healthy") && !out.contains("v2"), "{out}");
    let wide = k.ok(&["get", "rollout", NAME, "-o", "wide"]).await;
    assert_eq!(cell(&wide, NAME, "VERSION").as_deref(), Some("v1"), "{wide}");
    assert_eq!(cell(&wide, NAME, "TARGET").as_deref(), Some("v2"), "{wide}");
    assert_eq!(cell(&wide, NAME, "READY").as_deref(), Some("False"), "{wide}");
    op.stop().await;
}

/// (2) The CI gate: `kubectl apply && kubectl wait --for=condition=Ready` fails for a
/// crash-looping version (the rollout is rolled back meanwhile) and succeeds for a good one,
/// returning only once the good version is out everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_ready_times_out_for_a_failed_version_and_returns_for_a_good_one() {
    let (env, op, k) = with_operator().await;
    let gate = "kubectl wait --for=condition=Ready rollout/svc";

    let v1 = k.file("v1.json", &env.manifest_v(NAME, 3, "v1"));
    let run = k.sh(&format!("kubectl apply -f {v1} && {gate} --timeout=60s")).await;
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("rollout.baton.dev/svc condition met"), "{run}");
    assert!(healthy_on(&env.get(NAME).await, "v1", 3));

    let mut crash = env.manifest(NAME, 3, "v2", "svc:v2-crash");
    crash["spec"]["progressDeadlineSeconds"] = json!(600);
    let v2 = k.file("v2.json", &crash);
    let run = k.sh(&format!("kubectl apply -f {v2} && {gate} --timeout=8s")).await;
    assert_ne!(run.code, 0, "kubectl wait passed a crash-looping version: {run}");
    assert!(run.stderr.contains("timed out waiting for the condition"), "{run}");
    let r = wait_phase(&env, "v2 rolled back", RolloutPhase::RolledBack).await;
    assert_eq!(cond(&r, "Ready"), ("False".into(), "RolledBack".into()));
    // Waiting longer does not change the answer: the failed version never becomes Ready.
    let run = k
        .run(&["wait", "--for=condition=Ready", "rollout/svc", "--timeout=2s"])
        .await;
    assert_ne!(run.code, 0, "{run}");

    let v3 = k.file("v3.json", &env.manifest_v(NAME, 3, "v3"));
    let run = k.sh(&format!("kubectl apply -f {v3} && {gate} --timeout=60s")).await;
    assert_eq!(run.code, 0, "{run}");
    // When the gate opened, v3 was out on every instance, at the current generation.
    let r = env.get(NAME).await;
    assert!(healthy_on(&r, "v3", 3), "{}", describe(Some(&r)));
    assert_eq!(status(&r).version.as_deref(), Some("v3"));
    op.stop().await;
}

/// (2) Right after `kubectl apply`, before the controller has seen the new generation, the
/// status still says Ready=True about the previous one. `kubectl wait --for=condition=Ready`
/// (kubectl ≥ 1.21) compares the condition's observedGeneration with metadata.generation and
/// keeps waiting; a jsonpath wait on the same field does not, which is why the docs recommend
/// the condition form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_right_after_a_spec_change_waits_for_the_new_generation() {
    let (env, op, _) = operator_with_v1().await;
    let k = env.kubectl();
    k.ok(&["wait", "--for=condition=Ready", "rollout/svc", "--timeout=30s"])
        .await;
    // No controller: the apply below stays unobserved for as long as the test wants.
    op.stop().await;
    k.ok(&["apply", "-f", &k.file("v2.json", &env.manifest_v(NAME, 3, "v2"))])
        .await;
    let r = env.get(NAME).await;
    assert_eq!(r.metadata.generation, Some(2));
    let ready = condition(&r, "Ready").expect("Ready condition").clone();
    assert_eq!(
        (ready.status.as_str(), ready.observed_generation),
        ("True", Some(1)),
        "the stale Ready=True the gate must not trust"
    );
    let run = k
        .run(&["wait", "--for=condition=Ready", "rollout/svc", "--timeout=3s"])
        .await;
    assert_ne!(
        run.code, 0,
        "kubectl wait trusted the previous generation's Ready: {run}"
    );
    assert!(run.stderr.contains("timed out"), "{run}");
    let jsonpath = k
        .run(&[
            "wait",
            "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].status}=True",
            "rollout/svc",
            "--timeout=3s",
        ])
        .await;
    assert_eq!(jsonpath.code, 0, "kubectl's jsonpath wait is fooled: {jsonpath}");

    // The controller comes back: the gate opens once v2 is out everywhere.
    let waiter = k.spawn(&["wait", "--for=condition=Ready", "rollout/svc", "--timeout=60s"]);
    let op = env.start_operator().await;
    let run = finish(waiter, LONG * 2).await;
    assert_eq!(run.code, 0, "{run}");
    let r = env.get(NAME).await;
    assert!(healthy_on(&r, "v2", 3), "{}", describe(Some(&r)));
    op.stop().await;
}

/// (7) The merge patch a user writes for "wait for promotion" gets a manual pause, even where a
/// duration was set; today's `pause: {}` keeps working (see `apply_v2_pausing`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_patch_manual_true_turns_a_timed_pause_into_a_wait_for_promotion() {
    let (env, op, k) = with_operator().await;
    let mut m = env.manifest_v(NAME, 3, "v1");
    m["spec"]["strategy"]["pause"] = json!({"duration": "1s"});
    k.ok(&["apply", "-f", &k.file("v1.json", &m)]).await;
    env.wait_healthy(NAME, "v1", 3).await;
    k.merge_patch("rollout", NAME, r#"{"spec":{"strategy":{"pause":{"manual":true}}}}"#)
        .await;
    let pause = k
        .ok(&["get", "rollout", NAME, "-o", "jsonpath={.spec.strategy.pause}"])
        .await;
    let pause: serde_json::Value = serde_json::from_str(&pause).expect("pause as JSON");
    assert_eq!(pause, json!({"duration": "1s", "manual": true}));
    k.merge_patch(
        "rollout",
        NAME,
        r#"{"spec":{"version":"v2","template":{"spec":{"containers":[{"name":"app","image":"svc:v2"}]}}}}"#,
    )
    .await;
    // A 1 s pause would have moved on long before this: the rollout waits for promotion.
    let r = wait_promotion_after_batch_1(&env).await;
    assert!(
        status(&r).message.unwrap_or_default().contains("waiting for promotion"),
        "{}",
        describe(Some(&r))
    );
    assert_ok(
        env.cli(RolloutCommand::Promote {
            name: NAME.into(),
            full: true,
        })
        .await,
        "promote --full",
    );
    env.wait_healthy(NAME, "v2", 3).await;
    op.stop().await;
}

/// (4) Batch and pause start times are stored to the microsecond (a deadline measured from a
/// whole second could fire up to a second early).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_times_are_stored_to_the_microsecond() {
    let (env, op, _) = operator_with_v1().await;
    let k = env.kubectl();
    apply_v2_pausing(&env).await;
    wait_phase(&env, "paused after batch 1", RolloutPhase::Paused).await;
    for field in ["startedAt", "pauseStartedAt"] {
        let t = k
            .ok(&[
                "get",
                "rollout",
                NAME,
                "-o",
                &format!("jsonpath={{.status.batch.{field}}}"),
            ])
            .await;
        let fraction = t
            .strip_suffix('Z')
            .and_then(|t| t.rsplit_once('.'))
            .map(|(_, f)| f.to_string());
        assert_eq!(fraction.map(|f| f.len()), Some(6), "{field} = {t:?}");
    }
    op.stop().await;
}

/// (8) Events: one per batch start (none repeated), a first phase that names no previous one,
/// and events for pin, unpin and restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_pin_unpin_restart_and_no_repeated_batch_start() {
    let (env, op, _) = operator_with_v1().await;
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    env.wait_healthy(NAME, "v2", 3).await;
    env.merge(
        NAME,
        json!({"spec": {"pins": [{"instances": ["svc-1"], "version": "v1"}]}}),
    )
    .await;
    env.wait_event(NAME, "Pinned", |e| {
        e.reason.as_deref() == Some("Pinned") && e.note.as_deref() == Some("svc-1 pinned to v1 (spec.pins)")
    })
    .await;
    env.merge(NAME, json!({"spec": {"pins": null}})).await;
    env.wait_event(NAME, "Unpinned", |e| {
        e.reason.as_deref() == Some("Unpinned")
            && e.note.as_deref() == Some("svc-1 unpinned: back to v2 with the other instances")
    })
    .await;
    env.wait_healthy(NAME, "v2", 3).await;
    assert_ok(env.cli(RolloutCommand::Restart { name: NAME.into() }).await, "restart");
    env.wait_event(NAME, "Restarted", |e| {
        e.reason.as_deref() == Some("Restarted")
            && e.note
                .as_deref()
                .unwrap_or("")
                .contains("every instance moves to revision 3 of v2")
    })
    .await;
    env.wait_rollout(NAME, "restarted", LONG, |r| {
        healthy_on(r, "v2", 3) && status(r).current_revision == status(r).update_revision
    })
    .await;

    let events = env.events(NAME).await;
    let mut starts: BTreeMap<String, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e.reason.as_deref() == Some("BatchStarted")) {
        *starts.entry(e.note.clone().unwrap_or_default()).or_default() += 1;
    }
    // v1 (one batch), v2 and the restart (three batches each).
    assert_eq!(starts.values().sum::<usize>(), 7, "{}", describe_events(&events));
    assert!(starts.values().all(|n| *n == 1), "repeated: {starts:#?}");
    let notes: Vec<&str> = events.iter().filter_map(|e| e.note.as_deref()).collect();
    assert!(!notes.iter().any(|n| n.starts_with("phase -")), "{notes:#?}");
    // The first phase is said by the first batch start.
    assert!(
        notes.iter().any(|n| n.ends_with("(phase set to Progressing)")),
        "{notes:#?}"
    );
    for reason in ["Restarted", "Pinned", "Unpinned"] {
        let n = events.iter().filter(|e| e.reason.as_deref() == Some(reason)).count();
        assert_eq!(n, 1, "{reason}: {}", describe_events(&events));
    }
    op.stop().await;
}
