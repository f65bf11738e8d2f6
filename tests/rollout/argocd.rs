//! Argo CD's health of a Rollout, as Argo CD computes it: the shipped
//! `config/argocd/baton.dev/Rollout/health.lua` run by a real Lua 5.1 (Argo CD embeds
//! gopher-lua, a Lua 5.1) on the Rollout as the controller wrote it, captured in each state:
//! healthy, progressing, paused, aborted, rolled back, InvalidSpec.
use baton::api::rollout::{Rollout, RolloutPhase};
use baton::cli::rollout::RolloutCommand;
use serde_json::json;

use crate::helpers::*;
use crate::support::argocd::argocd_health;
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
