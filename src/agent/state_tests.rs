//! The agent's state machine stepped by hand: Leases in, actions out, time an input.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use tokio::time::Instant;

use super::*;
use crate::api::listenerset::{LISTENERSET_LABEL, LISTENER_LABEL, RELEASE_REQUESTED_ANNOTATION};

const POD: &str = "pod-a";
const UID: &str = "uid-a";
const NAME: &str = "sxt-l1";
const SECS: i32 = 10;

fn lease(holder: Option<&str>, uid: &str, rv: u64, token: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            resource_version: Some(rv.to_string()),
            labels: Some(
                [(LISTENERSET_LABEL, "sxt"), (LISTENER_LABEL, "l1")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: holder.unwrap_or("someone").into(),
                uid: uid.into(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(Into::into),
            lease_duration_seconds: Some(SECS),
            lease_transitions: Some(token),
            ..Default::default()
        }),
    }
}

fn mine(rv: u64, token: i32) -> Lease {
    lease(Some(POD), UID, rv, token)
}

fn with_release(mut l: Lease) -> Lease {
    l.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(RELEASE_REQUESTED_ANNOTATION.into(), "drain".into());
    l
}

fn machine() -> State {
    State::new(AgentConfig::new("ns", POD, UID))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The one Send among `actions`, if any.
fn sent(actions: &[Action]) -> Option<OpKind> {
    let kinds: Vec<OpKind> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert!(kinds.len() <= 1, "one request at a time per Lease: {actions:?}");
    kinds.first().copied()
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

/// A machine running the listener since `t0` (token 3, rv 2).
fn running(t0: Instant) -> State {
    let mut st = machine();
    st.observe(NAME, Some(mine(1, 3)), t0);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Acquire));
    st.on_op(NAME, OpKind::Acquire, Ok((Some(mine(2, 3)), None)), t0 + ms(20));
    assert_eq!(starts(&st.take_actions()), vec![3]);
    st
}

#[test]
fn starts_only_after_a_successful_acquire() {
    let t0 = Instant::now();
    let mut st = machine();
    st.observe(NAME, Some(mine(1, 3)), t0);
    let a = st.take_actions();
    assert_eq!(sent(&a), Some(OpKind::Acquire));
    assert!(starts(&a).is_empty());
    // A failed acquire starts nothing; it is retried after the retry period.
    st.on_op(NAME, OpKind::Acquire, Err(OpError::Other("boom".into())), t0 + ms(10));
    assert!(st.take_actions().is_empty());
    let retry = st.tick(t0 + ms(20)).expect("a retry is scheduled");
    assert_eq!(retry, t0 + ms(10) + st.cfg.retry_period);
    assert!(st.take_actions().is_empty());
    st.tick(retry);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Acquire));
    st.on_op(
        NAME,
        OpKind::Acquire,
        Ok((Some(mine(2, 3)), Some("cfg".into()))),
        retry + ms(5),
    );
    let a = st.take_actions();
    assert_eq!(starts(&a), vec![3]);
    assert!(
        matches!(&a[0], Action::Start(s) if s.config.as_deref() == Some("cfg") && s.listener == "l1" && s.set == "sxt")
    );
}

#[test]
fn leases_of_others_are_ignored() {
    let t0 = Instant::now();
    let mut st = machine();
    st.observe(NAME, Some(lease(Some("pod-b"), "uid-b", 1, 1)), t0);
    // Same name, another pod's uid (a recreated pod of the same name).
    st.observe(NAME, Some(lease(Some(POD), "uid-old", 2, 1)), t0);
    st.observe(NAME, Some(lease(None, UID, 3, 1)), t0);
    assert!(st.take_actions().is_empty());
    assert_eq!(st.tick(t0), None);
}

#[test]
fn renews_every_quarter_duration_from_the_send_instant() {
    let t0 = Instant::now();
    let mut st = running(t0);
    let due = t0 + Duration::from_secs(SECS as u64) / 4;
    let next = st.tick(t0 + ms(100)).expect("next wake");
    assert_eq!(next, due);
    assert!(st.take_actions().is_empty());
    st.tick(due);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    // While in flight, nothing more is sent.
    st.tick(due + ms(500));
    assert!(st.take_actions().is_empty());
    st.on_op(NAME, OpKind::Renew, Ok((Some(mine(3, 3)), None)), due + ms(600));
    assert!(st.take_actions().is_empty(), "a renewal starts nothing new");
    assert_eq!(st.tick(due + ms(700)), Some(due + Duration::from_secs(SECS as u64) / 4));
}

