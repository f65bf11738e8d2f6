//! Acceptance tests of the Rollout controller against the API server simulator: the old
//! system's scenarios (batched update, single-instance and batch rollback, automatic rollback,
//! whole-service undo, controller crash, API faults, invalid specs) plus scale, repair,
//! superseding specs, `spec.paused` and the runtime actions (promote, abort, retry, restart).
//!
//! Every test starts its own simulator and operator, waits on conditions with deadlines (never a
//! fixed sleep), and asserts on the Rollout's status, its pods and its events.k8s.io/v1 Events.
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use baton::api::rollout::{annotations, labels, RolloutPhase};
use baton::cli::rollout::RolloutCommand;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use support::*;

const NAME: &str = "svc";

fn map(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn assert_ok(code: ExitCode, what: &str) {
    assert_eq!(code, ExitCode::SUCCESS, "{what} failed");
}

/// Deploys `version` on `replicas` instances, waits until it is Healthy, returns its pods.
async fn deployed(env: &Env, replicas: i32, version: &str) -> Vec<Pod> {
    env.apply(&manifest_v(NAME, replicas, version)).await;
    env.wait_healthy(NAME, version, usize::try_from(replicas).unwrap())
        .await;
    env.pods(NAME).await
}

fn event_reasons(events: &[k8s_openapi::api::events::v1::Event]) -> Vec<String> {
    events.iter().filter_map(|e| e.reason.clone()).collect()
}

// -------------------------------------------------------------------------------------------
// (1) Deploy v1.2.3 to 3 instances in batches and watch progress.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_in_batches_reports_progress_versions_and_instances() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let name = "user-service";
    env.apply(&manifest_v(name, 3, "v1.2.2")).await;
    let before = env.wait_healthy(name, "v1.2.2", 3).await;
    let old_rev = status(&before).current_revision.clone().expect("current revision");

    let pods = PodRecorder::start(&env, name).await;
    let recorder = StatusRecorder::start(&env, name);
    let applied = env.apply(&manifest_v(name, 3, "v1.2.3")).await;
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
    assert!(h.max_per_slot.values().all(|n| *n <= 2), "{:?}", h.max_per_slot);
    assert!(h.max_total <= 4, "replicas 3 + maxSurge 1, saw {}", h.max_total);
    assert!(h.recreated().is_empty(), "{:?}", h.recreated());

    // Events (events.k8s.io/v1) regarding the Rollout.
    let events = env.events(name).await;
    let reasons = event_reasons(&events);
    for r in ["BatchStarted", "BatchCompleted", "RolloutCompleted", "PhaseChanged"] {
        assert!(
            reasons.iter().any(|x| x == r),
            "no {r} event: {}",
            describe_events(&events)
        );
    }
    op.stop().await;
}

/// Each batch start is reported with its own Event message (batch 1/3, 2/3, 3/3), and each
/// phase change as its own transition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_batch_and_phase_change_gets_its_own_event_message() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    env.apply(&manifest_v(NAME, 3, "v2")).await;
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

