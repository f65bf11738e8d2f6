//! The agent's state machine stepped by hand: Leases in, actions out, time an input. Here the
//! fixtures and the life of one listener Lease (acknowledge, release, lose, shut down); the
//! liveness Lease and the deadlines it gives are in `tests/liveness.rs`.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use tokio::time::Instant;

use super::*;
use baton_api::listenerset::lease::pod_owner_reference;
use baton_api::listenerset::liveness::{
    liveness_lease_name, FENCED_ANNOTATION, HOLDER_UID_LABEL, LIVENESS_LABEL, LIVENESS_LABEL_VALUE,
};
use baton_api::listenerset::{
    LISTENERSET_LABEL, LISTENER_LABEL, PROTOCOL_ANNOTATION, PROTOCOL_VERSION, RELEASE_REQUESTED_ANNOTATION,
};

mod deadlines;
mod handover;
mod liveness;

const POD: &str = "pod-a";
const UID: &str = "uid-a";
const NAME: &str = "sxt-l1";
const SECS: i32 = 10;
/// The lease duration of the listeners ([`SECS`]).
const D: Duration = Duration::from_secs(10);
/// The default safety margin for [`D`]: D / 5.
const MARGIN: Duration = Duration::from_secs(2);
/// A quarter of [`D`].
const EVERY: Duration = Duration::from_millis(2500);

/// Listener Lease `sxt-<listener>` held (or not) by `holder`, whose Pod ownerReference has `uid`.
fn listener_lease(listener: &str, holder: Option<&str>, uid: &str, rv: u64, token: i32, secs: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(format!("sxt-{listener}")),
            resource_version: Some(rv.to_string()),
            labels: Some(
                [(LISTENERSET_LABEL, "sxt"), (LISTENER_LABEL, listener)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: Some(vec![pod_owner_reference(holder.unwrap_or("someone"), uid)]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(Into::into),
            lease_duration_seconds: Some(secs),
            lease_transitions: Some(token),
            ..Default::default()
        }),
    }
}

fn lease(holder: Option<&str>, uid: &str, rv: u64, token: i32) -> Lease {
    listener_lease("l1", holder, uid, rv, token, SECS)
}

/// Listener `l1`, ours.
fn mine(rv: u64, token: i32) -> Lease {
    lease(Some(POD), UID, rv, token)
}

/// Listener `listener`, ours, token 1.
fn mine_of(listener: &str, rv: u64, secs: i32) -> Lease {
    listener_lease(listener, Some(POD), UID, rv, 1, secs)
}

fn with_release(mut l: Lease) -> Lease {
    l.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(RELEASE_REQUESTED_ANNOTATION.into(), "drain".into());
    l
}

fn live_name() -> String {
    liveness_lease_name(UID)
}

/// The pod's liveness Lease as the controller writes it, registered by `holder` (`None`: not).
fn live(rv: u64, holder: Option<&str>, transitions: i32) -> Lease {
    let labels = [(LIVENESS_LABEL, LIVENESS_LABEL_VALUE), (HOLDER_UID_LABEL, UID)];
    Lease {
        metadata: ObjectMeta {
            name: Some(live_name()),
            resource_version: Some(rv.to_string()),
            labels: Some(
                labels
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            annotations: Some([(PROTOCOL_ANNOTATION.to_string(), PROTOCOL_VERSION.to_string())].into()),
            owner_references: Some(vec![pod_owner_reference(POD, UID)]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(Into::into),
            lease_transitions: Some(transitions),
            ..Default::default()
        }),
    }
}

/// The liveness Lease after the controller fenced registration `transitions`.
fn fenced(rv: u64, transitions: i32) -> Lease {
    let mut l = live(rv, None, transitions);
    l.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(FENCED_ANNOTATION.into(), "2025-01-01T00:00:00Z".into());
    l
}

fn machine(now: Instant) -> State {
    State::new(AgentConfig::new("ns", POD, UID), now)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every listener request among `actions`: (Lease, kind).
fn sends(actions: &[Action]) -> Vec<(String, OpKind)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { name, kind, .. } => Some((name.clone(), *kind)),
            _ => None,
        })
        .collect()
}

