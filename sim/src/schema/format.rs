//! String formats (go-openapi strfmt), as far as apiextensions keeps them.

use serde_json::Value;

use super::access::kw;
use super::regex_cache::regex_is_match;

/// Formats apiextensions keeps (`StripUnsupportedFormatsPostProcess`); everything else is
/// removed from the schema before validation.
const SUPPORTED_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

/// The schema's format if the real server would keep it: (as written, normalized).
pub(super) fn supported_format(s: &Value) -> Option<(&str, String)> {
    let f = kw(s, "format")?.as_str()?;
    if f.is_empty() {
        return None;
    }
    let normalized = f.replace('-', "");
    if SUPPORTED_FORMATS.contains(&normalized.as_str()) {
        Some((f, normalized))
    } else {
        None
    }
}

pub(super) fn format_ok(normalized: &str, v: &str) -> bool {
    match normalized {
        "datetime" => is_date_time(v),
        "date" => is_date(v),
        "uuid" => regex_is_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            v,
        )
        .unwrap_or(true),
        "uuid3" => regex_is_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            v,
        )
        .unwrap_or(true),
        "uuid4" => regex_is_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            v,
        )
        .unwrap_or(true),
        "uuid5" => regex_is_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            v,
        )
        .unwrap_or(true),
        "ipv4" => v.parse::<std::net::IpAddr>().is_ok() && v.contains('.'),
        "ipv6" => v.parse::<std::net::IpAddr>().is_ok() && v.contains(':'),
        "cidr" => is_cidr(v),
        "mac" => is_mac(v),
        "hostname" => is_hostname(v),
        "byte" => is_base64(v),
        "hexcolor" => regex_is_match(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", v).unwrap_or(true),
        "ssn" => regex_is_match(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", v).unwrap_or(true),
        "bsonobjectid" => v.len() == 24 && v.bytes().all(|b| b.is_ascii_hexdigit()),
        // password, uri, email, duration, isbn*, creditcard, rgbcolor: not checked here.
        _ => true,
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => {
            if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) {
                29
            } else {
                28
            }
        }
        _ => 0,
    }
}

/// Go `time.Parse("2006-01-02", s)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

/// strfmt `IsDateTime`.
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    let (Some(date), Some(time)) = (parts.first(), parts.get(1)) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    if !regex_is_match(
        r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$",
        time,
    )
    .unwrap_or(false)
    {
        return false;
    }
    let h = time.get(0..2).unwrap_or("99");
    let m = time.get(3..5).unwrap_or("99");
    let sec = time.get(6..8).unwrap_or("99");
    h <= "23" && m <= "59" && sec <= "59"
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Go `net.ParseMAC`.
fn is_mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|c| c.is_ascii_hexdigit());
    let ok_count = |n: usize| n == 6 || n == 8 || n == 20;
    for sep in [':', '-'] {
        if s.contains(sep) {
            let parts: Vec<&str> = s.split(sep).collect();
            return ok_count(parts.len()) && parts.iter().all(|p| hex(p, 2));
        }
    }
    if s.contains('.') {
        let parts: Vec<&str> = s.split('.').collect();
        return ok_count(parts.len() * 2) && parts.iter().all(|p| hex(p, 4));
    }
    false
}

/// Approximation of strfmt `IsHostname`.
fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    labels.iter().all(|l| {
        let n = l.chars().count();
        (1..=63).contains(&n)
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    })
}

/// Go `base64.StdEncoding.DecodeString` succeeds (newlines are ignored, padding required).
fn is_base64(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|c| *c != b'\n' && *c != b'\r').collect();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    if pad > 2 {
        return false;
    }
    b.get(..b.len().saturating_sub(pad))
        .unwrap_or(&[])
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
mod tests;
