//! `baton.dev/drain` has one meaning on both sides: a pod annotated by hand
//! with `"true"` is draining for the Rollout controller too, which no longer counts it as
//! available, and the drain is the person's to withdraw.

use baton::api::pod::DRAIN_ANNOTATION;
use baton::api::rollout::RolloutPhase;
use kube::ResourceExt;

use crate::helpers::*;
use crate::support::kubectl::cell;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_drained_by_hand_is_not_available_until_the_drain_is_withdrawn() {
    let (env, op, k) = with_operator().await;
    let pods = deployed(&env, 2, "v1").await;
    let pod = pods.iter().find(|p| pod_slot(p) == 0).expect("slot 0").name_any();

    k.ok(&["annotate", "pod", &pod, &format!("{DRAIN_ANNOTATION}=true")])
        .await;
    env.wait_rollout(NAME, "1 of 2 available while svc-0 drains", LONG, |r| {
        status(r).available_replicas == 1 && status(r).phase == Some(RolloutPhase::Progressing)
    })
    .await;
    let out = k.ok(&["get", "rollout", NAME]).await;
    assert_eq!(cell(&out, NAME, "AVAILABLE").as_deref(), Some("1"), "{out}");
    // The controller has reconciled the drained pod and left the person's drain in place.
    let drained = env.pods_api().get(&pod).await.expect("pod");
    assert_eq!(
        drained.annotations().get(DRAIN_ANNOTATION).map(String::as_str),
        Some("true")
    );

    k.ok(&["annotate", "pod", &pod, &format!("{DRAIN_ANNOTATION}-")]).await;
    let r = env.wait_healthy(NAME, "v1", 2).await;
    assert_eq!(status(&r).available_replicas, 2);
    // The same pod serves again: a drain is not a replacement.
    assert!(env.pods(NAME).await.iter().any(|p| p.name_any() == pod));
    op.stop().await;
}