/// The one listener request among `actions`, if any.
fn sent(actions: &[Action]) -> Option<OpKind> {
    let all = sends(actions);
    assert!(all.len() <= 1, "one request at a time: {actions:?}");
    all.first().map(|(_, k)| *k)
}

/// The one liveness request among `actions`, if any: (kind, duration_seconds, the copy's rv).
fn live_sent(actions: &[Action]) -> Option<(LiveOp, i32, String)> {
    let all: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::SendLive {
                kind,
                lease,
                duration_seconds,
                ..
            } => Some((
                *kind,
                *duration_seconds,
                lease.metadata.resource_version.clone().unwrap_or_default(),
            )),
            _ => None,
        })
        .collect();
    assert!(all.len() <= 1, "one liveness request at a time: {actions:?}");
    all.into_iter().next()
}

fn starts(actions: &[Action]) -> Vec<i32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Start(s) => Some(s.fencing_token),
            _ => None,
        })
        .collect()
}

fn stops(actions: &[Action]) -> Vec<(StopReason, Option<u64>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { reason, ack, .. } => Some((reason.clone(), *ack)),
            _ => None,
        })
        .collect()
}

fn key(listener: &str) -> (String, String) {
    ("sxt".to_string(), listener.to_string())
}

/// A machine registered on its liveness Lease at `t0` (registration 1, renewal sent at `t0`).
fn registered(t0: Instant) -> State {
    let mut st = machine(t0);
    st.observe(&live_name(), Some(live(1, None, 0)), t0);
    assert!(st.take_actions().is_empty(), "registering waits for the tick");
    st.tick(t0);
    let a = st.take_actions();
    assert_eq!(live_sent(&a).map(|(k, s, _)| (k, s)), Some((LiveOp::Register, 15)));
    st.on_live_op(LiveOp::Register, Ok(Some(live(2, Some(POD), 1))), t0 + ms(5));
    assert_eq!(st.live.current(), 1);
    st
}

/// A registered machine running `l1` (token 3), acknowledged with a write sent at `t0 + 10ms`.
fn registered_running(t0: Instant) -> State {
    let mut st = registered(t0);
    st.observe(NAME, Some(mine(1, 3)), t0 + ms(10));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Ack));
    st.on_op(NAME, OpKind::Ack, Ok((Some(mine(2, 3)), None)), t0 + ms(20));
    assert_eq!(starts(&st.take_actions()), vec![3]);
    st
}

/// A machine that found no liveness Lease (per-listener protocol) running `l1` (token 3),
/// acknowledged with a write sent at `t0 + LIVENESS_WAIT`.
fn fallback_running(t0: Instant) -> State {
    let mut st = machine(t0);
    st.observe(NAME, Some(mine(1, 3)), t0);
    st.tick(t0 + LIVENESS_WAIT);
    let a = st.take_actions();
    assert!(a.contains(&Action::WatchSets));
    assert_eq!(sent(&a), Some(OpKind::Ack));
    st.on_op(
        NAME,
        OpKind::Ack,
        Ok((Some(mine(2, 3)), None)),
        t0 + LIVENESS_WAIT + ms(10),
    );
    assert_eq!(starts(&st.take_actions()), vec![3]);
    st
}

