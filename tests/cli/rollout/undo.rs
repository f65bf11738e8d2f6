//! `undo` never returns to a failed revision unasked: without `--to-revision` it goes to the
//! last revision that rolled out successfully and says which it passed over and why;
//! `--to-revision` of a failed one needs `--force`. `set image` takes kubectl's `*=IMAGE` and
//! refuses what is not an image reference before writing. `history -o name` names the
//! ControllerRevisions as kubectl does.

use baton::api::rollout::RolloutPhase;
use serde_json::{json, Value};

use super::{cli, cli_exits, fast, NAME};
use crate::support::docs::{same_text, shown};
use crate::support::*;

/// The message of the last deploy record of revision `n` (from `history -o json`), asserting
/// that it failed.
async fn failure_of(env: &Env, n: i64) -> String {
    let r = cli_exits(env, &["history", NAME, "-o", "json"], 0).await;
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let record = doc["deploys"]
        .as_array()
        .and_then(|d| d.iter().rev().find(|d| d["revision"] == n))
        .cloned()
        .unwrap_or_default();
    assert_eq!(record["outcome"], "Failed", "{doc}");
    let message = record["message"].as_str().unwrap_or_default().to_string();
    assert!(!message.is_empty(), "{record}");
    message
}

/// Wait until the rollout of `version` failed (stopped or rolled back) at the current spec.
async fn wait_failed(env: &Env, version: &str) {
    env.wait_rollout(NAME, &format!("{version} failed"), LONG, |r| {
        current_generation(r)
            && r.spec.version == version
            && matches!(status(r).phase, Some(RolloutPhase::RolledBack | RolloutPhase::Degraded))
    })
    .await;
}

/// `baton rollout undo svc` passes over failed revisions, saying so; refuses when none before
/// the current one succeeded; `--to-revision` of a failed revision is refused until `--force`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_passes_over_failed_revisions_and_needs_force_to_return_to_one() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    // Revision 1 never became healthy; revision 2 did.
    env.apply(&fast(&env, "v1", "svc:v1-never-ready")).await;
    wait_failed(&env, "v1").await;
    let v1_failure = failure_of(&env, 1).await;
    cli_exits(&env, &["set", "image", NAME, "app=svc:v2"], 0).await;
    env.wait_healthy(NAME, "v2", 3).await;
    let r = cli_exits(&env, &["undo", NAME], 1).await;
    assert_eq!(
        r.stderr,
        format!(
            "error: rollout svc has no earlier revision that rolled out successfully (revision 1 failed: {v1_failure}); `baton rollout undo svc --to-revision N --force` returns to one anyway\n"
        )
    );

    // Revision 3 failed and was rolled back to 2; revision 4 is healthy.
    cli_exits(
        &env,
        &["set", "image", NAME, "app=svc:v3-never-ready", "--version", "v3"],
        0,
    )
    .await;
    wait_failed(&env, "v3").await;
    let v3_failure = failure_of(&env, 3).await;
    cli_exits(&env, &["set", "image", NAME, "app=svc:v4"], 0).await;
    env.wait_healthy(NAME, "v4", 3).await;

    let generation = env.get(NAME).await.metadata.generation;
    let doc = shown("docs/rollouts.md", "undo");
    let r = cli_exits(&env, &["undo", NAME, "--to-revision", "3"], 1).await;
    assert_eq!(doc[0].command, "baton rollout undo svc --to-revision 3");
    assert!(
        same_text(&r.stderr, &doc[0].output),
        "docs:\n{}\nrun:\n{}",
        doc[0].output,
        r.stderr
    );
    assert_eq!(
        r.stderr,
        format!(
            "error: revision 3 (v3) failed when it last rolled out: {v3_failure}; `baton rollout undo svc --to-revision 3 --force` returns to it anyway\n"
        )
    );
    assert_eq!(env.get(NAME).await.metadata.generation, generation, "nothing written");

    let r = cli_exits(&env, &["undo", NAME], 0).await;
    assert_eq!(
        r.stdout,
        format!("rollout.baton.dev/svc rolled back to revision 2 (v2; revision 3 failed: {v3_failure}, skipped)\n")
    );
    assert_eq!(doc[1].command, "baton rollout undo svc");
    assert!(
        same_text(&r.stdout, &doc[1].output),
        "docs:\n{}\nrun:\n{}",
        doc[1].output,
        r.stdout
    );
    env.wait_healthy(NAME, "v2", 3).await;

    let r = cli_exits(&env, &["undo", NAME, "--to-revision", "3", "--force"], 0).await;
    assert_eq!(r.stdout, "rollout.baton.dev/svc rolled back to revision 3 (v3)\n");
    let rollout = env.get(NAME).await;
    assert_eq!(rollout.spec.version, "v3");
    assert_eq!(
        rollout
            .spec
            .template
            .spec
            .as_ref()
            .map(|s| s.containers[0].image.clone()),
        Some(Some("svc:v3-never-ready".into()))
    );
    op.stop().await;
}

