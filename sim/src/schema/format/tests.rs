//! Unit tests of the parent module, directly and through [`validate`].
use super::*;
use crate::schema::tests::{c, obj, spec_schema};
use crate::schema::validate;
use serde_json::json;

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
