use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::*;
use crate::api::notifications::{NotificationFormat, SecretName, Sink};
use crate::listeners::assigner::Summary;
use crate::listeners::decide::{Blocked, Write};

fn decision(states: &[(&str, ListenerState)], tokens: &[(&str, i32)], assigns: &[&str], eligible: usize) -> Decision {
    Decision {
        balance: Default::default(),
        burst: None,
        moves_last_minute: 0,
        settling: false,
        writes: assigns
            .iter()
            .map(|l| Write {
                change: Move::Assign {
                    listener: l.to_string(),
                    pod: "p2".into(),
                    pod_uid: "u2".into(),
                    from_resource_version: Some("1".into()),
                    transitions: 9,
                },
                kind: Some(HowAssigned::Takeover {
                    from: "p1".into(),
                    why: "gone".into(),
                }),
            })
            .collect(),
        summary: Summary {
            states: states.iter().map(|(id, s)| (id.to_string(), s.clone())).collect(),
            ..Summary::default()
        },
        eligible,
        blocked: (eligible == 0).then_some(Blocked::NoEligiblePod {
            selected: 0,
            not_ready: 0,
            draining: 0,
        }),
        requeue: None,
        recovered: 0,
        tokens: tokens
            .iter()
            .map(|(l, t)| (l.to_string(), *t))
            .collect::<BTreeMap<_, _>>(),
        lapsed: BTreeSet::new(),
        renewed: BTreeSet::new(),
        fences: Vec::new(),
        liveness_creates: Vec::new(),
        ceiling: None,
        silent: Vec::new(),
    }
}

fn running(pod: &str, t: i32) -> ListenerState {
    ListenerState::Running {
        pod: pod.into(),
        uid: format!("{pod}-uid"),
        transitions: t,
    }
}

fn orphan(holder: &str) -> ListenerState {
    ListenerState::Orphaned { holder: holder.into() }
}

#[test]
fn orphaned_are_listeners_that_ran_and_that_nothing_runs_or_takes() {
    let d = decision(
        &[
            ("a", running("p1", 1)),
            ("b", orphan("p0")),
            ("c", orphan("p0")),
            ("d", ListenerState::Pending),
            ("e", ListenerState::Pending),
            ("f", ListenerState::Suspended),
        ],
        &[("a", 1), ("b", 3), ("c", 2), ("d", 0), ("f", 5)],
        &["c"],
        0,
    );
    let notes = orphaned(&d, false);
    let got: Vec<(&str, i32, Option<&str>)> = notes
        .iter()
        .map(|n| {
            (
                n.listener.as_deref().unwrap(),
                n.fencing_token.unwrap(),
                n.previous_pod.as_deref(),
            )
        })
        .collect();
    // c is taken over by this decision; e never ran; f is suspended.
    // d ran with the first token, 0.
    assert_eq!(got, [("b", 3, Some("p0")), ("d", 0, None)]);
    assert!(notes.iter().all(|n| n.event == ListenerSetEvent::Orphaned));
    assert_eq!(notes[0].key, "b/3");
    assert!(notes[0].message.contains("lost its holder p0"), "{}", notes[0].message);
    assert!(
        notes[0]
            .message
            .contains("no listener can move: no eligible pod (no pod matches spec.selector)"),
        "{}",
        notes[0].message
    );
    assert!(notes[1].message.contains("released"), "{}", notes[1].message);
    assert!(orphaned(&d, true).is_empty(), "nothing while deleting");
    // The same orphan seen again (a stale cache, another controller) has the same key; once it
    // ran again and was lost again, another one.
    assert_eq!(orphaned(&d, false)[0].key, notes[0].key);
    let later = decision(&[("b", orphan("p2"))], &[("b", 4)], &[], 1);
    assert_ne!(orphaned(&later, false)[0].key, notes[0].key);
}

#[test]
fn assignments_are_notified_by_kind_keyed_by_their_token() {
    let takeover = HowAssigned::Takeover {
        from: "p1".into(),
        why: "holder gone".into(),
    };
    // The Lease (collected with its pod) named nobody: the takeover names the holder.
    let take = assigned(&takeover, "a", "p2", None, 4, "taken").unwrap();
    assert_eq!(take.event, ListenerSetEvent::Takeover);
    assert_eq!(take.key, "a/4");
    assert_eq!(
        (take.pod.as_deref(), take.previous_pod.as_deref(), take.fencing_token),
        (Some("p2"), Some("p1"), Some(4))
    );
    let hand = assigned(&HowAssigned::Handover, "a", "p2", Some(""), 5, "handed").unwrap();
    assert_eq!((hand.event, hand.previous_pod), (ListenerSetEvent::Handover, None));
    let back = assigned(&HowAssigned::Recreated, "a", "p2", Some("p2"), 6, "back").unwrap();
    assert_eq!(
        (back.event, back.previous_pod),
        (ListenerSetEvent::LeaseRecreated, None)
    );
    assert_eq!(assigned(&HowAssigned::Assigned, "a", "p2", None, 1, "new"), None);
}

