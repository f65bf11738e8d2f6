use std::time::Duration;

use super::*;
use crate::api::notifications::{NotificationFormat, SecretName, Sink};
use crate::api::rollout::HandledActions;
use crate::rollout::planner::EventType;

fn ev(reason: EventReason, message: &str, batch: Option<i32>) -> PlanEvent {
    PlanEvent {
        type_: EventType::Normal,
        reason,
        message: message.into(),
        identity: message.into(),
        batch,
    }
}

fn sink(events: &[RolloutEvent]) -> RolloutNotification {
    RolloutNotification {
        sink: Sink {
            secret_ref: SecretName { name: "hook".into() },
        },
        format: NotificationFormat::Json,
        events: events.to_vec(),
    }
}

fn status(update: &str, retry: Option<&str>) -> RolloutStatus {
    RolloutStatus {
        update_revision: Some(update.into()),
        actions: Some(HandledActions {
            retry: retry.map(str::to_string),
            ..HandledActions::default()
        }),
        ..RolloutStatus::default()
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

#[test]
fn plan_events_map_to_subscription_words() {
    use EventReason::*;
    let cases = [
        (ev(BatchStarted, "rolling out v2", Some(1)), Some(RolloutEvent::Started)),
        (ev(BatchStarted, "batch 2/3", Some(2)), None),
        (
            ev(BatchCompleted, "batch 1/3 healthy", Some(1)),
            Some(RolloutEvent::BatchCompleted),
        ),
        (ev(Paused, "paused", None), Some(RolloutEvent::Paused)),
        (ev(Promoted, "promoted", Some(1)), Some(RolloutEvent::Promoted)),
        (ev(RolloutCompleted, "healthy", None), Some(RolloutEvent::Completed)),
        (ev(BatchFailed, "failed", Some(1)), Some(RolloutEvent::Failed)),
        (ev(RolledBack, "rolled back", None), Some(RolloutEvent::RolledBack)),
        (ev(RolloutAborted, "aborted", None), Some(RolloutEvent::Aborted)),
        (ev(CheckFailed, "check", Some(1)), Some(RolloutEvent::CheckFailed)),
        (ev(PhaseChanged, "phase", None), None),
        (ev(RollingBack, "rolling back", None), None),
    ];
    for (e, want) in cases {
        assert_eq!(rollout_event(&e), want, "{e:?}");
    }
}

#[test]
fn messages_follow_the_plan_order_and_the_subscriptions() {
    let sinks = [
        sink(&[RolloutEvent::Started, RolloutEvent::Completed]),
        sink(&[RolloutEvent::BatchCompleted]),
    ];
    let subject = Subject {
        name: "web",
        namespace: "apps",
        uid: "u1",
        generation: 3,
        version: "v2",
        sinks: &sinks,
    };
    let events = [
        ev(EventReason::BatchStarted, "rolling out v2", Some(1)),
        ev(EventReason::PhaseChanged, "phase Healthy -> Progressing", None),
        ev(EventReason::BatchCompleted, "batch 1/1 healthy", Some(1)),
        ev(EventReason::RolloutCompleted, "v2 healthy", None),
    ];
    let out = messages(&subject, &status("web-abc", None), &events, at(0));
    let got: Vec<(usize, RolloutEvent)> = out.iter().map(|o| (o.sink, o.payload.event)).collect();
    assert_eq!(
        got,
        [
            (0, RolloutEvent::Started),
            (1, RolloutEvent::BatchCompleted),
            (0, RolloutEvent::Completed)
        ]
    );
    let p = &out[0].payload;
    assert_eq!(
        (p.rollout.as_str(), p.namespace.as_str(), p.version.as_str()),
        ("web", "apps", "v2")
    );
    assert_eq!(p.batch, Some(1));
    assert!(p.id.starts_with("u1-3-"), "{}", p.id);
}

#[test]
fn a_transition_reported_again_has_the_same_key_and_another_does_not() {
    let started = ev(EventReason::BatchStarted, "rolling out v2", Some(1));
    let key = |st: &RolloutStatus, generation: i64| {
        message_id(
            "u1",
            generation,
            &transition_key(generation, st, &started),
            RolloutEvent::Started,
        )
    };
    let first = key(&status("web-abc", None), 3);
    assert_eq!(first, key(&status("web-abc", None), 3), "a repeated report");
    assert_ne!(first, key(&status("web-abc", Some("r1")), 3), "a retry");
    assert_ne!(first, key(&status("web-def", None), 3), "another revision");
    assert_ne!(first, key(&status("web-abc", None), 4), "another generation");
    let b1 = ev(EventReason::BatchCompleted, "batch 1/3 of v2 healthy", Some(1));
    let b2 = ev(EventReason::BatchCompleted, "batch 2/3 of v2 healthy", Some(2));
    let st = status("web-abc", None);
    assert_ne!(
        message_id("u1", 3, &transition_key(3, &st, &b1), RolloutEvent::BatchCompleted),
        message_id("u1", 3, &transition_key(3, &st, &b2), RolloutEvent::BatchCompleted)
    );
}

#[test]
fn retries_back_off_from_one_second_to_a_minute_within_the_bound() {
    let (first, max) = (Duration::from_secs(1), Duration::from_secs(60));
    let waits: Vec<u64> = (1..=9).map(|n| backoff(n, first, max).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(backoff(200, first, max), max, "no overflow");
    let bound = Duration::from_secs(600);
    assert_eq!(next_attempt(1, Duration::ZERO, bound, first, max), Some(first));
    assert_eq!(
        next_attempt(9, Duration::from_secs(590), bound, first, max),
        Some(Duration::from_secs(10)),
        "the last attempt is at the bound"
    );
    assert_eq!(next_attempt(10, Duration::from_secs(600), bound, first, max), None);
    assert_eq!(next_attempt(10, Duration::from_secs(700), bound, first, max), None);
}

#[test]
fn each_format_has_its_shape() {
    use crate::rollout::notify::format::render;
    let p = Payload {
        id: "u1-3-00ff".into(),
        rollout: "web".into(),
        namespace: "apps".into(),
        event: RolloutEvent::Completed,
        version: "v2".into(),
        revision: Some(2),
        batch: None,
        message: "v2 healthy".into(),
        time: at(0),
    };
    let header = |b: &crate::rollout::notify::format::Body, k: &str| {
        b.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let json =
        |b: &crate::rollout::notify::format::Body| serde_json::from_slice::<serde_json::Value>(&b.bytes).unwrap();

    let b = render(&p, NotificationFormat::Json);
    assert_eq!(header(&b, "Idempotency-Key").as_deref(), Some("u1-3-00ff"));
    let v = json(&b);
    assert_eq!(v["id"], "u1-3-00ff");
    assert_eq!(v["event"], "Completed");
    assert_eq!(v["revision"], 2);
    assert_eq!(v["time"], "2027-01-15T08:00:00Z");

    let v = json(&render(&p, NotificationFormat::Slack));
    assert_eq!(v, serde_json::json!({"text": "[apps/web] Completed: v2 healthy"}));

    let b = render(&p, NotificationFormat::CloudEventsBinary);
    assert_eq!(header(&b, "ce-specversion").as_deref(), Some("1.0"));
    assert_eq!(header(&b, "ce-type").as_deref(), Some("dev.baton.rollout.Completed"));
    assert_eq!(
        header(&b, "ce-source").as_deref(),
        Some("/apis/baton.dev/v1alpha1/namespaces/apps/rollouts/web")
    );
    assert_eq!(header(&b, "ce-id").as_deref(), Some("u1-3-00ff"));
    assert_eq!(header(&b, "content-type").as_deref(), Some("application/json"));
    assert_eq!(json(&b)["message"], "v2 healthy");

    let b = render(&p, NotificationFormat::CloudEventsStructured);
    assert_eq!(
        header(&b, "content-type").as_deref(),
        Some("application/cloudevents+json")
    );
    let v = json(&b);
    assert_eq!(v["specversion"], "1.0");
    assert_eq!(v["type"], "dev.baton.rollout.Completed");
    assert_eq!(v["id"], "u1-3-00ff");
    assert_eq!(v["data"]["event"], "Completed");
}
