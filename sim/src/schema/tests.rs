//! Unit tests of the parent module.
use super::*;
use serde_json::json;

fn c(reason: &str, field: &str, message: &str) -> Cause {
    Cause {
        reason: reason.to_string(),
        message: message.to_string(),
        field: field.to_string(),
    }
}

fn spec_schema(spec_props: Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": spec_props}
        }
    })
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec})
}

// ----- go rendering helpers -----

#[test]
fn go_float_formatting() {
    assert_eq!(go_float(0.0), "0");
    assert_eq!(go_float(1.0), "1");
    assert_eq!(go_float(-1.5), "-1.5");
    assert_eq!(go_float(0.5), "0.5");
    assert_eq!(go_float(123456.0), "123456");
    assert_eq!(go_float(1e6), "1e+06");
    assert_eq!(go_float(1234567.0), "1.234567e+06");
    assert_eq!(go_float(0.0001), "0.0001");
    assert_eq!(go_float(0.00001), "1e-05");
    assert_eq!(go_float(1.5e-7), "1.5e-07");
    assert_eq!(go_float(1e100), "1e+100");
}

#[test]
fn go_quote_escapes() {
    assert_eq!(go_quote("abc"), "\"abc\"");
    assert_eq!(go_quote("a\"b\\c\n\t"), "\"a\\\"b\\\\c\\n\\t\"");
    assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
    assert_eq!(go_quote("é✓"), "\"é✓\"");
}

// ----- type -----

#[test]
fn type_mismatch_integer() {
    let s = spec_schema(json!({"replicas": {"type": "integer"}}));
    let errs = validate(&obj(json!({"replicas": "x"})), &s);
    assert_eq!(
        errs,
        vec![c(
            "FieldValueTypeInvalid",
            "spec.replicas",
            r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        )]
    );
}

#[test]
fn type_names_for_each_kind() {
    let cases = [
        (json!({"type": "string"}), json!(1), "integer"),
        (json!({"type": "string"}), json!(1.5), "number"),
        (json!({"type": "string"}), json!(true), "boolean"),
        (json!({"type": "string"}), json!([1]), "array"),
        (json!({"type": "string"}), json!({"a": 1}), "object"),
        (json!({"type": "object"}), json!("s"), "string"),
        (json!({"type": "boolean"}), json!("true"), "string"),
        (json!({"type": "array"}), json!({}), "object"),
    ];
    for (schema, value, got) in cases {
        let want = schema["type"].as_str().unwrap_or_default().to_string();
        let s = spec_schema(json!({ "f": schema }));
        let errs = validate(&obj(json!({ "f": value })), &s);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
        assert_eq!(
            errs[0].message,
            format!("Invalid value: \"{got}\": spec.f in body must be of type {want}: \"{got}\"")
        );
    }
}

#[test]
fn numeric_type_coercions() {
    let s = spec_schema(json!({
        "i": {"type": "integer"},
        "n": {"type": "number"}
    }));
    // integral floats are integers, integers are numbers
    assert!(validate(&obj(json!({"i": 3.0, "n": 3})), &s).is_empty());
    let errs = validate(&obj(json!({"i": 3.5})), &s);
    assert_eq!(
        errs[0].message,
        r#"Invalid value: "number": spec.i in body must be of type integer: "number""#
    );
}

#[test]
fn int_or_string() {
    let s = spec_schema(json!({
        "port": {"x-kubernetes-int-or-string": true}
    }));
    assert!(validate(&obj(json!({"port": 80})), &s).is_empty());
    assert!(validate(&obj(json!({"port": "http"})), &s).is_empty());
    let errs = validate(&obj(json!({"port": true})), &s);
    assert_eq!(
        errs,
        vec![c(
            "FieldValueTypeInvalid",
            "spec.port",
            r#"Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        )]
    );
}

#[test]
fn int_or_string_with_any_of() {
    let s = spec_schema(json!({
        "port": {
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}]
        }
    }));
    assert!(validate(&obj(json!({"port": 1})), &s).is_empty());
    let errs = validate(&obj(json!({"port": 1.5})), &s);
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueTypeInvalid",
                "spec.port",
                r#"Invalid value: "number": spec.port in body must be of type integer,string: "number""#
            ),
            c(
                "FieldValueInvalid",
                "<nil>",
                r#"Invalid value: "": "spec.port" must validate at least one schema (anyOf)"#
            ),
            c(
                "FieldValueTypeInvalid",
                "spec.port",
                r#"Invalid value: "number": spec.port in body must be of type integer: "number""#
            ),
        ]
    );
}

