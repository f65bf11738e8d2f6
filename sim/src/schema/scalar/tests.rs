//! Unit tests of the parent module (through [`validate`], which applies them).
use crate::schema::tests::{c, obj, spec_schema};
use crate::schema::validate;
use serde_json::json;

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
