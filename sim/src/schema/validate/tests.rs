//! Unit tests of the parent module.
use super::*;
use crate::schema::tests::{c, obj, spec_schema, type_invalid};
use serde_json::json;

// ----- type -----

#[test]
fn type_mismatch_integer() {
    let s = spec_schema(json!({"replicas": {"type": "integer"}}));
    let errs = validate(&obj(json!({"replicas": "x"})), &s);
    assert_eq!(errs, vec![type_invalid("spec.replicas", "string", "integer")]);
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
        assert_eq!(errs, vec![type_invalid("spec.f", got, &want)]);
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
    assert_eq!(errs, vec![type_invalid("spec.port", "boolean", "integer,string")]);
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
            type_invalid("spec.port", "number", "integer,string"),
            c(
                "FieldValueInvalid",
                "<nil>",
                r#"Invalid value: "": "spec.port" must validate at least one schema (anyOf)"#
            ),
            type_invalid("spec.port", "number", "integer"),
        ]
    );
}

// ----- nullable / null handling -----

#[test]
fn null_not_nullable_is_type_error() {
    let s = spec_schema(json!({"a": {"type": "string"}, "b": {"type": "string", "nullable": true}}));
    let errs = validate(&obj(json!({"a": null, "b": null})), &s);
    assert_eq!(errs, vec![type_invalid("spec.a", "null", "string")]);
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
    assert!(errs.contains(&type_invalid("spec.labels.num", "integer", "string")));
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