#[test]
fn starts_only_after_a_successful_acknowledgement_and_retries_with_backoff() {
    let t0 = Instant::now();
    let mut st = machine(t0);
    st.observe(NAME, Some(mine(1, 3)), t0);
    assert!(st.take_actions().is_empty(), "no liveness Lease yet: the ack waits");
    let mut now = t0 + LIVENESS_WAIT;
    st.tick(now);
    let a = st.take_actions();
    assert_eq!(sent(&a), Some(OpKind::Ack));
    assert!(starts(&a).is_empty(), "nothing starts before the ack succeeded");
    // Failed acks are retried, each wait in the upper half of an exponentially growing cap.
    let caps = [250, 500, 1000, 2000, 4000, 5000, 5000].map(ms);
    let mut waits = Vec::new();
    for cap in caps {
        st.on_op(NAME, OpKind::Ack, Err(OpError::Other("boom".into())), now);
        assert!(
            st.take_actions().is_empty(),
            "a failed ack starts nothing and is not resent at once"
        );
        assert!(st.valid_until().is_empty());
        let retry = st.tick(now).expect("a retry is scheduled");
        assert!(st.take_actions().is_empty());
        let wait = retry - now;
        assert!(
            wait >= cap / 2 && wait <= cap,
            "{wait:?} outside [{:?}, {cap:?}]",
            cap / 2
        );
        waits.push(wait);
        now = retry;
        st.tick(now);
        assert_eq!(sent(&st.take_actions()), Some(OpKind::Ack));
    }
    assert!(
        waits.iter().zip(caps).any(|(w, c)| *w != c && *w != c / 2),
        "the waits are jittered: {waits:?}"
    );
    st.on_op(
        NAME,
        OpKind::Ack,
        Ok((Some(mine(2, 3)), Some("cfg".into()))),
        now + ms(5),
    );
    let a = st.take_actions();
    assert_eq!(
        a,
        vec![Action::Start(Start {
            set: "sxt".into(),
            listener: "l1".into(),
            config: Some("cfg".into()),
            fencing_token: 3,
        })]
    );
    // The backoff starts over after a success: a failed renewal is retried within 250 ms.
    let due = st.tick(now + ms(5)).expect("a renewal is due");
    assert_eq!(due, now + EVERY);
    st.tick(due);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    st.on_op(NAME, OpKind::Renew, Err(OpError::Other("boom".into())), due);
    let retry = st.tick(due).expect("a retry is scheduled");
    assert!(retry - due <= ms(250), "{:?}", retry - due);
}

#[test]
fn leases_of_others_and_of_sets_not_served_are_ignored() {
    let t0 = Instant::now();
    let mut st = machine(t0);
    st.observe(NAME, Some(lease(Some("pod-b"), "uid-b", 1, 1)), t0);
    // Same name, another pod's uid (a recreated pod of the same name).
    st.observe(NAME, Some(lease(Some(POD), "uid-old", 2, 1)), t0);
    st.observe(NAME, Some(lease(None, UID, 3, 1)), t0);
    st.tick(t0 + LIVENESS_WAIT);
    assert_eq!(st.take_actions(), vec![Action::WatchSets]);
    assert!(st.tracked.is_empty());

    let cfg = AgentConfig::new("ns", POD, UID).with_sets(["other"]);
    let mut st = State::new(cfg, t0);
    st.observe(NAME, Some(mine(1, 3)), t0);
    let mut other = mine(1, 3);
    other.metadata.name = Some("other-l1".into());
    if let Some(labels) = other.metadata.labels.as_mut() {
        labels.insert(LISTENERSET_LABEL.into(), "other".into());
    }
    st.observe("other-l1", Some(other), t0);
    st.tick(t0 + LIVENESS_WAIT);
    let a = st.take_actions();
    assert_eq!(
        sends(&a),
        vec![("other-l1".to_string(), OpKind::Ack)],
        "only the served set"
    );
    assert_eq!(st.tracked.keys().collect::<Vec<_>>(), vec!["other-l1"]);
}

