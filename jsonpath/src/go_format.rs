//! How Go writes a float64, for the texts kube-apiserver and kubectl produce with Go's own formatting.
//!
//! Both forms print the shortest digits that read back as the same float; they differ only in
//! where they switch to exponent form and how they write the exponent, so one layout serves
//! both ([`Style`]):
//! * `fmt`'s `%v` (strconv's `'g'` with the shortest precision, which decides on a fixed
//!   precision of 6): exponent form when the decimal exponent is below -4 or 6 and above, with
//!   at least two exponent digits (`1e+06`, `1.5e-05`, `123456`, `0.0001`). kube-apiserver
//!   prints with it what client-go's JSONPath prints (CRD printer columns of type `string`,
//!   through `fmt.Fprint`) and the values and bounds in validation messages
//!   (`field.Error.ErrorBody`, kube-openapi's `should be a multiple of %v`).
//! * `encoding/json` (ES6 number to string): exponent form below 1e-6 and from 1e21, the
//!   exponent without padding (`1e-7`, `1e+21`, `0.000001`, `100000000000000000000`). The API
//!   server writes JSON with it, and messages quote enum values as JSON.
use std::fmt::Write as _;

/// Which Go formatter to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `fmt.Sprint(f)`, `%v`.
    Fmt,
    /// `json.Marshal(f)`.
    Json,
}

/// `fmt.Sprint(f)` of a float64.
pub fn go_float(f: f64) -> String {
    format_float(f, Style::Fmt)
}

/// `json.Marshal(f)` of a float64 (NaN and infinities, which JSON cannot hold, as `%v` writes
/// them).
pub fn go_json_float(f: f64) -> String {
    format_float(f, Style::Json)
}

/// `f` with the shortest digits that read back as `f`, laid out like Go's `style`.
pub fn format_float(f: f64, style: Style) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits too: `-1.5e-7`.
    let sci = format!("{f:e}");
    let Some((mant, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let plain = match style {
        Style::Fmt => -4..6,
        Style::Json => -6..21,
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !plain.contains(&exp) {
        out.push_str(digits.get(..1).unwrap_or("0"));
        if digits.len() > 1 {
            out.push('.');
            out.push_str(digits.get(1..).unwrap_or_default());
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = match style {
            Style::Fmt => write!(out, "e{sign}{:02}", exp.unsigned_abs()),
            Style::Json => write!(out, "e{sign}{}", exp.unsigned_abs()),
        };
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(digits.get(..int_len).unwrap_or_default());
            out.push('.');
            out.push_str(digits.get(int_len..).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of Go's `fmt.Sprint` (strconv `'g'`, shortest: the cut-off is a fixed 6).
    #[test]
    fn fmt_switches_to_exponent_form_at_1e6_and_below_1e_4() {
        for (f, go) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.5, "0.5"),
            (123.25, "123.25"),
            (123456.0, "123456"),
            (999999.5, "999999.5"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1500000.5, "1.5000005e+06"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (1.2345e25, "1.2345e+25"),
            (1e100, "1e+100"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5e-7, "-2.5e-07"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(go_float(f), go, "fmt.Sprint({f:?})");
        }
    }

    /// Outputs of Go's `json.Marshal` (ES6 cut-offs, exponent unpadded).
    #[test]
    fn json_switches_to_exponent_form_at_1e21_and_below_1e_6() {
        for (f, go) in [
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1e6, "1000000"),
            (1500000.5, "1500000.5"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.2345e25, "1.2345e+25"),
            (0.00001, "0.00001"),
            (0.000001, "0.000001"),
            (1.5e-6, "0.0000015"),
            (1.5e-7, "1.5e-7"),
            (-2.5e-7, "-2.5e-7"),
            (1e-100, "1e-100"),
        ] {
            assert_eq!(go_json_float(f), go, "json.Marshal({f:?})");
        }
    }
}