// ----- nullable / null handling -----

#[test]
fn null_not_nullable_is_type_error() {
    let s = spec_schema(json!({"a": {"type": "string"}, "b": {"type": "string", "nullable": true}}));
    let errs = validate(&obj(json!({"a": null, "b": null})), &s);
    assert_eq!(
        errs,
        vec![c(
            "FieldValueTypeInvalid",
            "spec.a",
            r#"Invalid value: "null": spec.a in body must be of type string: "null""#
        )]
    );
}

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

#[test]
fn nullable_enum_needs_null_in_enum() {
    let s = spec_schema(json!({
        "a": {"type": "string", "nullable": true, "enum": ["x"]},
        "b": {"type": "string", "nullable": true, "enum": ["x", null]}
    }));
    let errs = validate(&obj(json!({"a": null, "b": null})), &s);
    assert_eq!(
        errs,
        vec![c(
            "FieldValueNotSupported",
            "spec.a",
            r#"Unsupported value: "null": supported values: "x""#
        )]
    );
}

// ----- required -----

#[test]
fn required_fields() {
    let s = json!({
        "type": "object",
        "required": ["spec", "metadata"],
        "properties": {
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["version", "name"],
                "properties": {
                    "version": {"type": "string"},
                    "name": {"type": "string"},
                    "batches": {
                        "type": "array",
                        "items": {"type": "object", "required": ["size"], "properties": {"size": {"type": "integer"}}}
                    }
                }
            }
        }
    });
    let errs = validate(&json!({"kind": "X"}), &s);
    assert_eq!(errs, vec![c("FieldValueRequired", "spec", "Required value")]);
    let errs = validate(&json!({"spec": {"name": "n", "batches": [{"size": 1}, {}]}}), &s);
    assert_eq!(
        errs,
        vec![
            c("FieldValueRequired", "spec.batches[1].size", "Required value"),
            c("FieldValueRequired", "spec.version", "Required value"),
        ]
    );
    // required only checks presence: an explicit null counts as present
    let errs = validate(&json!({"spec": {"name": "n", "version": null}}), &s);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
}

// ----- enum -----

#[test]
fn enum_values() {
    let s = spec_schema(json!({
        "mode": {"type": "string", "enum": ["a", "b"]},
        "level": {"type": "integer", "enum": [1, 2]}
    }));
    assert!(validate(&obj(json!({"mode": "a", "level": 2})), &s).is_empty());
    let errs = validate(&obj(json!({"mode": "bogus", "level": 3})), &s);
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueNotSupported",
                "spec.level",
                r#"Unsupported value: 3: supported values: "1", "2""#
            ),
            c(
                "FieldValueNotSupported",
                "spec.mode",
                r#"Unsupported value: "bogus": supported values: "a", "b""#
            ),
        ]
    );
    // float enum values match integers numerically
    let s2 = spec_schema(json!({"x": {"enum": [1.0, 2.5]}}));
    assert!(validate(&obj(json!({"x": 1})), &s2).is_empty());
    let errs = validate(&obj(json!({"x": {"a": 1}})), &s2);
    assert_eq!(
        errs[0].message,
        r#"Unsupported value: {"a":1}: supported values: "1", "2.5""#
    );
}

// ----- numbers -----