// -------------------------------------------------------------------------------------------
// (2) Single-instance rollback and (3) batch rollback, by pins.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_one_instance_to_the_old_version_then_unpin() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let v1_pods = deployed(&env, 3, "v1").await;
    let v1_hash = pod_label(&v1_pods[0], labels::REVISION_HASH).to_string();
    env.apply(&manifest_v(NAME, 3, "v2")).await;
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
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    env.apply(&manifest_v(NAME, 3, "v2")).await;
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
    assert!(h.max_total <= 4, "pins respect maxSurge: saw {} pods", h.max_total);

    env.merge(NAME, json!({"spec": {"pins": []}})).await;
    env.wait_healthy(NAME, "v2", 3).await;
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// (4) A failed batch is rolled back automatically.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_ready_batch_is_rolled_back_automatically() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    let recorder = StatusRecorder::start(&env, NAME);

    let mut m = manifest(NAME, 3, "v2", "svc:v2-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    let applied = env.apply(&m).await;
    env.wait_rollout(NAME, "Progressing=False/RolledBack", LONG, |r| {
        current_generation(r) && cond(r, "Progressing") == ("False".into(), "RolledBack".into())
    })
    .await;
    let r = env
        .wait_rollout(NAME, "Healthy after the rollback", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Healthy)
                && instance_versions(r) == map(&[("v1", 3)])
        })
        .await;
    let st = status(&r);
    assert_eq!(st.versions, map(&[("v1", 3)]), "status.versions after the rollback");
    let progressing = condition(&r, "Progressing").unwrap();
    assert_eq!(progressing.reason, "RolledBack");
    assert!(
        progressing.message.contains("v2"),
        "message names the failed version: {}",
        progressing.message
    );
    assert!(
        progressing.message.contains("rolled back to v1"),
        "{}",
        progressing.message
    );
    assert_eq!(
        cond(&r, "Available"),
        ("True".into(), "MinimumReplicasAvailable".into())
    );
    let failed = st.failed_update.clone().expect("failedUpdate recorded");
    assert_eq!(
        (failed.version.as_str(), failed.reason.as_str(), failed.rolled_back),
        ("v2", "ProgressDeadlineExceeded", true)
    );
    assert_eq!(st.version.as_deref(), Some("v1"));
    assert_ne!(st.current_revision, st.update_revision);
    assert!(st
        .instances
        .iter()
        .all(|i| i.ready && i.version.as_deref() == Some("v1") && i.revision == 1));

    // Available never dropped; the rollout went through RollingBack.
    let snaps: Vec<_> = recorder
        .take()
        .into_iter()
        .filter(|(g, _)| *g >= applied.metadata.generation)
        .map(|(_, s)| s)
        .collect();
    assert!(
        snaps.iter().any(|s| s.phase == Some(RolloutPhase::RollingBack)),
        "no RollingBack phase seen"
    );
    for s in &snaps {
        let a = s
            .conditions
            .iter()
            .find(|c| c.type_ == "Available")
            .expect("Available condition");
        assert_eq!(a.status, "True", "Available dropped: {s:#?}");
    }

    env.wait_pods(NAME, "all pods back on v1", |p| {
        p.len() == 3 && p.iter().all(|p| pod_version(p) == "v1")
    })
    .await;
    let ev = env
        .wait_event(NAME, "RolledBack event", |e| e.reason.as_deref() == Some("RolledBack"))
        .await;
    assert_eq!(ev.regarding.as_ref().unwrap().name.as_deref(), Some(NAME));
    assert!(ev.note.as_deref().unwrap_or("").contains("v2"), "{:?}", ev.note);
    let events = env.events(NAME).await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("BatchFailed") && e.type_.as_deref() == Some("Warning")),
        "{}",
        describe_events(&events)
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_batch_fails_and_is_rolled_back() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    // A long deadline: the crash loop, not the deadline, must fail the batch.
    let mut m = manifest(NAME, 3, "v2", "svc:v2-crash");
    m["spec"]["progressDeadlineSeconds"] = json!(600);
    env.apply(&m).await;
    let r = env
        .wait_rollout(NAME, "rolled back after a crash loop", LONG, |r| {
            current_generation(r)
                && cond(r, "Progressing") == ("False".into(), "RolledBack".into())
                && status(r).phase == Some(RolloutPhase::Healthy)
        })
        .await;
    let f = status(&r).failed_update.expect("failedUpdate");
    assert_eq!(
        (f.reason.as_str(), f.version.as_str(), f.batch),
        ("PodCrashLooping", "v2", 1)
    );
    assert!(f.message.contains("crash-looping"), "{}", f.message);
    assert_eq!(cond(&r, "Available").0, "True");
    env.wait_pods(NAME, "all pods on v1", |p| {
        p.len() == 3 && p.iter().all(|p| pod_version(p) == "v1")
    })
    .await;
    env.wait_event(NAME, "BatchFailed (crash-looping)", |e| {
        e.reason.as_deref() == Some("BatchFailed") && e.note.as_deref().unwrap_or("").contains("crash-looping")
    })
    .await;
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// (5) Whole-service undo mid-rollout.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_mid_rollout_returns_everything_to_v1() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let v1 = deployed(&env, 3, "v1").await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    let r = env
        .wait_rollout(NAME, "waiting for promotion after batch 1", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Paused)
                && instance_versions(r) == map(&[("v1", 2), ("v2", 1)])
        })
        .await;
    assert_eq!(cond(&r, "Progressing"), ("True".into(), "BatchPaused".into()));
    assert!(status(&r).message.unwrap_or_default().contains("waiting for promotion"));
    assert_eq!(status(&r).batch.as_ref().map(|b| (b.current, b.total)), Some((1, 3)));

    assert_ok(
        env.cli(RolloutCommand::Undo {
            name: NAME.into(),
            to_revision: None,
        })
        .await,
        "undo",
    );
    let r = env.wait_healthy(NAME, "v1", 3).await;
    assert_eq!(r.spec.version, "v1");
    assert_eq!(
        r.spec.template.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("svc:v1")
    );
    let st = status(&r);
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(cond(&r, "Progressing"), ("True".into(), "NewRevisionAvailable".into()));
    let pods = env.pods(NAME).await;
    // The slots that never left v1 kept their pods.
    let kept: BTreeSet<_> = identities(&pods).intersection(&identities(&v1)).cloned().collect();
    assert_eq!(
        kept.len(),
        2,
        "the two untouched v1 pods stay: {}",
        describe_pods(&pods)
    );
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// (6) The controller is killed mid-batch and restarted.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_killed_mid_batch_and_restarted_finishes_safely() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 4, "v1").await;
    let rec = PodRecorder::start(&env, NAME).await;
    env.apply(&manifest_v(NAME, 4, "v2")).await;

    // Kill it as soon as batch 2 has started, and the next one as soon as batch 3 has.
    env.wait_rollout(NAME, "batch 2 started", LONG, |r| {
        current_generation(r) && status(r).batch.as_ref().is_some_and(|b| b.current == 2 && b.total == 3)
    })
    .await;
    op.kill().await;
    let op = env.start_operator().await;
    env.wait_rollout(NAME, "batch 3 started", LONG, |r| {
        current_generation(r) && status(r).batch.as_ref().is_some_and(|b| b.current == 3)
    })
    .await;
    op.kill().await;
    let op = env.start_operator().await;

    let r = env.wait_healthy(NAME, "v2", 4).await;
    let p = status(&r).progress.unwrap();
    assert_eq!((p.completed, p.failed), (4, 0));
    let h = rec.take();
    assert!(
        h.max_per_slot.values().all(|n| *n <= 2),
        "a slot had more than 2 pods: {:?}",
        h.max_per_slot
    );
    assert!(
        h.max_total <= 5,
        "more than replicas + maxSurge pods at once: {}",
        h.max_total
    );
    assert!(h.recreated().is_empty(), "pod names created twice: {:?}", h.recreated());
    assert_eq!(h.creations.len(), 4, "exactly one new pod per slot: {:?}", h.creations);
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// (7) 409 and 500 answers injected for the controller's client.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_completes_despite_injected_409_and_500() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    let rec = PodRecorder::start(&env, NAME).await;
    env.sim.faults.set_error_rate(Some(CONTROLLER_ID), 0.2, &[409, 500]);
    env.apply(&manifest_v(NAME, 3, "v2")).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    env.sim.faults.clear();
    let st = status(&r);
    assert!(
        st.failed_update.is_none(),
        "the rollout must not fail: {:?}",
        st.failed_update
    );
    assert_eq!(st.progress.as_ref().map(|p| p.completed), Some(3));
    assert_eq!(st.current_revision, st.update_revision);
    let h = rec.take();
    assert!(h.max_per_slot.values().all(|n| *n <= 2), "{:?}", h.max_per_slot);
    assert!(h.max_total <= 4, "{}", h.max_total);
    assert!(h.recreated().is_empty(), "{:?}", h.recreated());
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// (8) Invalid specs: InvalidSpec=True saying what to fix, a Warning Event, nothing moves.