/// The images of the init containers and containers of the Rollout's template.
fn images(r: &baton::api::rollout::Rollout) -> Vec<(String, Option<String>)> {
    let pod = r.spec.template.spec.clone().unwrap_or_default();
    let init = pod.init_containers.clone().unwrap_or_default();
    init.iter()
        .chain(&pod.containers)
        .map(|c| (c.name.clone(), c.image.clone()))
        .collect()
}

/// `set image svc '*=svc:v2'` sets every container and init container; an image that is not a
/// reference (or whose tag is not a label value) is refused with exit 64, nothing written;
/// `history -o name` prints what `kubectl get controllerrevisions -o name` prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_star_refuses_bad_images_and_history_prints_names() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let mut m = fast(&env, "v1", "svc:v1");
    m["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "init", "image": "tools:v1"}]);
    m["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "app", "image": "svc:v1"},
        {"name": "proxy", "image": "proxy:v1"},
    ]);
    env.apply(&m).await;
    env.wait_healthy(NAME, "v1", 3).await;

    let r = cli(&env, &["set", "image", NAME, "*=svc:v2"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "rollout.baton.dev/svc image updated (version v2)\n", ""),
        "{r}"
    );
    let rollout = env.get(NAME).await;
    assert_eq!(rollout.spec.version, "v2");
    let v2 = Some("svc:v2".to_string());
    assert_eq!(
        images(&rollout),
        [
            ("init".into(), v2.clone()),
            ("app".into(), v2.clone()),
            ("proxy".into(), v2)
        ]
    );
    env.wait_healthy(NAME, "v2", 3).await;

    let generation = env.get(NAME).await.metadata.generation;
    for (pair, message) in [
        (
            "app=svc:v8 bad",
            "error: invalid image \"svc:v8 bad\" for container \"app\": invalid reference format: it contains whitespace\n",
        ),
        (
            "app=Svc:v8",
            "error: invalid image \"Svc:v8\" for container \"app\": invalid reference format: repository name must be lowercase\n",
        ),
        (
            "*=svc:v8!",
            "error: invalid image \"svc:v8!\" for container \"*\": invalid reference format: invalid tag \"v8!\" (up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-')\n",
        ),
        (
            "app=svc:v8_",
            "error: version \"v8_\" (the images' tag) is not a valid label value for app.kubernetes.io/version: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit; give one with --version\n",
        ),
    ] {
        let r = cli(&env, &["set", "image", NAME, pair]).await;
        assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (64, "", message), "{pair}");
    }
    assert_eq!(env.get(NAME).await.metadata.generation, generation, "nothing written");

    // kubectl's other formats: the history document, or one ControllerRevision.
    let r = cli_exits(&env, &["history", NAME, "-o", "jsonpath={.revisions[*].version}"], 0).await;
    assert_eq!(r.stdout, "v1 v2", "{r}");
    let r = cli_exits(
        &env,
        &[
            "history",
            NAME,
            "--revision",
            "2",
            "-o",
            "custom-columns=REVISION:.revision",
            "--no-headers",
        ],
        0,
    )
    .await;
    assert_eq!(r.stdout, "2\n", "{r}");

    // -o name: one line per revision, oldest first; the names kubectl gives them.
    let r = cli_exits(&env, &["history", NAME, "-o", "name"], 0).await;
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r}");
    let kubectl = env.kubectl();
    let theirs = kubectl
        .ok(&[
            "get",
            "controllerrevisions",
            "-l",
            "baton.dev/rollout=svc",
            "-o",
            "name",
        ])
        .await;
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    let mut expected: Vec<&str> = theirs.lines().collect();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
    let json = cli_exits(&env, &["history", NAME, "-o", "json"], 0).await;
    let doc: Value = serde_json::from_str(&json.stdout).expect("JSON");
    let names: Vec<String> = doc["revisions"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| format!("controllerrevision.apps/{}", r["name"].as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(lines, names);
    op.stop().await;
}
