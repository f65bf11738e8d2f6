//! String and number constraints: maxLength/minLength/pattern, multipleOf and
//! minimum/maximum (exclusive or not), with kube-openapi's wording.

use serde_json::Value;

use super::access::{flag, int_kw, kw, num_kw};
use super::cause::{cause, invalid, REASON_TOO_LONG};
use super::regex_cache::regex_is_match;
use super::render::go_quote;
use super::Cause;
use crate::go_format::go_float;

pub(super) fn check_string(st: &str, s: &Value, path: &str, out: &mut Vec<Cause>) {
    // kube-openapi's string validator stops at the first failure.
    let len = i64::try_from(st.chars().count()).unwrap_or(i64::MAX);
    if let Some(max) = int_kw(s, "maxLength") {
        if len > max {
            out.push(cause(
                REASON_TOO_LONG,
                path,
                format!("Too long: may not be longer than {max}"),
            ));
            return;
        }
    }
    if let Some(min) = int_kw(s, "minLength") {
        if len < min {
            out.push(invalid(
                path,
                &go_quote(st),
                &format!("{path} in body should be at least {min} chars long"),
            ));
            return;
        }
    }
    if let Some(Value::String(pattern)) = kw(s, "pattern") {
        if pattern.is_empty() {
            return;
        }
        match regex_is_match(pattern, st) {
            Ok(true) => {}
            Ok(false) => out.push(invalid(
                path,
                &go_quote(st),
                &format!("{path} in body should match '{pattern}'"),
            )),
            Err(e) => out.push(invalid(
                path,
                &go_quote(st),
                &format!("{path} in body should match '{pattern}, but pattern is invalid: {e}'"),
            )),
        }
    }
}

pub(super) fn check_number(n: &serde_json::Number, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let multiple_of = num_kw(s, "multipleOf");
    let minimum = num_kw(s, "minimum");
    let maximum = num_kw(s, "maximum");
    let excl_min = flag(s, "exclusiveMinimum");
    let excl_max = flag(s, "exclusiveMaximum");

    if let Some(i) = n.as_i64() {
        // Native int64 comparisons, with the bound truncated to int64 as kube-openapi does.
        let bad = i.to_string();
        if let Some(factor) = multiple_of {
            let fi = factor as i64;
            if factor < 0.0 || fi < 0 {
                out.push(invalid(
                    path,
                    &go_float(factor),
                    &format!(
                        "factor MultipleOf declared for {path} must be positive: {}",
                        go_float(factor)
                    ),
                ));
            } else if fi == 0 {
                // kube-openapi would divide by zero here; use the float check instead.
                if !float_multiple_of(i as f64, factor) {
                    out.push(invalid(
                        path,
                        &bad,
                        &format!("{path} in body should be a multiple of {}", go_float(factor)),
                    ));
                }
            } else if i.checked_rem(fi).unwrap_or(0) != 0 {
                out.push(invalid(
                    path,
                    &bad,
                    &format!("{path} in body should be a multiple of {fi}"),
                ));
            }
        }
        if let Some(m) = minimum {
            let mi = m as i64;
            if (!excl_min && i < mi) || (excl_min && i <= mi) {
                let rel = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                out.push(invalid(path, &bad, &format!("{path} in body should be {rel} {mi}")));
            }
        }
        if let Some(m) = maximum {
            let mi = m as i64;
            if (!excl_max && i > mi) || (excl_max && i >= mi) {
                let rel = if excl_max { "less than" } else { "less than or equal to" };
                out.push(invalid(path, &bad, &format!("{path} in body should be {rel} {mi}")));
            }
        }
        return;
    }

    let Some(f) = n.as_f64() else {
        return;
    };
    let bad = go_float(f);
    if let Some(factor) = multiple_of {
        if factor < 0.0 {
            out.push(invalid(
                path,
                &go_float(factor),
                &format!(
                    "factor MultipleOf declared for {path} must be positive: {}",
                    go_float(factor)
                ),
            ));
        } else if !float_multiple_of(f, factor) {
            out.push(invalid(
                path,
                &bad,
                &format!("{path} in body should be a multiple of {}", go_float(factor)),
            ));
        }
    }
    if let Some(m) = minimum {
        if (!excl_min && f < m) || (excl_min && f <= m) {
            let rel = if excl_min {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(invalid(
                path,
                &bad,
                &format!("{path} in body should be {rel} {}", go_float(m)),
            ));
        }
    }
    if let Some(m) = maximum {
        if (!excl_max && f > m) || (excl_max && f >= m) {
            let rel = if excl_max { "less than" } else { "less than or equal to" };
            out.push(invalid(
                path,
                &bad,
                &format!("{path} in body should be {rel} {}", go_float(m)),
            ));
        }
    }
}

fn float_multiple_of(data: f64, factor: f64) -> bool {
    let mult = if factor < 1.0 {
        1.0 / factor * data
    } else {
        data / factor
    };
    is_float64_json_integer(mult)
}

/// go-openapi's `swag.IsFloat64AJSONInteger`, approximately.
pub(super) fn is_float64_json_integer(f: f64) -> bool {
    if !f.is_finite() || f.abs() > 9_007_199_254_740_991.0 {
        return false;
    }
    let r = f.round();
    if f == r {
        return true;
    }
    let diff = (f - r).abs();
    diff / (f.abs() + r.abs()) < 1e-9
}

#[cfg(test)]
mod tests;
