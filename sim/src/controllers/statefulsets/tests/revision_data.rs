//! ControllerRevisions: their data, names and hashes, and the template they restore.
use serde_json::json;

use super::super::revisions::{self, fnv1_32, RevisionView, HASH_LABEL};
use super::set;

#[test]
fn the_hash_is_go_fnv32_over_the_data_and_collision_count_safe_encoded() {
    // Go's hash/fnv New32 (FNV-1), not New32a.
    assert_eq!(fnv1_32(&[b""]), 0x811c_9dc5);
    assert_eq!(fnv1_32(&[b"a"]), 0x050c_5d7e);
    assert_eq!(fnv1_32(&[b"foo", b"bar"]), 0x31f0_b262);
    let data = json!({"spec": {"template": {"$patch": "replace"}}});
    let raw = br#"{"spec":{"template":{"$patch":"replace"}}}"#;
    let decimal = fnv1_32(&[raw, b"0"]).to_string();
    // rand.SafeEncodeString maps the digits 0-9 to "456789bcdf".
    let expected: String = decimal
        .bytes()
        .map(|d| char::from(b"456789bcdf"[usize::from(d - b'0')]))
        .collect();
    assert_eq!(revisions::hash(&data, 0), expected);
    assert_ne!(
        revisions::hash(&data, 0),
        revisions::hash(&data, 1),
        "the collision count changes the name"
    );
    // Go's encoder escapes HTML characters in strings; the hash is over its bytes.
    let html = json!({"a": "x && y <z>"});
    let go = br#"{"a":"x \u0026\u0026 y \u003cz\u003e"}"#;
    let expected: String = fnv1_32(&[go, b"0"])
        .to_string()
        .bytes()
        .map(|d| char::from(b"456789bcdf"[usize::from(d - b'0')]))
        .collect();
    assert_eq!(revisions::hash(&html, 0), expected);
}

#[test]
fn a_revision_holds_the_template_as_a_replacing_patch_owned_by_the_set() {
    let mut s = set(1, json!({}));
    s.annotations = json!({"kubernetes.io/change-cause": "v1"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let data = revisions::patch_data(&s);
    assert_eq!(
        data,
        json!({"spec": {"template": {"$patch": "replace", "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}})
    );
    let r = revisions::new_revision(&s, 3, 0);
    let h = revisions::hash(&data, 0);
    assert_eq!(r["metadata"]["name"], format!("web-{h}"));
    assert_eq!(r["metadata"]["labels"], json!({"app": "web", HASH_LABEL: h}));
    assert_eq!(r["metadata"]["annotations"]["kubernetes.io/change-cause"], "v1");
    assert_eq!(r["metadata"]["ownerReferences"][0]["uid"], "u1");
    assert_eq!(r["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!((r["revision"].clone(), r["data"].clone()), (json!(3), data));
}

#[test]
fn applying_a_revision_restores_its_template() {
    let old = set(1, json!({}));
    let data = revisions::patch_data(&old);
    let mut new = set(
        1,
        json!({"template": {"metadata": {"labels": {"app": "web"}, "annotations": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:2"}, {"name": "side", "image": "s"}]}}}),
    );
    new.name = "web".into();
    assert_eq!(revisions::template_of(&new, &data), Ok(old.template.clone()));
}

#[test]
fn long_names_are_cut_and_revisions_sort_by_number_time_and_name() {
    let long = "a".repeat(250);
    assert_eq!(revisions::revision_name(&long, "h").len(), 225);
    let rev = |name: &str, n: i64, created: &str| RevisionView {
        name: name.into(),
        revision: n,
        data: json!(null),
        created: created.into(),
    };
    let mut rs = vec![
        rev("c", 2, "2026-01-01T00:00:00Z"),
        rev("b", 1, "2026-01-01T00:00:02Z"),
        rev("a", 1, "2026-01-01T00:00:02Z"),
        rev("d", 1, "2026-01-01T00:00:01Z"),
    ];
    revisions::sort(&mut rs);
    let names: Vec<&str> = rs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["d", "a", "b", "c"]);
}