#[test]
fn minimum_maximum() {
    let s = spec_schema(json!({
        "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
        "ratio": {"type": "number", "minimum": 0.5, "exclusiveMinimum": true, "maximum": 1, "exclusiveMaximum": true}
    }));
    let errs = validate(&obj(json!({"replicas": -1, "ratio": 0.5})), &s);
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueInvalid",
                "spec.ratio",
                "Invalid value: 0.5: spec.ratio in body should be greater than 0.5"
            ),
            c(
                "FieldValueInvalid",
                "spec.replicas",
                "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
            ),
        ]
    );
    let errs = validate(&obj(json!({"replicas": 11, "ratio": 1.0})), &s);
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueInvalid",
                "spec.ratio",
                "Invalid value: 1: spec.ratio in body should be less than 1"
            ),
            c(
                "FieldValueInvalid",
                "spec.replicas",
                "Invalid value: 11: spec.replicas in body should be less than or equal to 10"
            ),
        ]
    );
    assert!(validate(&obj(json!({"replicas": 10, "ratio": 0.75})), &s).is_empty());
}

#[test]
fn multiple_of() {
    let s = spec_schema(json!({
        "i": {"type": "integer", "multipleOf": 5},
        "f": {"type": "number", "multipleOf": 0.5}
    }));
    assert!(validate(&obj(json!({"i": 15, "f": 1.5})), &s).is_empty());
    let errs = validate(&obj(json!({"i": 7, "f": 1.3})), &s);
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueInvalid",
                "spec.f",
                "Invalid value: 1.3: spec.f in body should be a multiple of 0.5"
            ),
            c(
                "FieldValueInvalid",
                "spec.i",
                "Invalid value: 7: spec.i in body should be a multiple of 5"
            ),
        ]
    );
}

// ----- strings -----

#[test]
fn string_constraints() {
    let s = spec_schema(json!({
        "long": {"type": "string", "maxLength": 3},
        "short": {"type": "string", "minLength": 3},
        "pat": {"type": "string", "pattern": "^[a-z]+$"},
        "both": {"type": "string", "maxLength": 2, "pattern": "^[0-9]+$"}
    }));
    let errs = validate(
        &obj(json!({"long": "abcd", "short": "ab", "pat": "A1", "both": "abc"})),
        &s,
    );
    assert_eq!(
        errs,
        vec![
            c("FieldValueTooLong", "spec.both", "Too long: may not be longer than 2"),
            c("FieldValueTooLong", "spec.long", "Too long: may not be longer than 3"),
            c(
                "FieldValueInvalid",
                "spec.pat",
                r#"Invalid value: "A1": spec.pat in body should match '^[a-z]+$'"#
            ),
            // only the first string failure is reported per value
            c(
                "FieldValueInvalid",
                "spec.short",
                r#"Invalid value: "ab": spec.short in body should be at least 3 chars long"#
            ),
        ]
    );
    // lengths count code points
    assert!(validate(&obj(json!({"long": "äöü"})), &s).is_empty());
}

