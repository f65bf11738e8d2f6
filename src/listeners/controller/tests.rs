//! Unit tests of the parent module.
use super::*;
use k8s_openapi::ByteString;

/// The wrapper adds only this to `api::pod::selector_matches` (whose tests hold the semantics):
/// a pod without labels has empty labels.
#[test]
fn selectors() {
    let app_a: BTreeMap<String, String> = [("app".to_string(), "a".to_string())].into();
    let sel = LabelSelector {
        match_labels: Some(app_a.clone()),
        ..Default::default()
    };
    assert!(selector_matches(&sel, Some(&app_a)));
    assert!(!selector_matches(&sel, None));
    assert!(selector_matches(&LabelSelector::default(), Some(&app_a)));
    assert!(selector_matches(&LabelSelector::default(), None));
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
