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