/// Deploys v1, then merges `invalid` (which also asks for v2) into the spec; expects
/// InvalidSpec=True with every `needles` in its message, a Warning Event, and no pod touched.
/// Then fixes the spec and expects v2 to roll out.
async fn invalid_spec_case(invalid: serde_json::Value, needles: &[&str]) {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let before = deployed(&env, 3, "v1").await;
    let rec = PodRecorder::start(&env, NAME).await;

    let mut patch = invalid;
    patch["spec"]["version"] = json!("v2");
    patch["spec"]["template"] =
        json!({"metadata": {"labels": {"app": NAME}}, "spec": {"containers": [{"name": "app", "image": "svc:v2"}]}});
    env.merge(NAME, patch).await;
    let r = env
        .wait_rollout(NAME, "InvalidSpec=True", LONG, |r| {
            current_generation(r) && cond(r, "InvalidSpec").0 == "True"
        })
        .await;
    let c = condition(&r, "InvalidSpec").unwrap();
    assert_eq!(c.reason, "InvalidSpec");
    for n in needles {
        assert!(
            c.message.contains(n),
            "InvalidSpec message {:?} should contain {n:?}",
            c.message
        );
    }
    assert_eq!(status(&r).phase, Some(RolloutPhase::Degraded));
    assert!(status(&r).message.unwrap_or_default().contains("nothing is changed"));
    assert_eq!(
        cond(&r, "Available").0,
        "True",
        "the running instances are still available"
    );
    let ev = env
        .wait_event(NAME, "InvalidSpec Warning", |e| {
            e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning")
        })
        .await;
    for n in needles {
        assert!(
            ev.note.as_deref().unwrap_or("").contains(n),
            "event note {:?} should contain {n:?}",
            ev.note
        );
    }
    // The reconcile that wrote this status has applied its actions: nothing moved.
    let after = env.pods(NAME).await;
    assert_eq!(
        identities(&after),
        identities(&before),
        "pods changed: {}",
        describe_pods(&after)
    );
    let h = rec.take();
    assert!(h.creations.is_empty() && h.deletions.is_empty(), "{h:?}");
    let revisions: kube::Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        kube::Api::namespaced(env.client.clone(), NS);
    let revs = revisions.list(&Default::default()).await.unwrap().items;
    assert_eq!(revs.len(), 1, "no revision is created for an invalid spec");

    // Fix it: the whole valid manifest for v2.
    env.merge(NAME, json!({"spec": {"pins": null}})).await;
    env.apply(&manifest_v(NAME, 3, "v2")).await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert_eq!(cond(&r, "InvalidSpec"), ("False".into(), "SpecValid".into()));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_decreasing_batches() {
    invalid_spec_case(
        json!({"spec": {"strategy": {"batches": [2, 1, "100%"]}}}),
        &["spec.strategy.batches[1]", "must not decrease"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_percentage_over_100() {
    invalid_spec_case(
        json!({"spec": {"strategy": {"batches": [1, "150%"]}}}),
        &["spec.strategy.batches[1]", "100%"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_max_surge_and_max_unavailable_both_zero() {
    invalid_spec_case(
        json!({"spec": {"strategy": {"maxSurge": 0, "maxUnavailable": "0%"}}}),
        &["both zero", "set maxSurge to 1"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_pin_of_unknown_version() {
    invalid_spec_case(
        json!({"spec": {"pins": [{"instances": ["svc-1"], "version": "v0.9"}]}}),
        &[
            "spec.pins[0].version \"v0.9\" is not in the revision history",
            "known: v1",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_pin_of_unknown_instance() {
    invalid_spec_case(
        json!({"spec": {"pins": [{"instances": ["svc-7"], "version": "v1"}]}}),
        &["\"svc-7\"", "svc-0 .. svc-2"],
    )
    .await;
}

/// Negative replicas never reach the controller: the CRD's OpenAPI schema (`minimum: 0`) makes
/// the API server answer 422, as kube-apiserver does. Nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_replicas_are_rejected_by_the_api_with_422() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let before = deployed(&env, 3, "v1").await;
    let generation = env.get(NAME).await.metadata.generation;
    let err = env
        .rollouts()
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1, "version": "v2"}})),
        )
        .await
        .expect_err("replicas -1 must be rejected");
    match &err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(s.message.contains("replicas"), "{}", s.message);
        }
        other => panic!("expected a 422 Status, got {other:?}"),
    }
    let mut m = manifest_v("neg", -2, "v1");
    m["metadata"]["name"] = json!("neg");
    let err = env
        .rollouts()
        .patch("neg", &PatchParams::apply("test").force(), &Patch::Apply(&m))
        .await
        .expect_err("a new Rollout with replicas -2 must be rejected");
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 422), "{err:?}");
    let r = env.get(NAME).await;
    assert_eq!(r.metadata.generation, generation);
    assert_eq!((r.spec.replicas, r.spec.version.as_str()), (3, "v1"));
    assert_eq!(identities(&env.pods(NAME).await), identities(&before));
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// Scale, repair, superseding specs, spec.paused.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_and_down_through_the_scale_subresource() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
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
    let env = Env::start().await;
    let op = env.start_operator().await;
    let before = deployed(&env, 3, "v1").await;
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
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    let mid = env
        .wait_rollout(NAME, "v2 paused after batch 1", LONG, |r| {
            current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
        })
        .await;
    let v2_rev = status(&mid).update_revision.unwrap();
    let rec = StatusRecorder::start(&env, NAME);
    let applied = env.apply(&manifest_v(NAME, 3, "v3")).await;
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
    let env = Env::start().await;
    let op = env.start_operator().await;
    let before = deployed(&env, 3, "v1").await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["paused"] = json!(true);
    env.apply(&m).await;
    let r = env
        .wait_rollout(NAME, "phase Paused", LONG, |r| {
            current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
        })
        .await;
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
    let events = env.events(NAME).await;
    assert!(
        event_reasons(&events).iter().any(|r| r == "Resumed"),
        "{}",
        describe_events(&events)
    );
    op.stop().await;
}

// -------------------------------------------------------------------------------------------
// Runtime actions through the CLI's annotations.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_advances_a_pause_waiting_for_promotion() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    for (batch, versions) in [(1, map(&[("v1", 2), ("v2", 1)])), (2, map(&[("v1", 1), ("v2", 2)]))] {
        let r = env
            .wait_rollout(NAME, &format!("waiting for promotion after batch {batch}"), LONG, |r| {
                current_generation(r)
                    && status(r).phase == Some(RolloutPhase::Paused)
                    && status(r).batch.as_ref().is_some_and(|b| b.current == batch)
                    && instance_versions(r) == versions
            })
            .await;
        assert_eq!(cond(&r, "Progressing"), ("True".into(), "BatchPaused".into()));
        assert_eq!(cond(&r, "Available").0, "True");
        assert_ok(env.cli(RolloutCommand::Promote { name: NAME.into() }).await, "promote");
    }
    let r = env.wait_healthy(NAME, "v2", 3).await;
    let nonce = r.annotations().get(annotations::PROMOTE).cloned();
    assert!(nonce.is_some());
    assert_eq!(
        status(&r).actions.and_then(|a| a.promote),
        nonce,
        "the handled nonce is recorded"
    );
    let events = env.events(NAME).await;
    assert!(
        event_reasons(&events).iter().any(|r| r == "Promoted"),
        "{}",
        describe_events(&events)
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_then_retry() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    let mut m = manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({});
    env.apply(&m).await;
    env.wait_rollout(NAME, "paused after batch 1", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;

    assert_ok(env.cli(RolloutCommand::Abort { name: NAME.into() }).await, "abort");
    let r = env
        .wait_rollout(NAME, "aborted and back on v1", LONG, |r| {
            current_generation(r)
                && cond(r, "Progressing") == ("False".into(), "RolloutAborted".into())
                && status(r).phase == Some(RolloutPhase::Healthy)
                && instance_versions(r) == map(&[("v1", 3)])
        })
        .await;
    let f = status(&r).failed_update.expect("failedUpdate");
    assert_eq!(
        (f.reason.as_str(), f.version.as_str(), f.rolled_back),
        ("Aborted", "v2", true)
    );
    assert_eq!(cond(&r, "Available").0, "True");
    env.wait_pods(NAME, "all pods on v1", |p| {
        p.len() == 3 && p.iter().all(|p| pod_version(p) == "v1")
    })
    .await;
    env.wait_event(NAME, "RolloutAborted Warning", |e| {
        e.reason.as_deref() == Some("RolloutAborted") && e.type_.as_deref() == Some("Warning")
    })
    .await;

    // Retry: v2 again from batch 1.
    assert_ok(env.cli(RolloutCommand::Retry { name: NAME.into() }).await, "retry");
    let r = env
        .wait_rollout(NAME, "v2 retried, paused after batch 1", LONG, |r| {
            current_generation(r)
                && status(r).phase == Some(RolloutPhase::Paused)
                && status(r).failed_update.is_none()
                && instance_versions(r) == map(&[("v1", 2), ("v2", 1)])
        })
        .await;
    assert_eq!(status(&r).batch.map(|b| b.current), Some(1));
    env.merge(NAME, json!({"spec": {"strategy": {"pause": null}}})).await;
    env.wait_healthy(NAME, "v2", 3).await;
    let events = env.events(NAME).await;
    assert!(
        event_reasons(&events).iter().any(|r| r == "RetryRequested"),
        "{}",
        describe_events(&events)
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_every_pod_with_a_new_revision_of_the_same_version() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let before = deployed(&env, 3, "v1").await;
    let old = env.get(NAME).await;
    let old_rev = status(&old).current_revision.unwrap();
    let rec = PodRecorder::start(&env, NAME).await;
    assert_ok(env.cli(RolloutCommand::Restart { name: NAME.into() }).await, "restart");
    let r = env
        .wait_rollout(NAME, "restarted on a new revision", LONG, |r| {
            healthy_on(r, "v1", 3)
                && status(r).current_revision.as_deref().is_some_and(|c| c != old_rev)
                && status(r).current_revision == status(r).update_revision
        })
        .await;
    assert!(status(&r).instances.iter().all(|i| i.revision == 2));
    let pods = env
        .wait_pods(NAME, "3 new pods", |p| {
            p.len() == 3 && p.iter().all(|p| p.metadata.deletion_timestamp.is_none())
        })
        .await;
    assert!(
        identities(&pods).is_disjoint(&identities(&before)),
        "every pod replaced"
    );
    let stamp = r
        .annotations()
        .get(annotations::RESTARTED_AT)
        .cloned()
        .expect("annotation");
    for p in &pods {
        assert_eq!(pod_version(p), "v1");
        assert_eq!(
            p.annotations().get(annotations::RESTARTED_AT),
            Some(&stamp),
            "{}",
            p.name_any()
        );
    }
    let h = rec.take();
    assert!(h.max_total <= 4 && h.max_per_slot.values().all(|n| *n <= 2), "{h:?}");
    op.stop().await;
}
