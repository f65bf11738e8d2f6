//! (2) One object the API server accepted but the controller cannot decode poisons nothing.

use serde_json::json;

use super::controller::{
    all_stored, create_raw, create_under_unbounded_schema, listenerset, raw_condition, raw_listenersets, raw_rollouts,
    start, temp_dir, wait_observed, wait_warning, LISTENERSETS_CRD, NO_ELECTION, ROLLOUTS_CRD,
};
use crate::support::{manifest_v, wait_for, Env, LONG};

/// A Rollout with `replicas: 2147483648`, stored under an older CRD without integer bounds
/// (kube-apiserver does not enforce `format: int32` on custom resources), next to a good one.
/// Before, no Rollout was ever reconciled by a controller that started while it existed, and
/// /readyz stayed 503. Now the good one rolls out, the bad one gets InvalidSpec and a Warning
/// Event naming the field and its range, a metric counts it and a log line names it — through
/// a restart — and once fixed it is reconciled too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_rollout_is_skipped_and_reported_and_poisons_nothing() {
    let env = Env::start().await;
    let dir = temp_dir("poison");
    env.apply(&manifest_v("good", 2, "v1")).await;
    let mut bad = manifest_v("bad", 1, "v1");
    bad["spec"]["replicas"] = json!(2_147_483_648_i64);
    let raw = raw_rollouts(&env.client);
    let refused = create_raw(&raw, bad.clone()).await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 422),
        "{refused:?}"
    );
    all_stored(create_under_unbounded_schema(&env.client, ROLLOUTS_CRD, &raw, vec![bad]).await);

    let mut c = start(&env.sim, dir.path(), "baton-poison-a", &NO_ELECTION).await;
    c.wait_ready().await;
    env.wait_healthy("good", "v1", 2).await;
    let reported = wait_for("InvalidSpec on the undecodable Rollout", LONG, || async {
        let o = raw.get("bad").await.ok()?;
        raw_condition(&o, "InvalidSpec").filter(|c| c.0 == "True")
    })
    .await;
    assert!(
        reported.2.contains("spec.replicas is 2147483648, outside 0..10000"),
        "{reported:?}"
    );
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
}

/// A ListenerSet with `maxPerPod: 2147483648` and one with `leaseDurationSeconds: 2147483648`,
/// stored under an older CRD, next to a good one. Before, no ListenerSet was reconciled by a
/// controller that started while they existed. Now the good one is reconciled, each bad one
/// gets InvalidSpec (Ready False, Degraded True) and a Warning Event naming the field, a metric
/// counts them; once fixed they are reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_listenersets_are_skipped_and_reported_and_poison_nothing() {
    let env = Env::start().await;
    let dir = temp_dir("poison-ls");
    let sets = raw_listenersets(&env.client);
    create_raw(&sets, listenerset("good")).await.expect("ListenerSet");
    let mut per_pod = listenerset("bad-per-pod");
    per_pod["spec"]["maxPerPod"] = json!(2_147_483_648_i64);
    let mut lease = listenerset("bad-lease");
    lease["spec"]["leaseDurationSeconds"] = json!(2_147_483_648_i64);
    all_stored(create_under_unbounded_schema(&env.client, LISTENERSETS_CRD, &sets, vec![per_pod, lease]).await);

    let c = start(&env.sim, dir.path(), "baton-poison-ls", &NO_ELECTION).await;
    let mut c = c;
    c.wait_ready().await;
    wait_observed(&sets, &["good".into()], "the good ListenerSet reconciled").await;
    for (name, field) in [
        ("bad-per-pod", "spec.maxPerPod"),
        ("bad-lease", "spec.leaseDurationSeconds"),
    ] {
        let ready = wait_for(&format!("InvalidSpec on {name}"), LONG, || async {
            let o = sets.get(name).await.ok()?;
            raw_condition(&o, "Ready").filter(|c| c.1 == "InvalidSpec")
        })
        .await;
        assert_eq!(ready.0, "False", "{ready:?}");
        assert!(ready.2.contains(&format!("{field} is 2147483648")), "{ready:?}");
        let o = sets.get(name).await.expect("the set");
        assert_eq!(raw_condition(&o, "Degraded").map(|c| c.0), Some("True".into()));
        let note = wait_warning(&env.client, "ListenerSet", name, "InvalidSpec").await;
        assert!(note.contains(&format!("{field} is 2147483648")), "{note}");
    }
    assert_eq!(
        c.metric("baton_undecodable_objects{kind=\"ListenerSet\"}").await,
        Some(2.0)
    );

    // Still reconciling; the fixed ones too.
    let p = json!({"spec": {"leaseDurationSeconds": 20}});
    sets.patch("good", &Default::default(), &kube::api::Patch::Merge(&p))
        .await
        .expect("patching");
    wait_observed(&sets, &["good".into()], "the good ListenerSet reconciled again").await;
    for (name, key) in [("bad-per-pod", "maxPerPod"), ("bad-lease", "leaseDurationSeconds")] {
        let fix = json!({"spec": {key: 2}});
        sets.patch(name, &Default::default(), &kube::api::Patch::Merge(&fix))
            .await
            .expect("fixing");
    }
    wait_observed(
        &sets,
        &["bad-per-pod".into(), "bad-lease".into()],
        "the fixed ListenerSets reconciled",
    )
    .await;
    wait_for("baton_undecodable_objects 0", LONG, || async {
        (c.metric("baton_undecodable_objects{kind=\"ListenerSet\"}").await == Some(0.0)).then_some(())
    })
    .await;
    c.stop().await;
}
