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
    let got: Vec<(usize, &str)> = out.iter().map(|o| (o.sink, o.message.event)).collect();
    assert_eq!(got, [(0, "Started"), (1, "BatchCompleted"), (0, "Completed")]);
    let m = &out[0].message;
    assert_eq!((m.name.as_str(), m.namespace.as_str()), ("web", "apps"));
    assert_eq!(m.kind.plural, "rollouts");
    assert!(m.id.starts_with("u1-3-"), "{}", m.id);
    // The json body: the payload, its id the message's.
    let d = &m.data;
    assert_eq!(d["id"], m.id.as_str());
    assert_eq!(
        (&d["rollout"], &d["namespace"], &d["version"], &d["event"]),
        (&"web".into(), &"apps".into(), &"v2".into(), &"Started".into())
    );
    assert_eq!(d["batch"], 1);
    assert_eq!(d["message"], "rolling out v2");
    assert_eq!(d["time"], "2027-01-15T08:00:00Z");
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
