//! Filter comparisons (`[?(@.a < 3)]`), with Go's rules for mixing JSON types.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Str,
}

fn basic_kind(v: &Value) -> Result<Kind, String> {
    match v {
        Value::Bool(_) => Ok(Kind::Bool),
        Value::Number(n) if n.is_i64() => Ok(Kind::Int),
        Value::Number(n) if n.is_u64() => Ok(Kind::Uint),
        Value::Number(_) => Ok(Kind::Float),
        Value::String(_) => Ok(Kind::Str),
        _ => Err("invalid type for comparison".to_string()),
    }
}

const ERR_BAD_COMPARISON: &str = "incompatible types for comparison";

fn int_uint_cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    // Compare integers regardless of sign (Go special case).
    let a = a.as_i64().map(i128::from).or(a.as_u64().map(i128::from))?;
    let b = b.as_i64().map(i128::from).or(b.as_u64().map(i128::from))?;
    Some(a.cmp(&b))
}

pub(super) fn cmp_equal(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a)?, basic_kind(b)?);
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => {
                Ok(int_uint_cmp(a, b) == Some(std::cmp::Ordering::Equal))
            }
            _ => Err(ERR_BAD_COMPARISON.to_string()),
        };
    }
    Ok(match k1 {
        Kind::Bool => a.as_bool() == b.as_bool(),
        Kind::Int | Kind::Uint => int_uint_cmp(a, b) == Some(std::cmp::Ordering::Equal),
        Kind::Float => a.as_f64() == b.as_f64(),
        Kind::Str => a.as_str() == b.as_str(),
    })
}

pub(super) fn cmp_less(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a)?, basic_kind(b)?);
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => {
                Ok(int_uint_cmp(a, b) == Some(std::cmp::Ordering::Less))
            }
            _ => Err(ERR_BAD_COMPARISON.to_string()),
        };
    }
    match k1 {
        Kind::Bool => Err("invalid type for comparison".to_string()),
        Kind::Int | Kind::Uint => Ok(int_uint_cmp(a, b) == Some(std::cmp::Ordering::Less)),
        Kind::Float => Ok(a.as_f64().unwrap_or(0.0) < b.as_f64().unwrap_or(0.0)),
        Kind::Str => Ok(a.as_str().unwrap_or("") < b.as_str().unwrap_or("")),
    }
}
