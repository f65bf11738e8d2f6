//! Argo CD's health of a Rollout and its actions, as Argo CD computes them: the shipped
//! `config/argocd/baton.dev/Rollout/` scripts run by a real Lua 5.1 (Argo CD embeds gopher-lua, a
//! Lua 5.1) on the Rollout as the controller wrote it, in each state: healthy, a new generation
//! not observed yet, a batch under way, paused, aborted, rolled back, stalled past its progress
//! deadline, InvalidSpec; and each action's output written back as Argo CD writes it, acted on by
//! the controller — among them the abort a stalled rollout's status tells the user to run.
//!
//! Each state is also captured as the testdata of `health_test.yaml` and
//! `actions/action_test.yaml` (`crate::support::argocd::testdata`): checked against the fixture,
//! or written with `BATON_UPDATE_ARGOCD_TESTDATA=1`.
use baton::api::rollout::{Rollout, RolloutPhase};
use baton::cli::rollout::RolloutCommand;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::argocd::{action_testdata, argocd_action, argocd_actions, argocd_health, testdata, Checked};
use crate::support::*;

const KIND: &str = "baton.dev/Rollout";

/// What of a captured Rollout varies from run to run, compared by presence only: the revision
/// names (a hash of the pod template, which a restart stamps with its time) and the pod names and
/// history entries that carry them.
const CHECKED: Checked = Checked {
    presence_only: &[
        "status.currentRevision",
        "status.updateRevision",
        "status.failedUpdate.revision",
        "status.instances[*].pod",
        "status.history",
    ],
};

/// `r` as JSON, in namespace `default` whatever namespace the test ran in (the fixtures are
/// captured on either backend).
fn value(r: &Rollout) -> Value {
    let mut v = serde_json::to_value(r).expect("a Rollout as JSON");
    v["metadata"]["namespace"] = json!("default");
    v
}

fn health(r: &Rollout) -> (String, String) {
    argocd_health("baton.dev/Rollout/health.lua", &value(r))
}

