//! Unit tests of the parent module.
use super::*;
use crate::schema::tests::{obj, spec_schema};
use serde_json::json;

// ----- defaulting -----

#[test]
fn defaults_nested_items_and_maps() {
    let s = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "default": {},
                "properties": {
                    "replicas": {"type": "integer", "default": 1},
                    "strategy": {
                        "type": "object",
                        "default": {"type": "Canary"},
                        "properties": {
                            "type": {"type": "string"},
                            "maxSurge": {"x-kubernetes-int-or-string": true, "default": "25%"}
                        }
                    },
                    "existing": {"type": "string", "default": "no"},
                    "steps": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"weight": {"type": "integer", "default": 10}}}
                    },
                    "pools": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"size": {"type": "integer", "default": 3}}
                        }
                    },
                    "unset": {"type": "object", "properties": {"x": {"type": "integer", "default": 5}}}
                }
            }
        }
    });
    let mut o =
        json!({"spec": {"existing": "yes", "steps": [{}, {"weight": 50}], "pools": {"a": {}, "b": {"size": 1}}}});
    apply_defaults(&mut o, &s);
    assert_eq!(
        o,
        json!({"spec": {
            "replicas": 1,
            "existing": "yes",
            "strategy": {"type": "Canary", "maxSurge": "25%"},
            "steps": [{"weight": 10}, {"weight": 50}],
            "pools": {"a": {"size": 3}, "b": {"size": 1}}
        }})
    );
    // defaults inside a defaulted parent apply too
    let mut empty = json!({});
    apply_defaults(&mut empty, &s);
    assert_eq!(
        empty,
        json!({"spec": {"replicas": 1, "existing": "no", "strategy": {"type": "Canary", "maxSurge": "25%"}}})
    );
}

#[test]
fn defaults_ignore_null_default_and_composition() {
    let s = spec_schema(json!({
        "a": {"type": "string", "default": null},
        "b": {"anyOf": [{"default": "x"}]}
    }));
    let mut o = obj(json!({}));
    apply_defaults(&mut o, &s);
    assert_eq!(o["spec"], json!({}));
}
