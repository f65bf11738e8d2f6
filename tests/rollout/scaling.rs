//! Scale, repair, superseding specs, spec.paused.

use std::collections::{BTreeMap, BTreeSet};

use baton::api::rollout::RolloutPhase;
use baton::cli::rollout::RolloutCommand;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use crate::helpers::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_and_down_through_the_scale_subresource() {
    let (env, op, _) = operator_with_v1().await;
    let scale = |n: i32| json!({"spec": {"replicas": n}});
    env.rollouts()
        .patch_scale(NAME, &PatchParams::default(), &Patch::Merge(scale(5)))
        .await
        .expect("scale to 5");
    let r = env.wait_healthy(NAME, "v1", 5).await;
    let names: Vec<String> = status(&r).instances.iter().map(|i| i.name.clone()).collect();
    assert_eq!(names, ["svc-0", "svc-1", "svc-2", "svc-3", "svc-4"]);
    let s = env.rollouts().get_scale(NAME).await.expect("get scale");
    assert_eq!(s.spec.as_ref().and_then(|s| s.replicas), Some(5));
    assert_eq!(s.status.as_ref().map(|s| s.replicas), Some(5));
    assert_eq!(
        s.status.as_ref().and_then(|s| s.selector.clone()).as_deref(),
        Some("app=svc")
    );

    let rec = PodRecorder::start(&env, NAME).await;
    let before: BTreeMap<i32, String> = env
        .pods(NAME)
        .await
        .iter()
        .map(|p| (pod_slot(p), p.uid().unwrap()))
        .collect();
    env.rollouts()
        .patch_scale(NAME, &PatchParams::default(), &Patch::Merge(scale(2)))
        .await
        .expect("scale to 2");
    let r = env.wait_healthy(NAME, "v1", 2).await;
    assert_eq!(status(&r).replicas, 2);
    let pods = env.pods(NAME).await;
    let after: BTreeMap<i32, String> = pods.iter().map(|p| (pod_slot(p), p.uid().unwrap())).collect();
    assert_eq!(
        after.keys().copied().collect::<Vec<_>>(),
        [0, 1],
        "the highest ordinals go"
    );
    assert_eq!(after.get(&0), before.get(&0), "slot 0 untouched");
    assert_eq!(after.get(&1), before.get(&1), "slot 1 untouched");
    // All three surplus slots go in one reconcile (their deletes are issued concurrently), so
    // "highest first" is about which slots go, not the order of the DELETE calls.
    let h = rec.take();
    let gone: BTreeSet<i32> = h
        .deletions
        .iter()
        .map(|n| n.split('-').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        gone,
        BTreeSet::from([2, 3, 4]),
        "scale-down removes the highest ordinals: {:?}",
        h.deletions
    );
    assert!(h.creations.is_empty(), "{:?}", h.creations);

    // kubectl-scale-like patch of spec.replicas works too.
    env.merge(NAME, json!({"spec": {"replicas": 3}})).await;
    env.wait_healthy(NAME, "v1", 3).await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_pod_is_recreated() {
    let (env, op, before) = operator_with_v1().await;
    let victim = before.iter().find(|p| pod_slot(p) == 1).unwrap().clone();
    env.pods_api()
        .delete(&victim.name_any(), &DeleteParams::default())
        .await
        .expect("deleting a pod");
    let pods = env
        .wait_pods(NAME, "slot 1 has a new pod", |p| {
            p.len() == 3
                && p.iter()
                    .any(|p| pod_slot(p) == 1 && p.uid() != victim.uid() && p.metadata.deletion_timestamp.is_none())
        })
        .await;
    let r = env.wait_healthy(NAME, "v1", 3).await;
    let new = pods.iter().find(|p| pod_slot(p) == 1).unwrap();
    assert_eq!(new.name_any(), victim.name_any(), "same slot, same revision: same name");
    assert_eq!(status(&r).instances[1].pod.as_deref(), Some(victim.name_any().as_str()));
    // The other slots were not touched.
    let others = |ps: &[Pod]| identities(&ps.iter().filter(|p| pod_slot(p) != 1).cloned().collect::<Vec<_>>());
    assert_eq!(others(&env.pods(NAME).await), others(&before));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_spec_mid_rollout_supersedes_the_old_target() {
    let (env, op, _) = operator_with_v1().await;
    apply_v2_pausing(&env).await;
    let mid = wait_phase(&env, "v2 paused after batch 1", RolloutPhase::Paused).await;
    let v2_rev = status(&mid).update_revision.unwrap();
    let rec = StatusRecorder::start(&env, NAME);
    let applied = env.apply(&env.manifest_v(NAME, 3, "v3")).await;
    let r = env.wait_healthy(NAME, "v3", 3).await;
    let st = status(&r);
    assert_ne!(st.update_revision.as_deref(), Some(v2_rev.as_str()));
    assert_eq!(st.current_revision, st.update_revision);
    assert!(st.instances.iter().all(|i| i.revision == 3), "{:?}", st.instances);
    // The new target started over at batch 1 and went through its batches.
    let mut batches: Vec<i32> = rec
        .take()
        .into_iter()
        .filter(|(g, s)| *g >= applied.metadata.generation && s.update_revision != Some(v2_rev.clone()))
        .filter_map(|(_, s)| s.batch.map(|b| b.current))
        .collect();
    batches.dedup();
    assert_eq!(batches, [1, 2, 3]);
    env.wait_pods(NAME, "no v2 pod left", |p| {
        p.len() == 3 && p.iter().all(|p| pod_version(p) == "v3")
    })
    .await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_paused_stops_progress_until_resumed() {
    let (env, op, before) = operator_with_v1().await;
    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["paused"] = json!(true);
    env.apply(&m).await;
    let r = wait_phase(&env, "phase Paused", RolloutPhase::Paused).await;
    assert_eq!(cond(&r, "Progressing"), ("Unknown".into(), "RolloutPaused".into()));
    assert_eq!(status(&r).versions, map(&[("v1", 3)]));
    assert_eq!(
        identities(&env.pods(NAME).await),
        identities(&before),
        "nothing replaced while paused"
    );

    // A missing pod is still recreated while paused, on the running version.
    let victim = before[0].name_any();
    env.pods_api().delete(&victim, &DeleteParams::default()).await.unwrap();
    let pods = env
        .wait_pods(NAME, "the deleted pod is back", |p| {
            p.len() == 3
                && p.iter().all(|p| p.metadata.deletion_timestamp.is_none())
                && !identities(p).is_superset(&identities(&before))
        })
        .await;
    assert!(pods.iter().all(|p| pod_version(p) == "v1"), "{}", describe_pods(&pods));
    assert_ok(env.cli(RolloutCommand::Resume { name: NAME.into() }).await, "resume");
    env.wait_healthy(NAME, "v2", 3).await;
    assert_event(&env, "Resumed").await;
    op.stop().await;
}

/// `podReplacementPolicy`: with `TerminationComplete` a replacement waits for the old pod to be
/// gone, so pods never exceed `replicas + maxSurge` even counting terminating ones; by default
/// (no listeners: `TerminationStarted`) replacements start while old pods still terminate, and
/// only live pods are bounded by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacement_policy_decides_whether_terminating_pods_take_the_surge() {
    let env = Env::start().await;
    // Pods take 2 s to stop (they ignore SIGTERM and are killed at the end of their 2 s grace
    // period): much longer than one takes to become Ready.
    let slow_to_stop = |version: &str| {
        let mut m = env.manifest(NAME, 3, version, &format!("svc:{version}-ignore-sigterm"));
        m["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(2);
        m
    };
    let op = env.start_operator().await;
    env.apply(&slow_to_stop("v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;

    let rec = PodRecorder::start(&env, NAME).await;
    let mut m = slow_to_stop("v2");
    m["spec"]["strategy"]["podReplacementPolicy"] = json!("TerminationComplete");
    env.apply(&m).await;
    env.wait_healthy(NAME, "v2", 3).await;
    let h = rec.take();
    assert!(h.max_total <= 4, "TerminationComplete: terminating pods count: {h:?}");
    assert_eq!(h.creations.len(), 3, "{h:?}");
    drop(rec);

    env.wait_pods(NAME, "old pods gone", |pods| pods.len() == 3).await;
    let rec = PodRecorder::start(&env, NAME).await;
    env.apply(&slow_to_stop("v3")).await;
    env.wait_healthy(NAME, "v3", 3).await;
    let h = rec.take();
    assert!(
        h.max_live_total <= 4,
        "live pods stay within replicas + maxSurge: {h:?}"
    );
    assert!(
        h.max_total > 4,
        "TerminationStarted: replacements start while old pods terminate: {h:?}"
    );
    assert!(h.recreated().is_empty(), "{h:?}");
    op.stop().await;
}