/// `r` as fixture `testdata/<state>.yaml` of the health tests.
fn capture(state: &str, r: &Rollout) {
    testdata(&format!("{KIND}/testdata/{state}.yaml"), &value(r), &CHECKED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_health_of_a_rollout_in_every_state() {
    let (env, op, _) = operator_with_v1().await;
    let healthy = wait_phase(&env, "Healthy on v1", RolloutPhase::Healthy).await;
    assert_eq!(health(&healthy).0, "Healthy", "{:?}", health(&healthy));
    capture("healthy", &healthy);

    // Applied: the status is the previous generation's until the controller looks.
    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({});
    let applied = env.apply(&m).await;
    assert!(
        !current_generation(&applied),
        "the apply's answer carries the old status"
    );
    let (status, message) = health(&applied);
    assert_eq!(status, "Progressing");
    assert!(message.contains("observe generation"), "{message}");
    capture("progressing-generation", &applied);

    let paused = wait_phase(&env, "paused after batch 1", RolloutPhase::Paused).await;
    assert_eq!(health(&paused).0, "Suspended", "{:?}", health(&paused));
    capture("paused", &paused);

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
    capture("aborted", &aborted);

    // A batch whose pod never becomes Ready: under way until its progress deadline (30 s), once
    // its pod exists (an updated replica) and is waited on.
    env.apply(&env.manifest(NAME, 3, "v3", "svc:v3-never-ready")).await;
    let under_way = env
        .wait_rollout(NAME, "v3's first batch under way", LONG, |r| {
            current_generation(r)
                && crate::support::status(r).phase == Some(RolloutPhase::Progressing)
                && crate::support::status(r).updated_replicas == 1
        })
        .await;
    let (status, message) = health(&under_way);
    assert_eq!(status, "Progressing", "{message}");
    capture("progressing-batch", &under_way);

    env.merge(NAME, json!({"spec": {"progressDeadlineSeconds": 2}})).await;
    let rolled_back = env
        .wait_rollout(NAME, "v3 rolled back", LONG, |r| {
            current_generation(r) && cond(r, "Progressing") == ("False".into(), "RolledBack".into())
        })
        .await;
    let (status, message) = health(&rolled_back);
    assert_eq!(status, "Degraded");
    assert!(message.contains("v3"), "names the failed version: {message}");
    capture("rolled-back", &rolled_back);

    // Without automatic rollback, a batch past its deadline stops: Stalled.
    let mut m = env.manifest(NAME, 3, "v5", "svc:v5-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    m["spec"]["autoRollback"] = json!(false);
    env.apply(&m).await;
    let stalled = env
        .wait_rollout(NAME, "v5 stalled", LONG, |r| {
            current_generation(r) && cond(r, "Stalled") == ("True".into(), "ProgressDeadlineExceeded".into())
        })
        .await;
    let (status, message) = health(&stalled);
    assert_eq!(status, "Degraded");
    assert!(message.contains("v5"), "names the stalled version: {message}");
    // It says to retry or abort, and Argo CD offers both.
    assert!(message.contains("`baton rollout abort svc`"), "{message}");
    assert_eq!(actions(&stalled), ["abort", "pause", "restart", "retry"]);
    capture("stalled", &stalled);

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
    capture("invalid-spec", &invalid);
    op.stop().await;
}

fn actions(r: &Rollout) -> Vec<String> {
    let offered = argocd_actions(KIND, &value(r));
    offered.into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect()
}

/// Run Argo CD action `action` on `r` and write back what it changed, as Argo CD does; `r` is
/// captured as the action's input fixture `actions/testdata/<state>.yaml`, the action's output on
/// it as `<state>_<action>.yaml`.
async fn act(env: &Env, r: &Rollout, state: &str, action: &str) {
    action_testdata(KIND, action, state, &format!("{state}_{action}"), &value(r), &CHECKED);
    let patch = argocd_action(KIND, action, &value(r));
    env.merge(NAME, patch).await;
}

/// `r` as an input of the discovery tests only.
fn capture_input(state: &str, r: &Rollout) {
    testdata(&format!("{KIND}/actions/testdata/{state}.yaml"), &value(r), &CHECKED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_actions_make_the_controller_act() {
    let (env, op, _) = operator_with_v1().await;
    let healthy = wait_phase(&env, "Healthy on v1", RolloutPhase::Healthy).await;
    assert_eq!(actions(&healthy), ["pause", "restart"]);
    capture_input("healthy", &healthy);

    // promote: past the pause after the first batch; promote-full: the rest at once.
    apply_v2_pausing(&env).await;
    let paused = wait_phase(&env, "paused after batch 1", RolloutPhase::Paused).await;
    assert_eq!(
        actions(&paused),
        ["abort", "pause", "promote", "promote-full", "restart"]
    );
    let batch = |r: &Rollout| status(r).batch.map(|b| b.current).unwrap_or(0);
    let first = batch(&paused);
    act(&env, &paused, "paused", "promote").await;
    let next = env
        .wait_rollout(NAME, "promoted past batch 1", LONG, |r| {
            current_generation(r) && status(r).phase == Some(RolloutPhase::Paused) && batch(r) > first
        })
        .await;
    act(&env, &next, "paused-batch-2", "promote-full").await;
    let on_v2 = env
        .wait_rollout(NAME, "promoted fully: v2 everywhere", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Healthy)
                && instance_versions(r) == map(&[("v2", 3)])
        })
        .await;

    // restart: a new revision of the same version.
    let before = status(&on_v2).update_revision;
    act(&env, &on_v2, "healthy-v2", "restart").await;
    let restarting = env
        .wait_rollout(NAME, "restarted: a new revision", LONG, |r| {
            current_generation(r) && status(r).update_revision != before
        })
        .await;
    // (It rolls out in the spec's batches and pauses: promoted fully.)
    let patch = argocd_action(KIND, "promote-full", &value(&restarting));
    env.merge(NAME, patch).await;
    let restarted = wait_phase(&env, "the restart rolled out", RolloutPhase::Healthy).await;

    // pause, then a new version waits; resume lets it go.
    act(&env, &restarted, "restarted", "pause").await;
    let paused = env.wait_rollout(NAME, "spec.paused", LONG, |r| r.spec.paused).await;
    assert!(actions(&paused).contains(&"resume".to_string()));
    env.apply(&env.manifest_v(NAME, 3, "v3")).await;
    let held = wait_phase(&env, "v3 held by the pause", RolloutPhase::Paused).await;
    assert_eq!(
        instance_versions(&held),
        map(&[("v2", 3)]),
        "nothing moved while paused"
    );
    assert_eq!(health(&held).0, "Suspended", "{:?}", health(&held));
    capture("suspended-by-spec", &held);
    act(&env, &held, "held", "resume").await;
    env.wait_rollout(NAME, "resumed: v3 everywhere", LONG, |r| {
        current_generation(r)
            && instance_versions(r) == map(&[("v3", 3)])
            && status(r).phase == Some(RolloutPhase::Healthy)
    })
    .await;

    // abort, then retry.
    let mut m = env.manifest_v(NAME, 3, "v4");
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    let paused = wait_phase(&env, "v4 paused after batch 1", RolloutPhase::Paused).await;
    act(&env, &paused, "paused-v4", "abort").await;
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
    act(&env, &aborted, "aborted", "retry").await;
    env.wait_rollout(NAME, "v4 retried", LONG, |r| {
        current_generation(r)
            && status(r).failed_update.is_none()
            && r.spec.version == "v4"
            && instance_versions(r).contains_key("v4")
    })
    .await;

    // Stopped by a failure without automatic rollback: the status says to retry or abort, and
    // Argo CD's abort returns the instances to the last healthy revision (v3).
    let mut m = env.manifest(NAME, 3, "v5", "svc:v5-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    m["spec"]["autoRollback"] = json!(false);
    env.apply(&m).await;
    let stalled = env
        .wait_rollout(NAME, "v5 stalled", LONG, |r| {
            current_generation(r) && cond(r, "Stalled") == ("True".into(), "ProgressDeadlineExceeded".into())
        })
        .await;
    let message = status(&stalled).message.unwrap_or_default();
    assert!(
        message.contains("`baton rollout retry svc`, or `baton rollout abort svc`"),
        "{message}"
    );
    assert_eq!(actions(&stalled), ["abort", "pause", "restart", "retry"]);
    act(&env, &stalled, "stalled", "abort").await;
    env.wait_rollout(NAME, "v5 aborted: back on v3", LONG, |r| {
        current_generation(r)
            && cond(r, "Progressing") == ("False".into(), "RolloutAborted".into())
            && instance_versions(r) == map(&[("v3", 3)])
    })
    .await;
    op.stop().await;
}