#[test]
fn a_requested_release_waits_for_the_applications_ack() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    st.observe(NAME, Some(with_release(mine(5, 3))), t0 + ms(100));
    let a = st.take_actions();
    let s = stops(&a);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, StopReason::ReleaseRequested("drain".into()));
    let epoch = s[0].1.expect("a requested release waits for the ack");
    assert!(sent(&a).is_none(), "no release before the ack");
    assert!(st.valid_until().is_empty(), "stopping: no longer valid");
    // A stale ack proves nothing.
    st.on_ack(NAME, epoch + 7, t0 + ms(200));
    assert!(st.take_actions().is_empty());
    st.on_ack(NAME, epoch, t0 + ms(300));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Release));
    st.on_op(
        NAME,
        OpKind::Release,
        Ok((Some(lease(None, UID, 7, 3)), None)),
        t0 + ms(310),
    );
    assert!(st.tracked.is_empty());
    assert!(st.take_actions().is_empty());
}

#[test]
fn a_terminating_lease_is_released_after_the_ack() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    let mut l = mine(5, 3);
    l.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    st.observe(NAME, Some(l), t0 + ms(100));
    let a = st.take_actions();
    let s = stops(&a);
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].0,
        StopReason::ReleaseRequested(baton_api::listenerset::ReleaseReason::LeaseDeleted.as_str().into())
    );
    assert!(sent(&a).is_none());
    st.on_ack(NAME, s[0].1.expect("ack wanted"), t0 + ms(200));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Release));
}

#[test]
fn a_release_acked_during_a_renewal_is_sent_when_the_renewal_answers() {
    let t0 = Instant::now();
    let mut st = fallback_running(t0);
    let ta = t0 + LIVENESS_WAIT; // the ack's send time
    st.observe(NAME, Some(with_release(mine(5, 3))), ta + ms(100));
    let s = stops(&st.take_actions());
    let epoch = s[0].1.expect("ack wanted");
    // Still renewed on its own Lease while the application stops.
    assert_eq!(st.tick(ta + ms(100)), Some(ta + EVERY));
    st.tick(ta + EVERY);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    st.on_ack(NAME, epoch, ta + EVERY + ms(10));
    assert!(st.take_actions().is_empty(), "one request at a time");
    let answered = ta + EVERY + ms(20);
    st.on_op(
        NAME,
        OpKind::Renew,
        Ok((Some(with_release(mine(6, 3))), None)),
        answered,
    );
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Release), "released at once");
    // Same when the renewal ends in a conflict: the read-back's answer lets the release go.
    let mut st = fallback_running(t0);
    st.observe(NAME, Some(with_release(mine(5, 3))), ta + ms(100));
    let epoch = stops(&st.take_actions())[0].1.expect("ack wanted");
    st.tick(ta + EVERY);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    st.on_ack(NAME, epoch, ta + EVERY + ms(10));
    st.on_op(NAME, OpKind::Renew, Err(OpError::Conflict), ta + EVERY + ms(20));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Read));
    st.on_op(
        NAME,
        OpKind::Read,
        Ok((Some(with_release(mine(7, 3))), None)),
        ta + EVERY + ms(30),
    );
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Release));
}

#[test]
fn a_lease_that_stops_being_ours_stops_at_once_without_an_ack() {
    let t0 = Instant::now();
    // Another holder.
    let mut st = registered_running(t0);
    st.observe(NAME, Some(lease(Some("pod-b"), "uid-b", 5, 3)), t0 + ms(100));
    let a = st.take_actions();
    assert_eq!(stops(&a), vec![(StopReason::Lost, None)]);
    assert!(sent(&a).is_none());
    assert!(st.tracked.is_empty() && st.valid_until().is_empty());
    // Deleted.
    let mut st = registered_running(t0);
    st.observe(NAME, None, t0 + ms(100));
    assert_eq!(stops(&st.take_actions()), vec![(StopReason::Lost, None)]);
    assert!(st.tracked.is_empty());
    // Ours under a new token: the old tenure stops, the new one starts after its own ack.
    let mut st = registered_running(t0);
    st.observe(NAME, Some(mine(5, 4)), t0 + ms(100));
    let a = st.take_actions();
    assert_eq!(stops(&a), vec![(StopReason::Lost, None)]);
    assert_eq!(sent(&a), Some(OpKind::Ack));
    assert!(starts(&a).is_empty());
    st.on_op(NAME, OpKind::Ack, Ok((Some(mine(6, 4)), None)), t0 + ms(120));
    assert_eq!(starts(&st.take_actions()), vec![4]);
    // Another Lease under the same name (deleted and recreated), same token.
    let mut st = registered_running(t0);
    let mut recreated = mine(5, 3);
    recreated.metadata.uid = Some("another-lease".into());
    st.observe(NAME, Some(recreated), t0 + ms(100));
    let a = st.take_actions();
    assert_eq!(stops(&a), vec![(StopReason::Lost, None)]);
    assert_eq!(sent(&a), Some(OpKind::Ack));
}

