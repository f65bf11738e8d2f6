//! `status`: its exit codes (Healthy 0, rolled back 1, timed out 2, in progress 3), its header,
//! instances and versions, and `--watch` on a terminal (redrawn in place) and in a log (a line
//! per change).

use baton::api::rollout::RolloutPhase;
use serde_json::json;

use super::{cli, cli_exits, v1_deployed, NAME};
use crate::cli_support::{run, BATON};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_0_when_healthy_and_shows_instances() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&env.manifest_v(NAME, 3, "v1")).await;
    // Started before the rollout is done: it follows the watch until Healthy.
    let o = cli_exits(&env, &["status", NAME, "--timeout", "30s"], 0).await;
    let text = &o.stdout;
    assert!(text.contains("rollout svc — Healthy — version v1"), "{text}");
    for i in 0..3 {
        assert!(text.contains(&format!("svc-{i}")), "{text}");
    }
    assert!(
        text.contains("INSTANCE") && text.contains("VERSION") && text.contains("READY"),
        "{text}"
    );
    assert!(text.contains("3/3 updated"), "{text}");
    assert!(text.contains("versions: v1: 3"), "{text}");
    // Once Healthy it answers at once, also without --watch.
    cli_exits(&env, &["status", NAME, "--watch=false"], 0).await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_1_after_an_automatic_rollback() {
    let (env, op) = v1_deployed().await;
    let mut m = env.manifest(NAME, 3, "v2", "svc:v2-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    env.apply(&m).await;
    let o = cli_exits(&env, &["status", NAME, "--timeout", "30s"], 1).await;
    let text = &o.stdout;
    assert!(text.contains("rolled back to v1") && text.contains("v2"), "{text}");
    let r = env.get(NAME).await;
    assert_eq!(cond(&r, "Progressing"), ("False".into(), "RolledBack".into()));
    // The header of the final view agrees with exit 1: it names what serves and what failed.
    let o = cli_exits(&env, &["status", NAME, "--watch=false"], 1).await;
    let header = o.stdout.lines().next().unwrap_or_default().to_string();
    assert_eq!(
        header,
        "rollout svc — RolledBack — serving v1; v2 failed (ProgressDeadlineExceeded) and was rolled back"
    );
    assert!(!o.stdout.contains("Healthy"), "{}", o);
    assert!(o.stdout.contains("(failed 1, pending 0, rolled back 2)"), "{}", o);

    // A spec the controller has not seen yet is not judged by the previous generation's status.
    op.stop().await;
    env.apply(&env.manifest_v(NAME, 3, "v3")).await;
    let o = cli_exits(&env, &["status", NAME, "--watch=false"], 3).await;
    assert_eq!(
        o.stdout.lines().next().unwrap_or_default(),
        "rollout svc — Pending — v3: generation 3 not observed by the controller yet",
        "{}",
        o
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_2_on_timeout_while_paused() {
    let (env, op) = v1_deployed().await;
    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["paused"] = json!(true);
    env.apply(&m).await;
    env.wait_rollout(NAME, "Paused", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    let o = cli_exits(&env, &["status", NAME, "--timeout", "1s"], 2).await;
    assert!(o.stdout.contains("Paused"), "{}", o);
    assert!(o.stderr.contains("timed out waiting for rollout svc"), "{}", o);
    // Without --watch a rollout in progress exits 3.
    cli_exits(&env, &["status", NAME, "--watch=false"], 3).await;
    op.stop().await;
}

/// Applies v2 with short timed pauses after each batch, so the status changes several times.
async fn v2_in_batches(env: &Env) {
    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({"duration": "1s"});
    env.apply(&m).await;
}

/// Off a terminal (CI logs): the first view, one line per change, the final view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_prints_a_line_per_change_off_a_terminal() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&env.manifest_v(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    v2_in_batches(&env).await;
    let r = cli(&env, &["status", NAME, "--timeout", "60s"]).await;
    assert_eq!(r.code, 0, "{r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("rollout svc — "), "{}", r.stdout);
    let updates: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("rollout svc — ") && l.contains(" · "))
        .collect();
    assert!(updates.len() >= 3, "one line per change:\n{}", r.stdout);
    for pair in updates.windows(2) {
        assert_ne!(pair[0], pair[1], "a line repeats:\n{}", r.stdout);
    }
    assert!(
        updates.iter().any(|l| l.contains("batch 2/3")),
        "the batches show:\n{}",
        r.stdout
    );
    // No escape sequences in a log, and the final view closes it.
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
    let last_view = r.stdout.rsplit("rollout svc — ").next().unwrap_or_default();
    assert!(last_view.starts_with("Healthy — version v2\n"), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with("versions: v2: 3"), "{}", r.stdout);
    op.stop().await;
}

/// On a terminal (a pty from `script`): the view is redrawn in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_redraws_in_place_on_a_terminal() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&env.manifest_v(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    v2_in_batches(&env).await;
    let command = format!("stty cols 200 rows 50; {BATON} rollout status {NAME} --timeout 60s");
    let kc = env.admin_kubeconfig().to_string_lossy().into_owned();
    let r = run(
        "script",
        &["-qfec", &command, "/dev/null"],
        &[("KUBECONFIG", &kc), ("TERM", "xterm")],
    )
    .await;
    assert_eq!(r.code, 0, "{r}");
    // indicatif moves the cursor up over the previous view and clears it before drawing.
    let redraws = r.stdout.matches("\x1b[1A").count() + r.stdout.matches("\x1b[2K").count();
    assert!(redraws > 0, "no redraw in place: {:?}", r.stdout);
    assert!(!r.stdout.contains(" · "), "no log lines on a terminal: {:?}", r.stdout);
    assert!(
        r.stdout.contains("rollout svc — Healthy — version v2"),
        "{:?}",
        r.stdout
    );
    op.stop().await;
}

/// `-w` is `--watch`, before or after the name, as `kubectl rollout status -w` and Argo
/// Rollouts' `kubectl argo rollouts status -w` take it: it follows the rollout to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_takes_w_for_watch() {
    let (env, op) = v1_deployed().await;
    v2_in_batches(&env).await;
    let o = cli_exits(&env, &["status", "-w", NAME, "--timeout", "60s"], 0).await;
    let last_view = o.stdout.rsplit("rollout svc — ").next().unwrap_or_default();
    assert!(last_view.starts_with("Healthy — version v2\n"), "{}", o.stdout);
    for args in [["status", NAME, "-w"], ["status", NAME, "-w=false"]] {
        let o = cli_exits(&env, &args, 0).await;
        assert!(
            o.stdout.starts_with("rollout svc — Healthy — version v2\n"),
            "{args:?}: {o}"
        );
    }
    op.stop().await;
}

/// `kubectl rollout status` knows Deployments, DaemonSets and StatefulSets only: for a Rollout
/// it fails with its own error, which docs/rollouts.md shows beside `kubectl wait` (and the
/// README says so where it names the gate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_fails_as_the_docs_say() {
    let env = Env::start().await;
    let k = env.kubectl();
    let [shown]: [docs::Shown; 1] = docs::shown("docs/rollouts.md", "kubectl-rollout-status")
        .try_into()
        .expect("one command");
    let words = docs::words(&shown.command);
    assert_eq!(words[..3], ["kubectl", "rollout", "status"], "{shown:?}");
    let name = words[3].strip_prefix("rollout/").expect("rollout/NAME");
    env.apply(&env.manifest_v(name, 1, "v1")).await;
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let r = k.run(&args).await;
    assert_eq!((r.code, r.stdout.as_str()), (1, ""), "{r}");
    assert_eq!(r.stderr, shown.output, "docs/rollouts.md shows:\n{}", shown.output);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let gate = readme
        .split("**The deploy gate is `kubectl wait")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .expect("README names the deploy gate");
    assert!(gate.contains("`kubectl rollout status`"), "{gate}");
}
