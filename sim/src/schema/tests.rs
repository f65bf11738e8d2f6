//! Unit tests of the parent module: the whole pipeline (prune, default, validate) on
//! realistic and on arbitrary inputs. Shared helpers for the submodules' tests live here too.
use super::*;
use serde_json::{json, Map, Value};

pub(super) fn c(reason: &str, field: &str, message: &str) -> Cause {
    Cause {
        reason: reason.to_string(),
        message: message.to_string(),
        field: field.to_string(),
    }
}

/// kube-apiserver's cause for a value of JSON type `got` at `field` where the schema wants
/// `want`.
pub(super) fn type_invalid(field: &str, got: &str, want: &str) -> Cause {
    let message = format!("Invalid value: \"{got}\": {field} in body must be of type {want}: \"{got}\"");
    c("FieldValueTypeInvalid", field, &message)
}

/// The schema of an object: `apiVersion`, `kind`, `metadata` and `properties` (`spec`,
/// `status`).
fn object_schema(properties: Value) -> Value {
    let mut all = json!({
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"}
    });
    if let (Some(all), Value::Object(more)) = (all.as_object_mut(), properties) {
        all.extend(more);
    }
    json!({"type": "object", "properties": all})
}

pub(super) fn spec_schema(spec_props: Value) -> Value {
    object_schema(json!({"spec": {"type": "object", "properties": spec_props}}))
}

pub(super) fn obj(spec: Value) -> Value {
    json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec})
}

// ----- pipeline -----

#[test]
fn prune_drops_non_nullable_nulls_and_defaults_fill_them() {
    let s = spec_schema(json!({
        "a": {"type": "string"},
        "b": {"type": "string", "nullable": true},
        "c": {"type": "string", "default": "dc"},
        "d": {"type": "string", "nullable": true, "default": "dd"},
        "m": {"type": "object", "additionalProperties": {"type": "string"}},
        "l": {"type": "array", "items": {"type": "string"}}
    }));
    let mut o = obj(json!({
        "a": null, "b": null, "c": null, "d": null,
        "m": {"k": null}, "l": ["x", null]
    }));
    let pruned = prune_unknown(&mut o, &s);
    assert!(pruned.is_empty(), "{pruned:?}");
    apply_defaults(&mut o, &s);
    assert_eq!(
        o["spec"],
        json!({"b": null, "c": "dc", "d": null, "m": {}, "l": ["x", null]})
    );
    // list elements cannot be dropped: the null still fails validation
    let errs = validate(&o, &s);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec.l[1]");
}

// ----- realistic CRD -----

fn rollout_schema() -> Value {
    object_schema(json!({
        "spec": {
            "type": "object",
            "required": ["selector", "template"],
            "properties": {
                "replicas": {"type": "integer", "format": "int32", "minimum": 0, "default": 1},
                "paused": {"type": "boolean"},
                "revisionHistoryLimit": {"type": "integer", "nullable": true},
                "selector": {
                    "type": "object",
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                },
                "strategy": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "type": {"type": "string", "enum": ["Canary", "BlueGreen"], "default": "Canary"},
                        "batches": {
                            "type": "array",
                            "maxItems": 4,
                            "items": {
                                "x-kubernetes-int-or-string": true,
                                "anyOf": [{"type": "integer"}, {"type": "string"}],
                                "pattern": "^[0-9]+%?$"
                            }
                        },
                        "steps": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "setWeight": {"type": "integer", "minimum": 0, "maximum": 100},
                                    "pause": {
                                        "type": "object",
                                        "properties": {"duration": {"type": "string", "default": "30s"}}
                                    }
                                }
                            }
                        }
                    }
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                },
                "x-kubernetes-validations": {"type": "string"}
            },
            "x-kubernetes-validations": [{"rule": "self.replicas < 0", "message": "ignored"}]
        },
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string"},
                "updatedAt": {"type": "string", "format": "date-time"}
            }
        }
    }))
}

#[test]
fn rollout_happy_path() {
    let s = rollout_schema();
    let mut o = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "revisionHistoryLimit": null,
            "strategy": {"batches": [1, "50%", 3], "steps": [{"setWeight": 20, "pause": {}}, {"pause": {"duration": "1m"}}], "unknown": 1},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}
            }
        },
        "status": {"phase": "Healthy", "updatedAt": "2024-05-01T10:00:00Z", "junk": {}}
    });
    let pruned = prune_unknown(&mut o, &s);
    assert_eq!(pruned, vec!["spec.strategy.unknown", "status.junk"]);
    apply_defaults(&mut o, &s);
    assert_eq!(o["spec"]["replicas"], json!(1));
    assert_eq!(o["spec"]["strategy"]["type"], json!("Canary"));
    assert_eq!(o["spec"]["strategy"]["steps"][0]["pause"]["duration"], json!("30s"));
    assert_eq!(o["spec"]["strategy"]["steps"][1]["pause"]["duration"], json!("1m"));
    assert_eq!(o["spec"]["revisionHistoryLimit"], Value::Null);
    assert_eq!(
        o["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        json!(80)
    );
    assert_eq!(validate(&o, &s), vec![]);
}

