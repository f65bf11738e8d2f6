//! Unit tests of the parent module.
use super::*;

#[test]
fn go_json_writes_floats_like_encoding_json() {
    assert_eq!(go_json(&serde_json::json!(3.0)), "3");
    assert_eq!(go_json(&serde_json::json!(1.5e-6)), "0.0000015");
    assert_eq!(go_json(&serde_json::json!(1e21)), "1e+21");
    assert_eq!(go_json(&serde_json::json!(2.5e-7)), "2.5e-7");
}
