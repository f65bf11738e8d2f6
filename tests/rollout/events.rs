//! Events per Rollout update: one per transition, each transition's Event published
//! once even when it is planned again from a stale status, and repeats aggregated into an
//! events.k8s.io/v1 series.

use std::collections::BTreeMap;

use baton::api::rollout::annotations;
use kube::api::PostParams;
use serde_json::json;

use crate::helpers::*;
use crate::support::*;

/// Event POSTs by the controller since `since` (in the API server's record of writes, whatever
/// their answer).
fn event_posts(env: &Env, since: &backend::WriteMark) -> usize {
    env.writes_since(since)
        .iter()
        .filter(|w| w.identity.contains(CONTROLLER_ID))
        .filter(|w| w.method == "POST" && w.path.contains("/events"))
        .count()
}

/// (reason, note) → Event objects.
fn by_note(events: &[k8s_openapi::api::events::v1::Event]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for e in events {
        let k = (e.reason.clone().unwrap_or_default(), e.note.clone().unwrap_or_default());
        *m.entry(k).or_default() += 1;
    }
    m
}

/// A 3-batch update reports each transition with one Event. A controller that plans again
/// from the status of the update's start (a stale cache, a restart) reports the same
/// transitions again — and they are the same Events, not new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transition_is_one_event_even_when_planned_again_from_a_stale_status() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 3, "v1").await;
    let recorder = StatusRecorder::start(&env, NAME);
    recorder.wait_synced().await;
    let applied = env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    let done = env.wait_healthy(NAME, "v2", 3).await;
    let new_rev = status(&done).update_revision.clone().expect("update revision");
    let started = recorder
        .take()
        .into_iter()
        .map(|(_, s)| s)
        .find(|s| {
            s.observed_generation == applied.metadata.generation
                && s.update_revision.as_deref() == Some(new_rev.as_str())
                && s.batch.as_ref().is_some_and(|b| b.current == 1)
        })
        .expect("a status of batch 1 of v2");
    op.stop().await;

    let events = env.events(NAME).await;
    let counts = by_note(&events);
    let of = |reason: &str| counts.keys().filter(|(r, _)| r == reason).count();
    assert_eq!(
        (of("BatchStarted"), of("BatchCompleted"), of("RolloutCompleted")),
        (4, 2, 2),
        "v1: one batch started and completed; v2: three batches\n{}",
        describe_events(&events)
    );
    assert_eq!(of("PhaseChanged"), 0, "{}", describe_events(&events));
    assert!(counts.values().all(|n| *n == 1), "{}", describe_events(&events));

    // The stored status goes back to the start of batch 1, as a stale cache would show it,
    // and a new controller (nothing in memory) takes over.
    let mut r = env.get(NAME).await;
    r.status = Some(started);
    env.rollouts()
        .replace_status(NAME, &PostParams::default(), &r)
        .await
        .expect("status replaced");
    let since = env.write_mark();
    let op = env.start_operator().await;
    // It completes batches 1 to 3 again (5 transitions) and says so.
    env.wait_healthy(NAME, "v2", 3).await;
    wait::poll(
        "the controller to publish the replayed transitions",
        LONG,
        wait::POLL,
        || async {
            let n = event_posts(&env, &since);
            if n >= 5 {
                Ok(())
            } else {
                Err(n)
            }
        },
    )
    .await
    .unwrap_or_else(|(m, n)| panic!("{m}: {n} event POSTs"));
    // Stopping waits for publishing in flight.
    op.stop().await;
    let again = env.events(NAME).await;
    assert_eq!(
        by_note(&again),
        counts,
        "no new Event for a transition reported before\nbefore:\n{}\nafter:\n{}",
        describe_events(&events),
        describe_events(&again)
    );
}

/// The same warning twice (two promotions with nothing to promote) is one Event whose
/// series counts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_is_one_event_with_a_series_count() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    deployed(&env, 2, "v1").await;
    for nonce in ["n1", "n2"] {
        env.merge(
            NAME,
            json!({"metadata": {"annotations": {annotations::PROMOTE: nonce}}}),
        )
        .await;
        env.wait_rollout(NAME, &format!("promote {nonce} handled"), LONG, |r| {
            status(r).actions.and_then(|a| a.promote).as_deref() == Some(nonce)
        })
        .await;
    }
    let ev = env
        .wait_event(NAME, "ActionIgnored counted twice", |e| {
            e.reason.as_deref() == Some("ActionIgnored") && e.series.as_ref().is_some_and(|s| s.count == 2)
        })
        .await;
    let series = ev.series.clone().expect("series");
    assert!(series.last_observed_time.0 >= ev.event_time.clone().expect("eventTime").0);
    op.stop().await;
    let events = env.events(NAME).await;
    let ignored: Vec<_> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ActionIgnored"))
        .collect();
    assert_eq!(ignored.len(), 1, "{}", describe_events(&events));
}