#[test]
fn a_read_back_showing_a_new_token_stops_the_listener() {
    let t0 = Instant::now();
    let mut st = fallback_running(t0);
    let ta = t0 + LIVENESS_WAIT;
    st.tick(ta + EVERY);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    st.on_op(NAME, OpKind::Renew, Err(OpError::Conflict), ta + EVERY + ms(5));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Read));
    st.on_op(NAME, OpKind::Read, Ok((Some(mine(9, 4)), None)), ta + EVERY + ms(10));
    let a = st.take_actions();
    assert_eq!(
        stops(&a),
        vec![(StopReason::Lost, None)],
        "token 3 must not run on as token 4"
    );
    assert_eq!(sent(&a), Some(OpKind::Ack));
    st.on_op(NAME, OpKind::Ack, Ok((Some(mine(10, 4)), None)), ta + EVERY + ms(20));
    assert_eq!(starts(&st.take_actions()), vec![4]);
}

#[test]
fn a_deletion_older_than_a_copy_from_the_other_watch_is_ignored() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    // The other watch showed version 5; this one reports a deletion at version 4.
    st.observe(NAME, Some(mine(5, 3)), t0 + ms(100));
    st.observe_gone(NAME, Some(4), t0 + ms(110));
    assert!(st.take_actions().is_empty());
    assert_eq!(st.tracked.get(NAME).map(|t| t.phase), Some(Phase::Running));
    // An older copy is ignored too.
    st.observe(NAME, Some(lease(Some("pod-b"), "uid-b", 4, 3)), t0 + ms(120));
    assert!(st.take_actions().is_empty());
    // A deletion at a newer version is the real thing.
    st.observe_gone(NAME, Some(6), t0 + ms(130));
    assert_eq!(stops(&st.take_actions()), vec![(StopReason::Lost, None)]);
}

