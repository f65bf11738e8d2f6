//! Unit tests of the parent module.
use super::*;

#[test]
fn go_quote_escapes() {
    assert_eq!(go_quote("abc"), "\"abc\"");
    assert_eq!(go_quote("a\"b\\c\n\t"), "\"a\\\"b\\\\c\\n\\t\"");
    assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
    assert_eq!(go_quote("é✓"), "\"é✓\"");
}

#[test]
fn go_json_writes_floats_like_encoding_json() {
    assert_eq!(go_json(&serde_json::json!(3.0)), "3");
    assert_eq!(go_json(&serde_json::json!(1.5e-6)), "0.0000015");
    assert_eq!(go_json(&serde_json::json!(1e21)), "1e+21");
    assert_eq!(go_json(&serde_json::json!(2.5e-7)), "2.5e-7");
}