fn status_with(degraded: Option<(&str, &str, i64)>) -> ListenerSetStatus {
    ListenerSetStatus {
        conditions: degraded
            .map(|(status, reason, at)| Condition {
                type_: CONDITION_DEGRADED.into(),
                status: status.into(),
                reason: reason.into(),
                message: String::new(),
                last_transition_time: Time(Timestamp::from_second(1_800_000_000 + at).unwrap()),
                observed_generation: None,
            })
            .into_iter()
            .collect(),
        ..ListenerSetStatus::default()
    }
}

#[test]
fn degraded_is_notified_when_it_turns_true_or_changes_reason() {
    let fine = status_with(Some(("False", "AsExpected", 0)));
    let n = degraded(&fine, true, "NoEligiblePods", "no pod").unwrap();
    assert_eq!(n.event, ListenerSetEvent::Degraded);
    assert_eq!(n.reason.as_deref(), Some("NoEligiblePods"));
    assert_eq!(n.message, "NoEligiblePods: no pod");
    // Seen again from the same stored status: the same key.
    assert_eq!(
        degraded(&fine, true, "NoEligiblePods", "no pod (2)").unwrap().key,
        n.key
    );
    // Already so: nothing; another reason: a new one.
    let bad = status_with(Some(("True", "NoEligiblePods", 5)));
    assert_eq!(degraded(&bad, true, "NoEligiblePods", "no pod"), None);
    assert!(degraded(&bad, true, "MissingSecret", "x").is_some());
    // Not degraded, or orphaned listeners (notified one by one): nothing.
    assert_eq!(degraded(&fine, false, "AsExpected", ""), None);
    assert_eq!(degraded(&fine, true, REASON_ORPHANED, "1 orphan"), None);
    // The same reason again after a recovery is another occurrence.
    let recovered_at_9 = status_with(Some(("False", "AsExpected", 9)));
    assert_ne!(
        degraded(&recovered_at_9, true, "NoEligiblePods", "").unwrap().key,
        n.key
    );
    // A set without a Degraded condition yet.
    assert!(degraded(&status_with(None), true, "InvalidSpec", "bad").is_some());
}

fn takeover(from: &str) -> HowAssigned {
    HowAssigned::Takeover {
        from: from.into(),
        why: "gone".into(),
    }
}

fn sink(events: &[ListenerSetEvent]) -> ListenerSetNotification {
    ListenerSetNotification {
        sink: Sink {
            secret_ref: SecretName { name: "hook".into() },
        },
        format: NotificationFormat::Json,
        events: events.to_vec(),
    }
}

#[test]
fn messages_follow_the_notes_and_the_subscriptions() {
    let sinks = [
        sink(&[ListenerSetEvent::Takeover, ListenerSetEvent::Orphaned]),
        sink(&[ListenerSetEvent::Orphaned]),
    ];
    let subject = Subject {
        name: "accounts",
        namespace: "apps",
        uid: "u1",
        sinks: &sinks,
    };
    let notes = [
        assigned(&takeover("p1"), "a", "p2", None, 4, "a taken over").unwrap(),
        recovered("n1", 1),
        orphaned(&decision(&[("b", orphan("p1"))], &[("b", 2)], &[], 0), false).remove(0),
    ];
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let out = messages(&subject, &notes, now);
    let got: Vec<(usize, &str)> = out.iter().map(|o| (o.sink, o.message.event)).collect();
    assert_eq!(got, [(0, "Takeover"), (0, "Orphaned"), (1, "Orphaned")]);
    let m = &out[0].message;
    assert_eq!(m.kind, ABOUT);
    assert!(m.id.starts_with("u1-"), "{}", m.id);
    assert_eq!(m.id, message_id("u1", "a/4", ListenerSetEvent::Takeover));
    assert_eq!(
        m.data,
        serde_json::json!({
            "id": m.id,
            "listenerSet": "accounts",
            "namespace": "apps",
            "event": "Takeover",
            "listener": "a",
            "pod": "p2",
            "previousPod": "p1",
            "fencingToken": 4,
            "reason": null,
            "message": "a taken over",
            "time": "2027-01-15T08:00:00Z",
        })
    );
    assert_eq!(
        out[1].message.id, out[2].message.id,
        "one key per occurrence, whatever the sink"
    );
    let cloud = crate::webhooks::format::source(m);
    assert_eq!(cloud, "/apis/baton.dev/v1alpha1/namespaces/apps/listenersets/accounts");
}
