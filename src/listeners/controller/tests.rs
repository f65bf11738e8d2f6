//! Unit tests of the parent module.
use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use k8s_openapi::ByteString;

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn selectors() {
    let sel = LabelSelector {
        match_labels: Some(labels(&[("app", "a")])),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: "NotIn".into(),
            values: Some(vec!["db".into()]),
        }]),
    };
    assert!(selector_matches(&sel, Some(&labels(&[("app", "a")]))));
    assert!(!selector_matches(&sel, Some(&labels(&[("app", "a"), ("tier", "db")]))));
    assert!(!selector_matches(&sel, Some(&labels(&[("app", "b")]))));
    assert!(selector_matches(
        &LabelSelector::default(),
        Some(&labels(&[("app", "a")]))
    ));
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
