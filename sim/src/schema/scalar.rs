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
                out.push(factor_not_positive(path, factor));
            } else if fi == 0 {
                // kube-openapi would divide by zero here; use the float check instead.
                if !float_multiple_of(i as f64, factor) {
                    out.push(not_multiple_of(path, &bad, &go_float(factor)));
                }
            } else if i.checked_rem(fi).unwrap_or(0) != 0 {
                out.push(not_multiple_of(path, &bad, &fi.to_string()));
            }
        }
        if let Some(m) = minimum {
            let mi = m as i64;
            if (!excl_min && i < mi) || (excl_min && i <= mi) {
                out.push(out_of_bound(path, &bad, Bound::Minimum, excl_min, &mi.to_string()));
            }
        }
        if let Some(m) = maximum {
            let mi = m as i64;
            if (!excl_max && i > mi) || (excl_max && i >= mi) {
                out.push(out_of_bound(path, &bad, Bound::Maximum, excl_max, &mi.to_string()));
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
            out.push(factor_not_positive(path, factor));
        } else if !float_multiple_of(f, factor) {
            out.push(not_multiple_of(path, &bad, &go_float(factor)));
        }
    }
    if let Some(m) = minimum {
        if (!excl_min && f < m) || (excl_min && f <= m) {
            out.push(out_of_bound(path, &bad, Bound::Minimum, excl_min, &go_float(m)));
        }
    }
    if let Some(m) = maximum {
        if (!excl_max && f > m) || (excl_max && f >= m) {
            out.push(out_of_bound(path, &bad, Bound::Maximum, excl_max, &go_float(m)));
        }
    }
}

/// kube-openapi's `MultipleOfMustBePositive`.
fn factor_not_positive(path: &str, factor: f64) -> Cause {
    let shown = go_float(factor);
    invalid(
        path,
        &shown,
        &format!("factor MultipleOf declared for {path} must be positive: {shown}"),
    )
}

/// kube-openapi's `NotMultipleOf`, with the factor as the check used it.
fn not_multiple_of(path: &str, bad: &str, factor: &str) -> Cause {
    invalid(path, bad, &format!("{path} in body should be a multiple of {factor}"))
}

/// Which bound a number broke.
#[derive(Clone, Copy)]
enum Bound {
    Minimum,
    Maximum,
}

/// kube-openapi's `ExceedsMinimum` / `ExceedsMaximum`, with the bound as the check compared it.
fn out_of_bound(path: &str, bad: &str, bound: Bound, exclusive: bool, limit: &str) -> Cause {
    let rel = match (bound, exclusive) {
        (Bound::Minimum, true) => "greater than",
        (Bound::Minimum, false) => "greater than or equal to",
        (Bound::Maximum, true) => "less than",
        (Bound::Maximum, false) => "less than or equal to",
    };
    invalid(path, bad, &format!("{path} in body should be {rel} {limit}"))
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
