//! Unit tests of the parent module.
use super::*;
use crate::schema::tests::{obj, spec_schema};
use serde_json::json;

// ----- pruning -----

#[test]
fn prune_basic_and_paths() {
    let s = spec_schema(json!({
        "keep": {"type": "string"},
        "nested": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "list": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}},
        "scalar": {"x-kubernetes-int-or-string": true}
    }));
    let mut o = json!({
        "apiVersion": "x.io/v1",
        "kind": "X",
        "metadata": {"name": "a", "whatever": 1},
        "status": {"foo": 1},
        "spec": {
            "keep": "k",
            "foo": 1,
            "nested": {"a": 1, "b": {"c": 1}},
            "list": [{"n": "x", "m": 1}, {"z": 2}],
            "scalar": {"oops": 1}
        }
    });
    let pruned = prune_unknown(&mut o, &s);
    assert_eq!(
        pruned,
        vec![
            "spec.foo",
            "spec.list[0].m",
            "spec.list[1].z",
            "spec.nested.b",
            "spec.scalar.oops",
            "status"
        ]
    );
    assert_eq!(
        o,
        json!({
            "apiVersion": "x.io/v1",
            "kind": "X",
            "metadata": {"name": "a", "whatever": 1},
            "spec": {"keep": "k", "nested": {"a": 1}, "list": [{"n": "x"}, {}], "scalar": {}}
        })
    );
}

#[test]
fn prune_root_meta_kept_even_without_schema_properties() {
    let mut o = json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "spec": {"a": 1}});
    let pruned = prune_unknown(&mut o, &json!({"type": "object"}));
    assert_eq!(pruned, vec!["spec"]);
    assert_eq!(o, json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}}));
}

#[test]
fn prune_preserve_unknown_fields() {
    let s = spec_schema(json!({
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                 "properties": {"known": {"type": "object", "properties": {"k": {"type": "string"}}}}},
        "list": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
    }));
    let mut o = obj(json!({
        "free": {"anything": {"deep": [1, {"x": 2}]}, "known": {"k": "v", "drop": 1}},
        "list": [{"a": {"b": 1}}]
    }));
    let pruned = prune_unknown(&mut o, &s);
    // declared fields below a preserve-unknown-fields node are still pruned
    assert_eq!(pruned, vec!["spec.free.known.drop"]);
    assert_eq!(o["spec"]["free"]["anything"], json!({"deep": [1, {"x": 2}]}));
    assert_eq!(o["spec"]["list"], json!([{"a": {"b": 1}}]));

    // a preserve-unknown-fields root keeps everything
    let mut o2 = json!({"spec": {"x": 1}, "other": true});
    assert!(prune_unknown(
        &mut o2,
        &json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
    )
    .is_empty());
    assert_eq!(o2, json!({"spec": {"x": 1}, "other": true}));
}

#[test]
fn prune_embedded_resource() {
    let s = spec_schema(json!({
        "template": {
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}
        },
        "plain": {"type": "object", "properties": {"spec": {"type": "object"}}}
    }));
    let mut o = obj(json!({
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"}}, "spec": {"x": "1", "y": 2}, "extra": 1},
        "plain": {"apiVersion": "v1", "kind": "Pod", "metadata": {}}
    }));
    let pruned = prune_unknown(&mut o, &s);
    assert_eq!(
        pruned,
        vec![
            "spec.plain.apiVersion",
            "spec.plain.kind",
            "spec.plain.metadata",
            "spec.template.extra",
            "spec.template.spec.y"
        ]
    );
    assert_eq!(
        o["spec"]["template"],
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"}}, "spec": {"x": "1"}})
    );
}

#[test]
fn prune_additional_properties() {
    let s = spec_schema(json!({
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "objs": {"type": "object", "additionalProperties": {"type": "object", "properties": {"a": {"type": "integer"}}}},
        "any": {"type": "object", "additionalProperties": true},
        "none": {"type": "object"}
    }));
    let mut o = obj(json!({
        "labels": {"x": "1", "y": "2"},
        "objs": {"k": {"a": 1, "b": 2}},
        "any": {"s": "kept", "o": {"emptied": 1}},
        "none": {"gone": 1}
    }));
    let pruned = prune_unknown(&mut o, &s);
    assert_eq!(pruned, vec!["spec.any.o.emptied", "spec.none.gone", "spec.objs.k.b"]);
    assert_eq!(
        o["spec"],
        json!({"labels": {"x": "1", "y": "2"}, "objs": {"k": {"a": 1}}, "any": {"s": "kept", "o": {}}, "none": {}})
    );
}