#[test]
fn failed_renewals_stop_before_the_lease_can_expire_and_never_restart_without_a_renewal() {
    let t0 = Instant::now();
    let mut st = running(t0);
    let base = t0; // the acquire was sent at t0
    let deadline = base + Duration::from_secs(SECS as u64) - st.cfg.margin(Duration::from_secs(SECS as u64));
    let mut now = t0 + ms(100);
    // Every renewal fails until the deadline.
    while now < deadline {
        st.tick(now);
        let a = st.take_actions();
        assert!(stops(&a).is_empty(), "no stop before the deadline");
        if let Some(kind) = sent(&a) {
            assert_eq!(kind, OpKind::Renew);
            st.on_op(NAME, kind, Err(OpError::Other("timeout".into())), now + ms(50));
        }
        now += ms(100);
    }
    st.tick(deadline);
    let a = st.take_actions();
    assert_eq!(stops(&a), vec![(StopReason::RenewFailed, None)]);
    // Keeps trying, as an acquisition; failures start nothing.
    let mut now = deadline;
    for _ in 0..20 {
        now += ms(300);
        st.tick(now);
        let a = st.take_actions();
        assert!(starts(&a).is_empty());
        if let Some(kind) = sent(&a) {
            assert_eq!(kind, OpKind::Acquire);
            st.on_op(NAME, kind, Err(OpError::Other("timeout".into())), now + ms(10));
        }
    }
    // The first successful one starts it again.
    st.tick(now + ms(500));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Acquire));
    st.on_op(NAME, OpKind::Acquire, Ok((Some(mine(9, 3)), None)), now + ms(510));
    assert_eq!(starts(&st.take_actions()), vec![3]);
}

#[test]
fn a_deleted_lease_stops_at_once_and_is_not_restarted_until_renewed() {
    let t0 = Instant::now();
    let mut st = running(t0);
    st.observe(NAME, None, t0 + ms(100));
    assert_eq!(stops(&st.take_actions()), vec![(StopReason::Lost, None)]);
    assert_eq!(st.tick(t0 + ms(200)), None, "nothing left to do");
    assert!(st.take_actions().is_empty());
    // Recreated for this pod (token + 1): acquired again before anything starts.
    st.observe(NAME, Some(mine(10, 4)), t0 + ms(300));
    let a = st.take_actions();
    assert!(starts(&a).is_empty());
    assert_eq!(sent(&a), Some(OpKind::Acquire));
    st.on_op(NAME, OpKind::Acquire, Ok((Some(mine(11, 4)), None)), t0 + ms(320));
    assert_eq!(starts(&st.take_actions()), vec![4]);
}

#[test]
fn a_renewal_answered_not_found_stops_at_once() {
    let t0 = Instant::now();
    let mut st = running(t0);
    let due = st.tick(t0 + ms(1)).expect("renew due");
    st.tick(due);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    st.on_op(NAME, OpKind::Renew, Err(OpError::NotFound), due + ms(5));
    assert_eq!(stops(&st.take_actions()), vec![(StopReason::Lost, None)]);
}

#[test]
fn a_conflict_reads_back_and_a_new_holder_stops_the_listener() {
    let t0 = Instant::now();
    let mut st = running(t0);
    let due = st.tick(t0 + ms(1)).expect("renew due");
    st.tick(due);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    st.on_op(NAME, OpKind::Renew, Err(OpError::Conflict), due + ms(5));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Read));
    st.on_op(
        NAME,
        OpKind::Read,
        Ok((Some(lease(Some("pod-b"), "uid-b", 7, 4)), None)),
        due + ms(9),
    );
    assert_eq!(stops(&st.take_actions()), vec![(StopReason::Lost, None)]);
}

