//! Argo CD's health of a Rollout, as Argo CD computes it: the shipped
//! `config/argocd/baton.dev/Rollout/health.lua` run by a real Lua 5.1 (Argo CD embeds
//! gopher-lua, a Lua 5.1) on the Rollout as the controller wrote it, captured in each state:
//! healthy, progressing, paused, aborted, rolled back, InvalidSpec.
use baton::api::rollout::{Rollout, RolloutPhase};
use baton::cli::rollout::RolloutCommand;
use serde_json::json;

use crate::helpers::*;
use crate::support::argocd::{argocd_action, argocd_actions, argocd_health};
use crate::support::*;

fn health(r: &Rollout) -> (String, String) {
    argocd_health(
        "baton.dev/Rollout/health.lua",
        &serde_json::to_value(r).expect("a Rollout as JSON"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_health_of_a_rollout_in_every_state() {
    let (env, op, _) = operator_with_v1().await;
    let healthy = wait_phase(&env, "Healthy on v1", RolloutPhase::Healthy).await;
    assert_eq!(health(&healthy).0, "Healthy", "{:?}", health(&healthy));

    // Applied: the status is the previous generation's until the controller looks.
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({});
    let applied = env.apply(&m).await;
    assert!(
        !current_generation(&applied),
        "the apply's answer carries the old status"
    );
    let (status, message) = health(&applied);
    assert_eq!(status, "Progressing");
    assert!(message.contains("observe generation"), "{message}");

    let paused = wait_phase(&env, "paused after batch 1", RolloutPhase::Paused).await;
    assert_eq!(health(&paused).0, "Suspended", "{:?}", health(&paused));

    assert!(
        env.cli(RolloutCommand::Abort { name: NAME.into() }).await == std::process::ExitCode::SUCCESS,
        "abort"
    );
    let aborted = env
        .wait_rollout(NAME, "aborted", LONG, |r| {
            current_generation(r) && cond(r, "Progressing") == ("False".into(), "RolloutAborted".into())
        })
        .await;
    let (status, message) = health(&aborted);
    assert_eq!(status, "Degraded");
    assert!(message.contains("v2"), "names the aborted version: {message}");

    let mut m = manifest(NAME, 3, "v3", "svc:v3-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    env.apply(&m).await;
    let rolled_back = env
        .wait_rollout(NAME, "v3 rolled back", LONG, |r| {
            current_generation(r) && cond(r, "Progressing") == ("False".into(), "RolledBack".into())
        })
        .await;
    let (status, message) = health(&rolled_back);
    assert_eq!(status, "Degraded");
    assert!(message.contains("v3"), "names the failed version: {message}");

    env.merge(
        NAME,
        json!({"spec": {"version": "v4", "pins": [{"instances": ["svc-1"], "version": "v0.9"}],
               "template": {"metadata": {"labels": {"app": NAME}}, "spec": {"containers": [{"name": "app", "image": "svc:v4"}]}}}}),
    )
    .await;
    let invalid = env
        .wait_rollout(NAME, "InvalidSpec", LONG, |r| {
            current_generation(r) && cond(r, "InvalidSpec").0 == "True"
        })
        .await;
    let (status, message) = health(&invalid);
    assert_eq!(status, "Degraded");
    assert!(message.contains("v0.9"), "says what to fix: {message}");
    op.stop().await;
}

fn actions(r: &Rollout) -> Vec<String> {
    let offered = argocd_actions("baton.dev/Rollout", &serde_json::to_value(r).expect("JSON"));
    offered.into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect()
}

/// Run Argo CD action `action` on `r` and write back what it changed, as Argo CD does.
async fn act(env: &Env, r: &Rollout, action: &str) {
    let patch = argocd_action("baton.dev/Rollout", action, &serde_json::to_value(r).expect("JSON"));
    env.merge(NAME, patch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_actions_make_the_controller_act() {
    let (env, op, _) = operator_with_v1().await;
    let healthy = wait_phase(&env, "Healthy on v1", RolloutPhase::Healthy).await;
    assert_eq!(actions(&healthy), ["pause", "restart"]);

    // promote: past the pause after the first batch; promote-full: the rest at once.
    apply_v2_pausing(&env).await;
    let paused = wait_phase(&env, "paused after batch 1", RolloutPhase::Paused).await;
    assert_eq!(
        actions(&paused),
        ["abort", "pause", "promote", "promote-full", "restart"]
    );
    let batch = |r: &Rollout| status(r).batch.map(|b| b.current).unwrap_or(0);
    let first = batch(&paused);
    act(&env, &paused, "promote").await;
    let next = env
        .wait_rollout(NAME, "promoted past batch 1", LONG, |r| {
            current_generation(r) && status(r).phase == Some(RolloutPhase::Paused) && batch(r) > first
        })
        .await;
    act(&env, &next, "promote-full").await;
    let on_v2 = env
        .wait_rollout(NAME, "promoted fully: v2 everywhere", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Healthy)
                && instance_versions(r) == map(&[("v2", 3)])
        })
        .await;

    // restart: a new revision of the same version.
    let before = status(&on_v2).update_revision;
    act(&env, &on_v2, "restart").await;
    let restarting = env
        .wait_rollout(NAME, "restarted: a new revision", LONG, |r| {
            current_generation(r) && status(r).update_revision != before
        })
        .await;
    // (It rolls out in the spec's batches and pauses: promoted fully.)
    act(&env, &restarting, "promote-full").await;
    let restarted = wait_phase(&env, "the restart rolled out", RolloutPhase::Healthy).await;

    // pause, then a new version waits; resume lets it go.
    act(&env, &restarted, "pause").await;
    let paused = env.wait_rollout(NAME, "spec.paused", LONG, |r| r.spec.paused).await;
    assert!(actions(&paused).contains(&"resume".to_string()));
    env.apply(&manifest_v(NAME, 3, "v3")).await;
    let held = wait_phase(&env, "v3 held by the pause", RolloutPhase::Paused).await;
    assert_eq!(
        instance_versions(&held),
        map(&[("v2", 3)]),
        "nothing moved while paused"
    );
    act(&env, &held, "resume").await;
    env.wait_rollout(NAME, "resumed: v3 everywhere", LONG, |r| {
        current_generation(r)
            && instance_versions(r) == map(&[("v3", 3)])
            && status(r).phase == Some(RolloutPhase::Healthy)
    })
    .await;

    // abort, then retry.
    let mut m = manifest_v(NAME, 3, "v4");
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    let paused = wait_phase(&env, "v4 paused after batch 1", RolloutPhase::Paused).await;
    act(&env, &paused, "abort").await;
    let aborted = env
        .wait_rollout(NAME, "aborted: back on v3", LONG, |r| {
            current_generation(r)
                && cond(r, "Progressing") == ("False".into(), "RolloutAborted".into())
                && instance_versions(r) == map(&[("v3", 3)])
        })
        .await;
    assert!(
        actions(&aborted).contains(&"retry".to_string()),
        "{:?}",
        actions(&aborted)
    );
    act(&env, &aborted, "retry").await;
    env.wait_rollout(NAME, "v4 retried", LONG, |r| {
        current_generation(r)
            && status(r).failed_update.is_none()
            && r.spec.version == "v4"
            && instance_versions(r).contains_key("v4")
    })
    .await;
    op.stop().await;
}
