//! `promote` and `promote --full` end a wait for promotion; promote while `spec.paused` is
//! refused (or, when it lands anyway, kept for the resume); promote, abort and retry with
//! nothing to act on say so.

use baton::api::rollout::{annotations, RolloutPhase};
use kube::ResourceExt;
use serde_json::json;

use super::{cli, cli_exits, v1_deployed, NAME};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_ends_the_wait_for_promotion() {
    let (env, op) = v1_deployed().await;
    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["batches"] = json!([1, "100%"]);
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    env.wait_rollout(NAME, "waiting for promotion", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    let o = cli_exits(&env, &["status", NAME, "--watch=false"], 3).await;
    assert!(o.stdout.contains("waiting for promotion"), "{}", o);

    let o = cli_exits(&env, &["promote", NAME], 0).await;
    assert_eq!(o.stdout.trim(), "rollout.baton.dev/svc promoted");
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert!(r.annotations().contains_key(annotations::PROMOTE));
    cli_exits(&env, &["status", NAME, "--timeout", "30s"], 0).await;
    op.stop().await;
}

/// Applies v2 with a pause waiting for promotion after each batch, and waits for the first.
async fn v2_waiting_after_batch_1(env: &Env) {
    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({"manual": true});
    env.apply(&m).await;
    env.wait_rollout(NAME, "waiting for promotion after batch 1", LONG, |r| {
        current_generation(r)
            && status(r).phase == Some(RolloutPhase::Paused)
            && instance_versions(r) == [("v1".to_string(), 2), ("v2".to_string(), 1)].into()
    })
    .await;
}

/// Promote while `spec.paused` is refused with a message and exit 1, and a
/// promotion that lands while paused anyway is acted on at resume, never lost. Promote, abort
/// and retry with nothing to act on say so and exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_while_paused_is_refused_or_kept_never_lost() {
    let (env, op) = v1_deployed().await;
    v2_waiting_after_batch_1(&env).await;
    cli_exits(&env, &["pause", NAME], 0).await;
    env.wait_rollout(NAME, "spec.paused observed", LONG, |r| {
        current_generation(r) && cond(r, "Progressing") == ("Unknown".into(), "RolloutPaused".into())
    })
    .await;
    let o = cli_exits(&env, &["promote", NAME], 1).await;
    assert_eq!(
        o.stderr.trim(),
        "error: rollout svc is paused (spec.paused: true): nothing moves until `baton rollout resume svc`; resume it, then promote"
    );
    assert!(!env.get(NAME).await.annotations().contains_key(annotations::PROMOTE));

    // The race the CLI cannot close: a promotion written while paused. It arrives with a spec
    // change, so once that generation is observed the controller has seen the promotion too.
    let r = env
        .merge(
            NAME,
            json!({"metadata": {"annotations": {annotations::PROMOTE: "race-1"}}, "spec": {"revisionHistoryLimit": 9}}),
        )
        .await;
    let generation = r.metadata.generation;
    let r = env
        .wait_rollout(NAME, "the promotion seen while paused", LONG, |r| {
            status(r).observed_generation == generation
        })
        .await;
    assert_eq!(status(&r).phase, Some(RolloutPhase::Paused));
    assert_ne!(
        status(&r).actions.and_then(|a| a.promote).as_deref(),
        Some("race-1"),
        "recorded while paused: it would be lost"
    );
    cli_exits(&env, &["resume", NAME], 0).await;
    let r = env
        .wait_rollout(NAME, "promoted past batch 1 on resume", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Paused)
                && status(r).batch.as_ref().is_some_and(|b| b.current == 2)
                && instance_versions(r) == [("v1".to_string(), 1), ("v2".to_string(), 2)].into()
        })
        .await;
    assert_eq!(status(&r).actions.and_then(|a| a.promote).as_deref(), Some("race-1"));

    cli_exits(&env, &["promote", NAME], 0).await;
    env.wait_healthy(NAME, "v2", 3).await;

    // Nothing in progress: each request says so and exits 1, writing nothing.
    let before = env.get(NAME).await.annotations().clone();
    for (args, message) in [
        (vec!["promote", NAME], "error: rollout svc has no rollout in progress to promote: it is Healthy (3 of 3 instances available on v2)"),
        (vec!["promote", "--full", NAME], "error: rollout svc has no rollout in progress to promote: it is Healthy (3 of 3 instances available on v2)"),
        (vec!["abort", NAME], "error: rollout svc has no rollout in progress to abort: it is Healthy (3 of 3 instances available on v2)"),
        (vec!["retry", NAME], "error: rollout svc has no failed rollout to retry: it is Healthy (3 of 3 instances available on v2)"),
    ] {
        let o = cli(&env, &args).await;
        assert_eq!(o.code, 1, "{args:?}: {}", o);
        assert_eq!(o.stderr.trim(), message, "{args:?}");
    }
    assert_eq!(env.get(NAME).await.annotations(), &before);
    op.stop().await;
}

/// `promote --full` skips the remaining batches and pauses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_full_skips_the_remaining_batches_and_pauses() {
    let (env, op) = v1_deployed().await;
    v2_waiting_after_batch_1(&env).await;
    let recorder = StatusRecorder::start(&env, NAME);
    let o = cli_exits(&env, &["promote", "--full", NAME], 0).await;
    assert_eq!(
        o.stdout.trim(),
        "rollout.baton.dev/svc promoted fully: the remaining batches and pauses are skipped"
    );
    env.wait_healthy(NAME, "v2", 3).await;
    let after: Vec<_> = recorder
        .take()
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.actions.as_ref().is_some_and(|a| a.promote_full.is_some()))
        .collect();
    assert!(!after.is_empty());
    for s in &after {
        assert_ne!(s.phase, Some(RolloutPhase::Paused), "paused again: {s:#?}");
        assert_eq!(s.batch.as_ref().map(|b| b.current), Some(3), "{s:#?}");
    }
    env.wait_event(NAME, "Promoted (full)", |e| {
        e.reason.as_deref() == Some("Promoted") && e.note.as_deref().unwrap_or("").contains("fully promoted")
    })
    .await;
    op.stop().await;
}
