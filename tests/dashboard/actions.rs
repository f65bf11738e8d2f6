//! The actions: the CLI's code behind each button, its refusals, and RBAC's 403 in kubectl's
//! words.
use serde_json::{json, Value};

use crate::harness::{self, pausing};
use crate::support::*;

const NAME: &str = "web";

fn message(v: &Value) -> String {
    v["message"]
        .as_str()
        .or(v["error"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Each action does what `baton rollout …` does and answers with what the CLI prints; an
/// action with nothing to act on is refused (409) with the CLI's words; spec changes record
/// the dashboard as who changed it and the command as why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_does_what_the_cli_does() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    env.apply(&pausing(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    let d = harness::start(&env.sim, &[]).await;

    let (code, body) = d.act(NAME, "retry", json!({})).await;
    assert_eq!(code, 409, "{body}");
    assert!(
        message(&body).starts_with("error: rollout web has no failed rollout to retry"),
        "{body}"
    );

    env.apply(&pausing(NAME, 3, "v2")).await;
    env.wait_rollout(NAME, "paused after batch 1", LONG, |r| {
        current_generation(r) && cond(r, "Progressing").1 == "BatchPaused"
    })
    .await;
    let (code, body) = d.act(NAME, "promote", json!({})).await;
    assert_eq!(
        (code, message(&body).as_str()),
        (200, "rollout.baton.dev/web promoted"),
        "{body}"
    );
    env.wait_rollout(NAME, "batch 2 after the promotion", LONG, |r| {
        status(r).batch.is_some_and(|b| b.current >= 2)
    })
    .await;

    let (code, body) = d.act(NAME, "pause", json!({})).await;
    assert_eq!(
        (code, message(&body).as_str()),
        (200, "rollout.baton.dev/web paused"),
        "{body}"
    );
    assert!(env.get(NAME).await.spec.paused);
    let (code, body) = d.act(NAME, "promote-full", json!({})).await;
    assert_eq!(code, 409, "paused: nothing moves until resumed: {body}");
    assert!(message(&body).contains("is paused (spec.paused: true)"), "{body}");
    let (code, body) = d.act(NAME, "resume", json!({})).await;
    assert_eq!(
        (code, message(&body).as_str()),
        (200, "rollout.baton.dev/web resumed"),
        "{body}"
    );
    let (code, body) = d.act(NAME, "promote-full", json!({})).await;
    assert_eq!(code, 200, "{body}");
    env.wait_healthy(NAME, "v2", 3).await;

    let (code, body) = d
        .act(NAME, "pin", json!({"instances": ["web-1"], "version": "v1"}))
        .await;
    assert_eq!(
        (code, message(&body).as_str()),
        (200, "rollout.baton.dev/web pinned web-1 to v1"),
        "{body}"
    );
    env.wait_rollout(NAME, "web-1 back on v1", LONG, |r| {
        status(r)
            .instances
            .iter()
            .any(|i| i.name == "web-1" && i.pinned && i.version.as_deref() == Some("v1") && i.ready)
    })
    .await;
    let (code, body) = d
        .act(NAME, "pin", json!({"instances": ["web-9"], "version": "v0"}))
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        message(&body).contains("has no instance web-9") && message(&body).contains("version v0 is not in the history"),
        "{body}"
    );
    let (code, body) = d.act(NAME, "unpin", json!({"instances": ["web-1"]})).await;
    assert_eq!(
        (code, message(&body).as_str()),
        (200, "rollout.baton.dev/web unpinned web-1"),
        "{body}"
    );
    env.wait_healthy(NAME, "v2", 3).await;

    let (code, body) = d.act(NAME, "undo", json!({"revision": 1})).await;
    assert_eq!(
        (code, message(&body).as_str()),
        (200, "rollout.baton.dev/web rolled back to revision 1 (v1)"),
        "{body}"
    );
    env.wait_healthy(NAME, "v1", 3).await;
    let r = env.get(NAME).await;
    assert_eq!(
        r.annotations().get("kubernetes.io/change-cause").map(String::as_str),
        Some("baton dashboard: rollout undo web --to-revision 1")
    );
    let k = kubectl::Kubectl::new(&env.sim);
    let history = k
        .ok(&["get", "rollout", NAME, "-o", "jsonpath={.status.history[-1].changedBy}"])
        .await;
    assert_eq!(history, "baton-dashboard");

    let before = status(&env.get(NAME).await).update_revision;
    let (code, body) = d.act(NAME, "restart", json!({})).await;
    assert_eq!(
        (code, message(&body).as_str()),
        (200, "rollout.baton.dev/web restarted"),
        "{body}"
    );
    env.wait_rollout(NAME, "the restart's revision paused after batch 1", LONG, |r| {
        current_generation(r) && status(r).update_revision != before && cond(r, "Progressing").1 == "BatchPaused"
    })
    .await;
    let (code, body) = d.act(NAME, "abort", json!({})).await;
    assert_eq!(
        (code, message(&body).as_str()),
        (200, "rollout.baton.dev/web aborted"),
        "{body}"
    );
    env.wait_rollout(NAME, "aborted and rolled back", LONG, |r| {
        current_generation(r) && status(r).failed_update.as_ref().is_some_and(|f| f.rolled_back)
    })
    .await;

    let (code, body) = d.act(NAME, "explode", json!({})).await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = d.act("nope", "promote", json!({})).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(
        message(&body),
        r#"Error from server (NotFound): rollouts.baton.dev "nope" not found"#
    );
}

/// A user who may only view gets the page, and an action refused by the API server shows the
/// same words as kubectl for the same request (403, RBAC); Leases she cannot read are named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_refused_by_rbac_shows_kubectls_error() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    env.apply(&pausing(NAME, 2, "v1")).await;
    env.wait_healthy(NAME, "v1", 2).await;
    env.apply(&pausing(NAME, 2, "v2")).await;
    env.wait_rollout(NAME, "paused after batch 1", LONG, |r| {
        current_generation(r) && cond(r, "Progressing").1 == "BatchPaused"
    })
    .await;
    harness::viewer_jane(&env).await;
    let d = harness::start(&env.sim, &["--as", "jane"]).await;
    let page = d.get("/rollouts/default/web").await;
    assert_eq!(page.code, 200, "jane may view: {}", page.text());
    assert!(page.text().contains(r#"data-phase="Paused""#), "{}", page.text());

    let (code, body) = d.act(NAME, "promote", json!({})).await;
    assert_eq!(code, 403, "{body}");
    let k = kubectl::Kubectl::new(&env.sim);
    let patch = r#"{"metadata":{"annotations":{"baton.dev/promote":"x"}}}"#;
    let kubectl = k
        .run(&["--as", "jane", "patch", "rollout", NAME, "--type", "merge", "-p", patch])
        .await;
    assert_ne!(kubectl.code, 0, "{kubectl}");
    assert_eq!(
        message(&body),
        kubectl.stderr.trim(),
        "the dashboard words it as kubectl does"
    );
    assert!(message(&body).starts_with(
        r#"Error from server (Forbidden): rollouts.baton.dev "web" is forbidden: User "jane" cannot patch resource "rollouts""#
    ), "{body}");
    assert!(env.get(NAME).await.annotations().get("baton.dev/promote").is_none());

    let list = d.get("/").await.text();
    assert!(!list.contains("problem"), "jane can list what the list shows: {list}");
    // `view` has no Leases: the ListenerSet page says so, in kubectl's words.
    let set = json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet",
        "metadata": {"name": "sxt", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": NAME}}, "listeners": [{"id": "a"}]}
    });
    k.ok(&["apply", "-f", &k.file("set.json", &set)]).await;
    let page = wait_for("the ListenerSet page", LONG, || async {
        let r = d.get("/listenersets/default/sxt").await;
        (r.code == 200).then(|| r.text())
    })
    .await;
    assert!(
        page.contains(r#"Error from server (Forbidden): leases.coordination.k8s.io is forbidden: User &quot;jane&quot; cannot list resource &quot;leases&quot;"#),
        "{page}"
    );
}

/// `--read-only`: no buttons, every action refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_action() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    env.apply(&pausing(NAME, 1, "v1")).await;
    env.wait_healthy(NAME, "v1", 1).await;
    let d = harness::start(&env.sim, &["--read-only"]).await;
    let page = d.get("/rollouts/default/web").await.text();
    assert!(!page.contains("data-action"), "{page}");
    assert!(page.contains("read-only"), "{page}");
    let (code, body) = d.act(NAME, "restart", json!({})).await;
    assert_eq!(code, 403, "{body}");
    assert!(message(&body).contains("read-only"), "{body}");
}

use kube::ResourceExt;
