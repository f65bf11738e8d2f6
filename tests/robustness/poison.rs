//! (2) One object the API server accepted but the controller cannot decode poisons nothing.

use serde_json::json;

use crate::controller::{create_raw, raw_condition, raw_rollouts, start, temp_dir, NO_ELECTION};
use crate::support::{manifest_v, wait_for, Env, LONG, NS};

/// A Rollout with `replicas: 2147483648` (stored: kube-apiserver does not enforce `format:
/// int32` on custom resources) next to a good one. Before, no Rollout was ever reconciled by a
/// controller that started while it existed, and /readyz stayed 503. Now the good one rolls
/// out, the bad one gets InvalidSpec and a Warning Event naming the problem, a metric counts it
/// and a log line names it — through a restart — and once fixed it is reconciled too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_rollout_is_skipped_and_reported_and_poisons_nothing() {
    let env = Env::start().await;
    let dir = temp_dir("poison");
    env.apply(&manifest_v("good", 2, "v1")).await;
    let mut bad = manifest_v("bad", 1, "v1");
    bad["spec"]["replicas"] = json!(2_147_483_648_i64);
    let raw = raw_rollouts(&env.client);
    create_raw(&raw, bad)
        .await
        .expect("the API server stores replicas 2147483648");

    let mut c = start(&env.sim, dir.path(), "baton-poison-a", &NO_ELECTION).await;
    c.wait_ready().await;
    env.wait_healthy("good", "v1", 2).await;
    let reported = wait_for("InvalidSpec on the undecodable Rollout", LONG, || async {
        let o = raw.get("bad").await.ok()?;
        raw_condition(&o, "InvalidSpec").filter(|c| c.0 == "True")
    })
    .await;
    assert!(reported.2.contains("expected i32"), "{reported:?}");
    assert_eq!(reported.3, Some(1), "for its generation");
    let ev = env
        .wait_event("bad", "an InvalidSpec Warning", |e| {
            e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning")
        })
        .await;
    assert!(ev.note.as_deref().unwrap_or("").contains("2147483648"), "{:?}", ev.note);
    assert_eq!(c.metric("baton_undecodable_objects{kind=\"Rollout\"}").await, Some(1.0));
    let lines = c.log_lines("skipping Rollout default/bad");
    assert!(!lines.is_empty(), "no log line names the object");
    assert_eq!(lines[0]["level"], "WARN");

    // Still reconciling, and again after a restart.
    env.apply(&manifest_v("good", 2, "v2")).await;
    env.wait_healthy("good", "v2", 2).await;
    c.stop().await;
    let mut c = start(&env.sim, dir.path(), "baton-poison-b", &NO_ELECTION).await;
    c.wait_ready().await;
    env.apply(&manifest_v("good", 2, "v3")).await;
    env.wait_healthy("good", "v3", 2).await;
    let invalid_events = env
        .events("bad")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("InvalidSpec"))
        .count();
    assert_eq!(invalid_events, 1, "the restart reported nothing new");

    // Fixed: decoded and reconciled.
    let fix = json!({"spec": {"replicas": 1}});
    raw.patch("bad", &Default::default(), &kube::api::Patch::Merge(&fix))
        .await
        .expect("fixing replicas");
    env.wait_healthy("bad", "v1", 1).await;
    wait_for("baton_undecodable_objects 0", LONG, || async {
        (c.metric("baton_undecodable_objects{kind=\"Rollout\"}").await == Some(0.0)).then_some(())
    })
    .await;
    c.stop().await;
    let _ = NS;
}
