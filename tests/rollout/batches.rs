//! (1) Deploy v1.2.3 to 3 instances in batches and watch progress.

use std::collections::BTreeMap;

use baton::api::rollout::labels;
use kube::ResourceExt;

use crate::helpers::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_in_batches_reports_progress_versions_and_instances() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let name = "user-service";
    env.apply(&env.manifest_v(name, 3, "v1.2.2")).await;
    let before = env.wait_healthy(name, "v1.2.2", 3).await;
    let old_rev = status(&before).current_revision.clone().expect("current revision");

    let pods = PodRecorder::start(&env, name).await;
    let recorder = StatusRecorder::start(&env, name);
    recorder.wait_synced().await;
    let applied = env.apply(&env.manifest_v(name, 3, "v1.2.3")).await;
    let done = env.wait_healthy(name, "v1.2.3", 3).await;
    let st = status(&done);
    let new_rev = st.update_revision.clone().expect("update revision");
    assert_ne!(new_rev, old_rev);

    // The sequence of statuses of this rollout.
    let snaps: Vec<_> = recorder
        .take()
        .into_iter()
        .filter(|(generation, s)| {
            *generation >= applied.metadata.generation && s.update_revision.as_deref() == Some(new_rev.as_str())
        })
        .map(|(_, s)| s)
        .collect();
    assert!(snaps.len() >= 4, "too few snapshots: {snaps:#?}");
    let completed: Vec<i32> = snaps
        .iter()
        .map(|s| s.progress.as_ref().expect("progress").completed)
        .collect();
    assert!(
        completed.windows(2).all(|w| w[0] <= w[1]),
        "progress.completed decreased: {completed:?}"
    );
    assert_eq!(completed.last(), Some(&3));
    let mut batches: Vec<i32> = snaps.iter().map(|s| s.batch.as_ref().expect("batch").current).collect();
    batches.dedup();
    assert_eq!(batches, [1, 2, 3], "batch.current sequence");
    assert!(snaps.iter().all(|s| s.batch.as_ref().unwrap().total == 3));
    assert!(snaps.iter().all(|s| s.progress.as_ref().unwrap().total == 3));
    let versions: Vec<BTreeMap<String, i32>> = snaps.iter().map(|s| s.versions.clone()).collect();
    assert!(versions.contains(&map(&[("v1.2.2", 2), ("v1.2.3", 1)])), "{versions:?}");
    assert!(versions.contains(&map(&[("v1.2.2", 1), ("v1.2.3", 2)])), "{versions:?}");
    assert_eq!(versions.last(), Some(&map(&[("v1.2.3", 3)])));
    for s in &snaps {
        // maxUnavailable 0: every instance always has a pod, a version and a revision.
        assert_eq!(s.instances.len(), 3, "{s:#?}");
        for i in &s.instances {
            assert!(
                i.pod.as_deref().is_some_and(|p| p.starts_with(&format!("{}-", i.name))),
                "{i:?}"
            );
            assert!(i.version.is_some() && i.revision > 0, "{i:?}");
        }
        assert_eq!(s.versions.values().sum::<i32>(), 3, "{s:#?}");
        assert!(s.updated_replicas <= s.batch.as_ref().unwrap().current.min(3));
    }

    // Final status.
    assert_eq!(st.current_revision.as_deref(), Some(new_rev.as_str()));
    assert_eq!(st.version.as_deref(), Some("v1.2.3"));
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.updated_replicas,
            st.available_replicas
        ),
        (3, 3, 3, 3)
    );
    let p = st.progress.clone().unwrap();
    assert_eq!((p.total, p.completed, p.failed, p.pending), (3, 3, 0, 0));
    assert_eq!(st.batch_label.as_deref(), Some("3/3"));
    let names: Vec<&str> = st.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["user-service-0", "user-service-1", "user-service-2"]);
    for i in &st.instances {
        assert!(
            i.ready && i.revision == 2 && i.version.as_deref() == Some("v1.2.3") && !i.pinned,
            "{i:?}"
        );
        assert!(i.since.is_some(), "{i:?}");
    }
    assert_eq!(
        cond(&done, "Available"),
        ("True".into(), "MinimumReplicasAvailable".into())
    );
    assert_eq!(
        cond(&done, "Progressing"),
        ("True".into(), "NewRevisionAvailable".into())
    );
    assert_eq!(cond(&done, "InvalidSpec"), ("False".into(), "SpecValid".into()));

    // Pods: one per slot, of the new revision, named <instance>-<hash>.
    let live = env.pods(name).await;
    let hash = new_rev
        .strip_prefix("user-service-")
        .expect("revision name is <rollout>-<hash>");
    for p in &live {
        assert_eq!(pod_label(p, labels::REVISION_HASH), hash);
        assert_eq!(p.name_any(), format!("user-service-{}-{hash}", pod_slot(p)));
        assert_eq!(pod_label(p, labels::INSTANCE), format!("user-service-{}", pod_slot(p)));
    }
    let h = pods.take();
    // TerminationStarted (the default): terminating pods are not counted against maxSurge.
    h.assert_surge_of_one(4);

    // Events (events.k8s.io/v1) regarding the Rollout.
    let events = env.events(name).await;
    let reasons = event_reasons(&events);
    for r in ["BatchStarted", "BatchCompleted", "RolloutCompleted"] {
        assert!(
            reasons.iter().any(|x| x == r),
            "no {r} event: {}",
            describe_events(&events)
        );
    }
    // The phase changes are said by the transitions they follow from, not by Events of their own.
    assert!(
        !reasons.iter().any(|x| x == "PhaseChanged"),
        "{}",
        describe_events(&events)
    );
    let notes: Vec<String> = events.iter().filter_map(|e| e.note.clone()).collect();
    assert!(
        notes.iter().any(|n| n.contains("(phase Healthy -> Progressing)")),
        "{}",
        describe_events(&events)
    );
    op.stop().await;
}

/// Each batch start is reported with its own Event message (batch 1/3, 2/3, 3/3), and each
/// phase change as its own transition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_batch_and_phase_change_gets_its_own_event_message() {
    let (env, op, _) = operator_with_v1().await;
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    env.wait_healthy(NAME, "v2", 3).await;
    let events = env.events(NAME).await;
    let notes: Vec<String> = events.iter().filter_map(|e| e.note.clone()).collect();
    for needle in [
        "batch 1/3",
        "batch 2/3",
        "batch 3/3",
        "-> Healthy",
        "is healthy on all 3 instances",
    ] {
        assert!(
            notes.iter().any(|n| n.contains(needle)),
            "no event message mentions {needle:?}; events:\n{}",
            describe_events(&events)
        );
    }
    op.stop().await;
}