#[test]
fn shutdown_stops_everything_and_releases_each_lease_once_acknowledged() {
    let t0 = Instant::now();
    let mut st = registered(t0);
    for (i, l) in ["l1", "l2"].into_iter().enumerate() {
        let name = format!("sxt-{l}");
        st.observe(&name, Some(mine_of(l, 1, SECS)), t0 + ms(10));
        assert_eq!(sends(&st.take_actions()), vec![(name.clone(), OpKind::Ack)]);
        st.on_op(&name, OpKind::Ack, Ok((Some(mine_of(l, 2, SECS)), None)), t0 + ms(20));
        assert_eq!(starts(&st.take_actions()).len(), 1, "{i}");
    }
    // l3's ack is in flight when the shutdown begins.
    st.observe("sxt-l3", Some(mine_of("l3", 1, SECS)), t0 + ms(30));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Ack));
    st.shutdown(t0 + ms(40));
    let a = st.take_actions();
    let stopping: Vec<(String, u64)> = a
        .iter()
        .filter_map(|a| match a {
            Action::Stop {
                name,
                reason: StopReason::Shutdown,
                ack: Some(epoch),
                ..
            } => Some((name.clone(), *epoch)),
            _ => None,
        })
        .collect();
    assert_eq!(stops(&a).len(), 2);
    assert_eq!(stopping.len(), 2, "{a:?}");
    assert!(sends(&a).is_empty(), "no release before the acks");
    // The registration is marked leaving before anything is released.
    st.tick(t0 + ms(40));
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Renew));
    st.on_live_op(LiveOp::Renew, Ok(Some(live(3, Some(POD), 1))), t0 + ms(45));
    // The ack in flight ends in a release, not a start.
    st.on_op(
        "sxt-l3",
        OpKind::Ack,
        Ok((Some(mine_of("l3", 2, SECS)), None)),
        t0 + ms(50),
    );
    let a = st.take_actions();
    assert!(starts(&a).is_empty());
    assert_eq!(sends(&a), vec![("sxt-l3".to_string(), OpKind::Release)]);
    let mut released = vec!["sxt-l3".to_string()];
    for (name, epoch) in stopping {
        st.on_ack(&name, epoch, t0 + ms(60));
        assert_eq!(sends(&st.take_actions()), vec![(name.clone(), OpKind::Release)]);
        released.push(name);
    }
    for (i, name) in released.iter().enumerate() {
        let l = name.trim_start_matches("sxt-");
        let mut gone = listener_lease(l, None, UID, 9, 1, SECS);
        gone.metadata.name = Some(name.clone());
        st.on_op(name, OpKind::Release, Ok((Some(gone), None)), t0 + ms(70 + i as u64));
        assert!(sends(&st.take_actions()).is_empty(), "each Lease released once");
    }
    assert!(st.tracked.is_empty());
    st.tick(t0 + secs(30));
    assert!(sends(&st.take_actions()).is_empty());
}

#[test]
fn at_most_max_ops_in_flight_requests_are_in_flight() {
    let t0 = Instant::now();
    let mut st = registered(t0);
    let n = MAX_OPS_IN_FLIGHT + 8;
    let names: Vec<String> = (0..n).map(|i| format!("m{i:02}")).collect();
    let mut in_flight = Vec::new();
    for l in &names {
        st.observe(&format!("sxt-{l}"), Some(mine_of(l, 1, SECS)), t0 + ms(10));
        in_flight.extend(sends(&st.take_actions()));
    }
    assert_eq!(in_flight.len(), MAX_OPS_IN_FLIGHT);
    st.tick(t0 + ms(20));
    assert!(sends(&st.take_actions()).is_empty(), "no free slot");
    // Each answer frees a slot for one more.
    let mut started = 0;
    let mut now = t0 + ms(30);
    while let Some((name, kind)) = (!in_flight.is_empty()).then(|| in_flight.remove(0)) {
        assert_eq!(kind, OpKind::Ack);
        let l = name.trim_start_matches("sxt-");
        st.on_op(&name, kind, Ok((Some(mine_of(l, 2, SECS)), None)), now);
        let a = st.take_actions();
        started += starts(&a).len();
        in_flight.extend(sends(&a));
        assert!(in_flight.len() <= MAX_OPS_IN_FLIGHT);
        now += ms(1);
    }
    assert_eq!(started, n);
    assert_eq!(st.valid_until().len(), n);
    let mut shown = crate::ValidUntil::new();
    assert!(st.refresh_valid_until(&mut shown), "the first look fills it");
    assert_eq!(shown, st.valid_until());
    assert!(!st.refresh_valid_until(&mut shown), "nothing moved: nothing changes");
    // One stops (its Lease is gone): it leaves the map.
    st.observe(&format!("sxt-{}", names[3]), None, now);
    assert!(st.refresh_valid_until(&mut shown));
    assert_eq!(shown, st.valid_until());
    assert_eq!(shown.len(), n - 1);
    assert!(!st.refresh_valid_until(&mut shown));
}

