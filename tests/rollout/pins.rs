//! (2) Single-instance rollback and (3) batch rollback, by pins.

use std::collections::BTreeMap;

use baton::api::rollout::{labels, RolloutPhase};
use kube::ResourceExt;
use serde_json::json;

use crate::helpers::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_one_instance_to_the_old_version_then_unpin() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let v1_pods = deployed(&env, 3, "v1").await;
    let v1_hash = pod_label(&v1_pods[0], labels::REVISION_HASH).to_string();
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    env.wait_healthy(NAME, "v2", 3).await;

    env.merge(
        NAME,
        json!({"spec": {"pins": [{"instances": ["svc-2"], "version": "v1"}]}}),
    )
    .await;
    let r = env
        .wait_rollout(NAME, "svc-2 pinned to v1, Healthy", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Healthy)
                && instance_versions(r) == map(&[("v1", 1), ("v2", 2)])
        })
        .await;
    let st = status(&r);
    assert_eq!(st.versions, map(&[("v1", 1), ("v2", 2)]), "status.versions");
    let i2 = &st.instances[2];
    assert!(
        i2.pinned && i2.ready && i2.version.as_deref() == Some("v1") && i2.revision == 1,
        "{i2:?}"
    );
    assert!(st.instances[..2]
        .iter()
        .all(|i| !i.pinned && i.version.as_deref() == Some("v2")));
    assert_eq!(
        st.progress.as_ref().unwrap().total,
        2,
        "pinned instances are outside the progress counts"
    );
    let pods = env
        .wait_pods(NAME, "3 pods, slot 2 on v1", |p| {
            p.len() == 3
                && versions_by_slot(p)
                    == BTreeMap::from([(0, vec!["v2".into()]), (1, vec!["v2".into()]), (2, vec!["v1".into()])])
        })
        .await;
    let p2 = pods.iter().find(|p| pod_slot(p) == 2).unwrap();
    assert_eq!(pod_version(p2), "v1");
    assert_eq!(pod_label(p2, labels::REVISION_HASH), v1_hash);
    assert_eq!(p2.name_any(), format!("svc-2-{v1_hash}"));

    // Unpin: the instance returns to the spec's version.
    env.merge(NAME, json!({"spec": {"pins": null}})).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert!(status(&r).instances.iter().all(|i| !i.pinned));
    assert_eq!(status(&r).progress.as_ref().unwrap().total, 3);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_two_instances_batch_rollback() {
    let (env, op, _) = operator_with_v1().await;
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    env.wait_healthy(NAME, "v2", 3).await;
    let rec = PodRecorder::start(&env, NAME).await;

    env.merge(
        NAME,
        json!({"spec": {"pins": [{"instances": ["svc-0", "svc-1"], "version": "v1"}]}}),
    )
    .await;
    let r = env
        .wait_rollout(NAME, "svc-0, svc-1 pinned to v1", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Healthy)
                && instance_versions(r) == map(&[("v1", 2), ("v2", 1)])
        })
        .await;
    let st = status(&r);
    assert!(st.instances[0].pinned && st.instances[1].pinned && !st.instances[2].pinned);
    assert_eq!(st.instances[0].version.as_deref(), Some("v1"));
    assert_eq!(st.instances[1].version.as_deref(), Some("v1"));
    assert_eq!(st.instances[2].version.as_deref(), Some("v2"));
    assert_eq!(cond(&r, "Available").0, "True");
    env.wait_pods(NAME, "slots 0,1 on v1 and 2 on v2", |p| {
        p.len() == 3
            && versions_by_slot(p)
                == BTreeMap::from([(0, vec!["v1".into()]), (1, vec!["v1".into()]), (2, vec!["v2".into()])])
    })
    .await;
    let h = rec.take();
    assert!(
        h.max_live_total <= 4,
        "pins respect maxSurge: saw {} live pods",
        h.max_live_total
    );

    env.merge(NAME, json!({"spec": {"pins": []}})).await;
    env.wait_healthy(NAME, "v2", 3).await;
    op.stop().await;
}