#[test]
fn invalid_pattern_is_reported_not_panicking() {
    let s = spec_schema(json!({"p": {"type": "string", "pattern": "(unclosed"}}));
    let errs = validate(&obj(json!({"p": "x"})), &s);
    assert_eq!(errs.len(), 1);
    assert!(errs[0]
        .message
        .starts_with(r#"Invalid value: "x": spec.p in body should match '(unclosed, but pattern is invalid: "#));
}

// ----- formats -----

#[test]
fn formats() {
    let s = spec_schema(json!({
        "t": {"type": "string", "format": "date-time"},
        "d": {"type": "string", "format": "date"},
        "u": {"type": "string", "format": "uuid"},
        "ip": {"type": "string", "format": "ipv4"},
        "i32": {"type": "integer", "format": "int32"},
        "i64": {"type": "integer", "format": "int64"},
        "weird": {"type": "string", "format": "no-such-format"}
    }));
    let good = obj(json!({
        "t": "2024-02-29T12:30:00Z",
        "d": "2024-02-29",
        "u": "123e4567-e89b-12d3-a456-426614174000",
        "ip": "10.0.0.1",
        "i32": 5_000_000_000_i64,
        "i64": -3,
        "weird": "anything"
    }));
    assert_eq!(validate(&good, &s), vec![]);
    assert!(validate(&obj(json!({"t": "2024-01-01T10:00:00.123+02:00"})), &s).is_empty());
    let bad = obj(json!({
        "t": "yesterday",
        "d": "2023-02-29",
        "u": "nope",
        "ip": "10.0.0",
        "i32": "7"
    }));
    let errs = validate(&bad, &s);
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueTypeInvalid",
                "spec.d",
                r#"Invalid value: "2023-02-29": spec.d in body must be of type date: "2023-02-29""#
            ),
            c(
                "FieldValueTypeInvalid",
                "spec.i32",
                r#"Invalid value: "string": spec.i32 in body must be of type integer: "string""#
            ),
            c(
                "FieldValueTypeInvalid",
                "spec.ip",
                r#"Invalid value: "10.0.0": spec.ip in body must be of type ipv4: "10.0.0""#
            ),
            c(
                "FieldValueTypeInvalid",
                "spec.t",
                r#"Invalid value: "yesterday": spec.t in body must be of type date-time: "yesterday""#
            ),
            c(
                "FieldValueTypeInvalid",
                "spec.u",
                r#"Invalid value: "nope": spec.u in body must be of type uuid: "nope""#
            ),
        ]
    );
    assert!(is_date_time("2024-01-01t23:59:59z"));
    assert!(!is_date_time("2024-01-01T24:00:00Z"));
    assert!(!is_date_time("2024-01-01T10:00:00"));
    assert!(is_mac("00:1a:2b:3c:4d:5e"));
    assert!(is_cidr("10.0.0.0/8") && !is_cidr("10.0.0.0/33"));
    assert!(is_base64("aGVsbG8=") && !is_base64("aGVsbG8"));
}

// ----- arrays -----

#[test]
fn array_constraints() {
    let s = spec_schema(json!({
        "xs": {"type": "array", "minItems": 2, "items": {"type": "integer", "minimum": 0}},
        "ys": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
        "zs": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}
    }));
    let errs = validate(
        &obj(json!({"xs": [-1], "ys": ["a", "b", "c"], "zs": ["a", "b", "a"]})),
        &s,
    );
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueInvalid",
                "spec.xs[0]",
                "Invalid value: -1: spec.xs[0] in body should be greater than or equal to 0"
            ),
            c(
                "FieldValueInvalid",
                "spec.xs",
                "Invalid value: 1: spec.xs in body should have at least 2 items"
            ),
            c("FieldValueTooMany", "spec.ys", "Too many: 3: must have at most 2 items"),
            c(
                "FieldValueInvalid",
                "spec.zs",
                r#"Invalid value: "": spec.zs in body shouldn't contain duplicates"#
            ),
        ]
    );
    // 1 and 1.0 are different values for uniqueness (Go reflect.DeepEqual on int64/float64)
    let s2 = spec_schema(json!({"n": {"type": "array", "uniqueItems": true}}));
    assert!(validate(&obj(json!({"n": [1, 1.0]})), &s2).is_empty());
}

// ----- objects / maps -----

#[test]
fn object_property_counts() {
    let s = spec_schema(json!({
        "few": {"type": "object", "minProperties": 2, "required": ["zzz"], "additionalProperties": {"type": "string"}},
        "many": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}}
    }));
    let errs = validate(&obj(json!({"few": {"a": 1}, "many": {"a": "1", "b": "2"}})), &s);
    // min/maxProperties failures stop the rest of the object's validation
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueInvalid",
                "spec.few",
                "Invalid value: 1: spec.few in body should have at least 2 properties"
            ),
            c(
                "FieldValueTooMany",
                "spec.many",
                "Too many: 2: must have at most 1 items"
            ),
        ]
    );
}

