//! Unit tests of the parent module.
use super::secrets::strip_secret;
use super::*;
use k8s_openapi::ByteString;

use crate::api::pod::Labels;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// A cached pod without labels has empty labels: only the empty selector takes it.
#[test]
fn selectors() {
    let app_a: BTreeMap<String, String> = [("app".to_string(), "a".to_string())].into();
    let sel = LabelSelector {
        match_labels: Some(app_a.clone()),
        ..Default::default()
    };
    let matches = crate::api::pod::selector_matches_labels;
    assert!(matches(&sel, &Labels::from(&app_a)));
    assert!(!matches(&sel, &Labels::default()));
    assert!(matches(&LabelSelector::default(), &Labels::from(&app_a)));
    assert!(matches(&LabelSelector::default(), &Labels::default()));
}

#[test]
fn secrets_are_cached_without_values() {
    let mut s = Secret {
        data: Some([("k".to_string(), ByteString(b"token".to_vec()))].into()),
        ..Default::default()
    };
    strip_secret(&mut s);
    assert_eq!(s.data.unwrap().get("k").map(|v| v.0.len()), Some(0));
}

/// A set's own status, written by every pass, does not wake it; whatever else a pass reads of
/// the set does.
#[test]
fn only_changes_beyond_the_status_wake_a_set() {
    use crate::api::listenerset::ListenerSetStatus;
    let mut set = ListenerSet::new("accounts", Default::default());
    set.metadata.namespace = Some("apps".into());
    set.metadata.uid = Some("u1".into());
    set.metadata.generation = Some(1);
    set.metadata.resource_version = Some("10".into());
    let base = beyond_status(&set);
    let mut status_only = set.clone();
    status_only.metadata.resource_version = Some("11".into());
    status_only.status = Some(ListenerSetStatus {
        running: 3,
        ..Default::default()
    });
    assert_eq!(beyond_status(&status_only), base, "a status write wakes nothing");
    let changes: [fn(&mut ListenerSet); 6] = [
        |s| s.metadata.generation = Some(2),
        |s| s.metadata.annotations = Some([("baton.dev/recover".to_string(), "1".to_string())].into()),
        |s| s.metadata.labels = Some([("team".to_string(), "a".to_string())].into()),
        |s| s.metadata.finalizers = Some(vec!["baton.dev/listeners".into()]),
        |s| {
            let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
            s.metadata.deletion_timestamp = Some(now);
        },
        |s| s.metadata.uid = Some("u2".into()),
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut changed = set.clone();
        change(&mut changed);
        assert_ne!(beyond_status(&changed), base, "change {i} wakes the set");
    }
}