#[test]
fn a_requested_release_waits_for_the_ack_while_renewing() {
    let t0 = Instant::now();
    let mut st = running(t0);
    st.observe(NAME, Some(with_release(mine(5, 3))), t0 + ms(100));
    let a = st.take_actions();
    let s = stops(&a);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, StopReason::ReleaseRequested("drain".into()));
    let epoch = s[0].1.expect("a requested release waits for the ack");
    assert!(sent(&a).is_none(), "no release before the ack");
    // Still renewing while the app stops.
    let due = st.tick(t0 + ms(200)).expect("renew due");
    st.tick(due);
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    st.on_op(
        NAME,
        OpKind::Renew,
        Ok((Some(with_release(mine(6, 3))), None)),
        due + ms(5),
    );
    assert!(st.take_actions().is_empty());
    // A stale ack proves nothing.
    st.on_ack(NAME, epoch + 7, due + ms(10));
    assert!(st.take_actions().is_empty());
    st.on_ack(NAME, epoch, due + ms(20));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Release));
    st.on_op(
        NAME,
        OpKind::Release,
        Ok((Some(lease(None, UID, 7, 3)), None)),
        due + ms(30),
    );
    assert!(st.tracked.is_empty());
    assert!(st.take_actions().is_empty());
}

#[test]
fn shutdown_stops_running_listeners_and_releases_the_rest() {
    let t0 = Instant::now();
    let mut st = running(t0);
    let mut other = mine(20, 1);
    other.metadata.name = Some("sxt-l2".into());
    other
        .metadata
        .labels
        .as_mut()
        .expect("labels")
        .insert(LISTENER_LABEL.into(), "l2".into());
    st.observe("sxt-l2", Some(other), t0 + ms(1));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Acquire));
    st.shutdown(t0 + ms(2));
    let a = st.take_actions();
    let s = stops(&a);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, StopReason::Shutdown);
    assert!(s[0].1.is_some());
    // The acquisition in flight ends in a release, not a start.
    st.on_op("sxt-l2", OpKind::Acquire, Ok((Some(mine(21, 1)), None)), t0 + ms(3));
    let a = st.take_actions();
    assert!(starts(&a).is_empty());
    assert_eq!(sent(&a), Some(OpKind::Release));
}

#[test]
fn valid_until_is_the_safety_deadline_of_each_running_listener() {
    let t0 = Instant::now();
    let mut st = machine();
    st.observe(NAME, Some(mine(1, 3)), t0);
    assert!(st.valid_until().is_empty(), "nothing runs before the acquire succeeded");
    st.take_actions();
    st.on_op(NAME, OpKind::Acquire, Ok((Some(mine(2, 3)), None)), t0 + ms(20));
    st.take_actions();
    // Base: when the acquire was sent (t0); duration 10 s, default margin 2 s.
    let key = ("sxt".to_string(), "l1".to_string());
    assert_eq!(st.valid_until().get(&key), Some(&(t0 + Duration::from_secs(8))));
    // A renewal sent at t0 + 2.5 s moves it.
    let due = t0 + ms(2500);
    st.tick(due);
    st.take_actions();
    st.on_op(NAME, OpKind::Renew, Ok((Some(mine(3, 3)), None)), due + ms(30));
    assert_eq!(st.valid_until().get(&key), Some(&(due + Duration::from_secs(8))));
    // Lost: gone from the map with the Stop.
    st.observe(NAME, None, due + ms(40));
    assert!(st.valid_until().is_empty());
}

#[test]
fn a_lease_recreated_under_the_same_name_is_a_new_tenure() {
    let t0 = Instant::now();
    let mut st = running(t0);
    // Deleted and recreated for this pod with the next token, and the watch only showed the
    // new one: the old tenure stops, the new one starts only after its own renewal.
    let mut recreated = mine(7, 4);
    recreated.metadata.uid = Some("another-lease".into());
    st.observe(NAME, Some(recreated.clone()), t0 + ms(100));
    let actions = st.take_actions();
    assert_eq!(stops(&actions), vec![(StopReason::Lost, None)]);
    assert_eq!(sent(&actions), Some(OpKind::Acquire));
    assert!(starts(&actions).is_empty());
    st.on_op(NAME, OpKind::Acquire, Ok((Some(mine(8, 4)), None)), t0 + ms(120));
    assert_eq!(starts(&st.take_actions()), vec![4]);
}
