//! Unit tests of the parent module.
use super::*;

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
