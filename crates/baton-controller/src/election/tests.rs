//! Unit tests of the parent module.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use kube::api::ObjectMeta;
use tokio::time::Instant;

use super::standby::{jittered, Observer};
use super::*;

fn cfg() -> ElectionConfig {
    ElectionConfig::new("l", "ns", "me")
}

#[test]
fn defaults_are_client_go_and_valid() {
    let c = cfg();
    assert_eq!(c.lease_duration, Duration::from_secs(15));
    assert_eq!(c.renew_deadline, Duration::from_secs(10));
    assert_eq!(c.retry_period, Duration::from_secs(2));
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.lease_duration_seconds(), 15);
    assert_eq!(c.abort_grace(), Duration::from_millis(2500));
}

#[test]
fn lease_seconds_round_up() {
    let mut c = cfg();
    c.lease_duration = Duration::from_millis(2500);
    assert_eq!(c.lease_duration_seconds(), 3);
}

#[test]
fn jitter_stays_in_range() {
    let d = Duration::from_millis(100);
    for _ in 0..1000 {
        let j = jittered(d);
        assert!(
            j >= d && j < d.mul_f64(1.0 + JITTER_FACTOR) + Duration::from_nanos(1),
            "{j:?}"
        );
    }
}

fn lease(rv: &str, holder: Option<&str>, secs: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            resource_version: Some(rv.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(secs),
            ..LeaseSpec::default()
        }),
    }
}

#[test]
fn observer_restarts_clock_only_on_change() {
    let t0 = Instant::now();
    let mut o = Observer::default();
    o.observe(Some(&lease("1", Some("a"), 15)), t0, Duration::from_secs(9));
    assert_eq!(o.expires_at(), Some(t0 + Duration::from_secs(15)));
    // Same record seen later: the clock does not restart.
    o.observe(
        Some(&lease("1", Some("a"), 15)),
        t0 + Duration::from_secs(5),
        Duration::from_secs(9),
    );
    assert_eq!(o.expires_at(), Some(t0 + Duration::from_secs(15)));
    // Renewed: restarts.
    let t1 = t0 + Duration::from_secs(6);
    o.observe(Some(&lease("2", Some("a"), 15)), t1, Duration::from_secs(9));
    assert_eq!(o.expires_at(), Some(t1 + Duration::from_secs(15)));
    // Released: nothing to wait for.
    o.observe(Some(&lease("3", None, 1)), t1, Duration::from_secs(9));
    assert_eq!(o.expires_at(), None);
    o.observe(None, t1, Duration::from_secs(9));
    assert_eq!(o.expires_at(), None);
}

#[tokio::test]
async fn a_client_that_cannot_be_built_ends_the_election_with_its_reason() {
    let (tx, _rx) = watch::channel(ElectionStatus::default());
    let client = ElectionClient::build(|| Err("no kubeconfig".to_string()));
    let r = run(client, cfg(), std::future::pending(), |_: Leader| async {}, tx).await;
    match r {
        Err(e @ ElectionError::Thread(_)) => assert_eq!(
            e.to_string(),
            "the election thread failed: building its client: no kubeconfig"
        ),
        other => panic!("expected a thread error, got {other:?}"),
    }
}