/// The tracking of `name`'s current request, from the Send among `actions`.
fn tracking_of(actions: &[Action], name: &str) -> u64 {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Send { name: n, tracking, .. } if n == name => Some(*tracking),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Send for {name}: {actions:?}"))
}

#[test]
fn an_answer_to_a_request_of_an_earlier_tracking_is_ignored() {
    let t0 = Instant::now();
    let mut st = registered(t0);
    st.observe(NAME, Some(mine(1, 3)), t0 + ms(10));
    let old = tracking_of(&st.take_actions(), NAME);
    // Before the acknowledgement is answered, the Lease is handed to this pod again (a new
    // tenure, token 4): the old tracking is forgotten, the new one acknowledges again.
    st.observe(NAME, Some(mine(5, 4)), t0 + ms(20));
    st.tick(t0 + ms(20));
    let new = tracking_of(&st.take_actions(), NAME);
    assert_ne!(old, new);
    // The old acknowledgement's answer (token 3) arrives late: it starts nothing.
    st.answered(NAME, old, OpKind::Ack, Ok((Some(mine(6, 3)), None)), t0 + ms(30));
    assert!(starts(&st.take_actions()).is_empty());
    // The new one's answer starts token 4; an answer of the wrong kind is ignored too.
    st.answered(NAME, new, OpKind::Renew, Ok((Some(mine(7, 4)), None)), t0 + ms(35));
    assert!(starts(&st.take_actions()).is_empty());
    st.answered(NAME, new, OpKind::Ack, Ok((Some(mine(7, 4)), None)), t0 + ms(40));
    assert_eq!(starts(&st.take_actions()), vec![4]);
}

/// A Lease this pod acknowledged, as a restarted sidecar first sees it.
fn acknowledged(mut l: Lease) -> Lease {
    let spec = l.spec.get_or_insert_with(Default::default);
    spec.acquire_time = Some(MicroTime("2026-01-10T10:00:00Z".parse().expect("a time")));
    spec.renew_time = Some(MicroTime("2026-01-10T10:00:01Z".parse().expect("a time")));
    l
}

#[test]
fn a_restarted_agent_releases_what_an_earlier_one_may_have_started_only_after_the_apps_ack() {
    let t0 = Instant::now();
    let mut st = registered(t0);
    // Acknowledged before this agent started (its predecessor's app may run it), and asked to
    // go: the application is told first, the Lease released once it applied that.
    st.observe(NAME, Some(acknowledged(with_release(mine(3, 2)))), t0 + ms(10));
    let a = st.take_actions();
    let asked = stops(&a);
    assert_eq!(
        asked,
        vec![(StopReason::ReleaseRequested("drain".into()), Some(0))],
        "{a:?}"
    );
    assert!(
        sends(&a).is_empty(),
        "released before the application stopped it: {a:?}"
    );
    // Meanwhile it may be acknowledged again under this agent's registration (keeping it valid
    // while the application stops), never released.
    st.tick(t0 + secs(1));
    let a = st.take_actions();
    let renewing = sends(&a);
    assert!(!renewing.iter().any(|(_, k)| *k == OpKind::Release), "{a:?}");
    st.on_ack(NAME, 0, t0 + secs(2));
    let mut a = st.take_actions();
    for (name, kind) in renewing {
        // The renewal answers: what waited on it goes out.
        st.on_op(
            &name,
            kind,
            Ok((Some(acknowledged(with_release(mine(5, 2)))), None)),
            t0 + secs(2),
        );
        a.extend(st.take_actions());
    }
    assert_eq!(sends(&a), vec![(NAME.to_string(), OpKind::Release)], "{a:?}");
    // Never acknowledged: no application can have started it, released at once.
    st.observe("sxt-l2", Some(with_release(mine_of("l2", 4, SECS))), t0 + secs(3));
    let a = st.take_actions();
    assert!(stops(&a).is_empty(), "{a:?}");
    assert_eq!(sends(&a), vec![("sxt-l2".to_string(), OpKind::Release)]);
}