#[test]
fn rollout_invalid() {
    let s = rollout_schema();
    let mut o = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": -2,
            "paused": "yes",
            "strategy": {"type": "Linear", "batches": [1, "x", true, 4, 5], "steps": [{"setWeight": 120}]},
            "selector": {"matchLabels": {"app": 7}}
        }
    });
    prune_unknown(&mut o, &s);
    apply_defaults(&mut o, &s);
    let errs = validate(&o, &s);
    let want = vec![
        c(
            "FieldValueTypeInvalid",
            "spec.paused",
            r#"Invalid value: "string": spec.paused in body must be of type boolean: "string""#,
        ),
        c(
            "FieldValueInvalid",
            "spec.replicas",
            "Invalid value: -2: spec.replicas in body should be greater than or equal to 0",
        ),
        c(
            "FieldValueTypeInvalid",
            "spec.selector.matchLabels.app",
            r#"Invalid value: "integer": spec.selector.matchLabels.app in body must be of type string: "integer""#,
        ),
        c(
            "FieldValueInvalid",
            "spec.strategy.batches[1]",
            r#"Invalid value: "x": spec.strategy.batches[1] in body should match '^[0-9]+%?$'"#,
        ),
        c(
            "FieldValueTypeInvalid",
            "spec.strategy.batches[2]",
            r#"Invalid value: "boolean": spec.strategy.batches[2] in body must be of type integer,string: "boolean""#,
        ),
        c(
            "FieldValueInvalid",
            "<nil>",
            r#"Invalid value: "": "spec.strategy.batches[2]" must validate at least one schema (anyOf)"#,
        ),
        c(
            "FieldValueTypeInvalid",
            "spec.strategy.batches[2]",
            r#"Invalid value: "boolean": spec.strategy.batches[2] in body must be of type integer: "boolean""#,
        ),
        c(
            "FieldValueTooMany",
            "spec.strategy.batches",
            "Too many: 5: must have at most 4 items",
        ),
        c(
            "FieldValueInvalid",
            "spec.strategy.steps[0].setWeight",
            "Invalid value: 120: spec.strategy.steps[0].setWeight in body should be less than or equal to 100",
        ),
        c(
            "FieldValueNotSupported",
            "spec.strategy.type",
            r#"Unsupported value: "Linear": supported values: "Canary", "BlueGreen""#,
        ),
        c("FieldValueRequired", "spec.template", "Required value"),
    ];
    assert_eq!(errs, want);
}

// ----- robustness -----

/// Tiny deterministic PRNG so the test needs no extra crates.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[(self.next() as usize) % xs.len()]
    }
}

const KEYS: &[&str] = &[
    "type",
    "properties",
    "items",
    "additionalProperties",
    "required",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "format",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "nullable",
    "default",
    "multipleOf",
    "metadata",
    "spec",
    "a",
    "b",
];
const STRS: &[&str] = &[
    "object",
    "array",
    "string",
    "integer",
    "number",
    "boolean",
    "null",
    "date-time",
    "int32",
    "uuid",
    "(",
    "^a+$",
    "[",
    "",
    "a",
    "b",
    "metadata",
    "2024-01-01T00:00:00Z",
];

fn random_value(r: &mut Lcg, depth: usize) -> Value {
    let kind = if depth > 4 { r.next() % 5 } else { r.next() % 8 };
    match kind {
        0 => Value::Null,
        1 => Value::Bool(r.next().is_multiple_of(2)),
        2 => json!((r.next() % 21) as i64 - 10),
        3 => match r.next() % 5 {
            0 => json!(0.5),
            1 => json!(-1e300),
            2 => json!(u64::MAX),
            3 => json!(i64::MIN),
            _ => json!(1e-9),
        },
        4 => Value::String(r.pick(STRS).to_string()),
        5 | 6 => {
            let mut m = Map::new();
            for _ in 0..(r.next() % 5) {
                m.insert(r.pick(KEYS).to_string(), random_value(r, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..(r.next() % 4)).map(|_| random_value(r, depth + 1)).collect()),
    }
}

#[test]
fn arbitrary_inputs_never_panic() {
    let mut r = Lcg(42);
    for _ in 0..4000 {
        let schema = random_value(&mut r, 0);
        let mut data = random_value(&mut r, 0);
        let _ = validate(&data, &schema);
        let _ = validate(&schema, &data);
        apply_defaults(&mut data, &schema);
        let _ = prune_unknown(&mut data, &schema);
        let _ = validate(&data, &schema);
    }
    // some hand-made malformed schemas
    let malformed = [
        json!(null),
        json!(true),
        json!([1, 2]),
        json!({"type": 5, "properties": [], "items": "x", "required": "a"}),
        json!({"minimum": "0", "maxLength": -1, "minLength": 1e300, "multipleOf": 0}),
        json!({"multipleOf": -3, "maximum": 1e308}),
        json!({"type": ["string", "null"], "enum": "x", "pattern": 3}),
        json!({"anyOf": {}, "oneOf": [null, 1], "allOf": [[]], "not": "x"}),
        json!({"additionalProperties": 3, "maxProperties": "1"}),
        json!({"items": [{"type": "string"}], "uniqueItems": true}),
    ];
    let data = [
        json!({"a": [1, "b", null, {"c": 1.5}]}),
        json!(-5),
        json!(2.5),
        json!(u64::MAX),
        json!("x"),
        json!([[], [], {}]),
    ];
    for s in &malformed {
        for d in &data {
            let mut d = d.clone();
            let _ = validate(&d, s);
            apply_defaults(&mut d, s);
            let _ = prune_unknown(&mut d, s);
        }
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    let mut schema = json!({"type": "string"});
    let mut data = json!("x");
    for _ in 0..1000 {
        schema = json!({"type": "array", "items": schema});
        data = json!([data]);
    }
    let _ = validate(&data, &schema);
    apply_defaults(&mut data, &schema);
    let _ = prune_unknown(&mut data, &schema);
    // drop iteratively to keep the test itself from overflowing in Drop
    let mut cur = data;
    while let Value::Array(mut v) = cur {
        cur = v.pop().unwrap_or(Value::Null);
    }
    let mut cur = schema;
    while let Value::Object(mut m) = cur {
        cur = m.remove("items").unwrap_or(Value::Null);
    }
}