#[test]
fn additional_properties_map_values() {
    let s = spec_schema(json!({
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
        "closed": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}
    }));
    let errs = validate(
        &obj(json!({"labels": {"ok": "abc", "num": 1, "long": "abcd"}, "closed": {"a": "x", "b": 1}})),
        &s,
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs.contains(&c(
        "FieldValueTypeInvalid",
        "spec.labels.num",
        r#"Invalid value: "integer": spec.labels.num in body must be of type string: "integer""#
    )));
    assert!(errs.contains(&c(
        "FieldValueTooLong",
        "spec.labels.long",
        "Too long: may not be longer than 3"
    )));
    assert!(errs.contains(&c(
        "FieldValueInvalid",
        "spec.closed",
        r#"Invalid value: "b": spec.closed.b in body is a forbidden property"#
    )));
}

#[test]
fn metadata_is_not_validated_at_root_only() {
    let s = json!({
        "type": "object",
        "required": ["metadata"],
        "properties": {
            "metadata": {"type": "string"},
            "spec": {"type": "object", "properties": {"metadata": {"type": "string"}}}
        }
    });
    let errs = validate(&json!({"metadata": {"name": "x"}, "spec": {"metadata": 1}}), &s);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec.metadata");
    assert!(validate(&json!({}), &s).is_empty());
}

#[test]
fn root_errors_have_nil_field() {
    let s = json!({"type": "object"});
    let errs = validate(&json!("str"), &s);
    assert_eq!(
        errs,
        vec![c(
            "FieldValueTypeInvalid",
            "<nil>",
            r#"Invalid value: "string":  in body must be of type object: "string""#
        )]
    );
}

// ----- composition -----

#[test]
fn one_of_all_of_not() {
    let s = spec_schema(json!({
        "one": {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        "all": {"allOf": [{"type": "string"}, {"type": "string", "minLength": 5}]},
        "not": {"type": "string", "not": {"enum": ["forbidden"]}}
    }));
    assert!(validate(&obj(json!({"one": {"a": 1}, "all": "hello", "not": "ok"})), &s).is_empty());
    let errs = validate(
        &obj(json!({"one": {"a": 1, "b": 2}, "all": "hey", "not": "forbidden"})),
        &s,
    );
    assert_eq!(
        errs,
        vec![
            c(
                "FieldValueInvalid",
                "spec.all",
                r#"Invalid value: "hey": spec.all in body should be at least 5 chars long"#
            ),
            c(
                "FieldValueInvalid",
                "<nil>",
                r#"Invalid value: "": "spec.all" must validate all the schemas (allOf)"#
            ),
            c(
                "FieldValueInvalid",
                "<nil>",
                r#"Invalid value: "": "spec.not" must not validate the schema (not)"#
            ),
            c(
                "FieldValueInvalid",
                "<nil>",
                r#"Invalid value: "": "spec.one" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
            ),
        ]
    );
    let errs = validate(&obj(json!({"one": {}})), &s);
    assert_eq!(
        errs[0].message,
        r#"Invalid value: "": "spec.one" must validate one and only one schema (oneOf). Found none valid"#
    );
    assert_eq!(errs[1], c("FieldValueRequired", "spec.one.a", "Required value"));
    let errs = validate(&obj(json!({"all": 1})), &s);
    assert_eq!(
        errs.last().map(|e| e.message.as_str()),
        Some(r#"Invalid value: "": "spec.all" must validate all the schemas (allOf). None validated"#)
    );
}

#[test]
fn many_errors_at_once() {
    let s = spec_schema(json!({
        "a": {"type": "integer"},
        "b": {"type": "string", "enum": ["x"]},
        "c": {"type": "array", "items": {"type": "boolean"}},
        "d": {"type": "object", "required": ["e"]}
    }));
    let errs = validate(&obj(json!({"a": "1", "b": "y", "c": [true, 1, "no"], "d": {}})), &s);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, vec!["spec.a", "spec.b", "spec.c[1]", "spec.c[2]", "spec.d.e"]);
}

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

// ----- realistic CRD -----

fn rollout_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
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
        }
    })
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
