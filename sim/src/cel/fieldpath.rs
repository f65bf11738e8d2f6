//! `fieldPath` of a rule: a JSON path of fields and map keys (`.a.b`, `['key']`) valid for the
//! schema, normalized as `cel.ValidFieldPath` normalizes it (`a.b`, `a[key]`).

use serde_json::Value;

fn properties(s: &Value) -> Option<&serde_json::Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

fn additional(s: &Value) -> Option<&Value> {
    s.get("additionalProperties").filter(|a| a.is_object())
}

fn unescape_single_quote(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let d = chars.next().ok_or_else(|| "invalid escape char \\".to_string())?;
        out.push(match d {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\'' => '\'',
            '\\' => '\\',
            other => return Err(format!("invalid escape char \\{other}")),
        });
    }
    Ok(out)
}

/// Tokens: `.`, `[`, `]`, single-quoted strings (delimiters inside are kept) and names.
fn tokens(path: &str) -> Vec<String> {
    let b: Vec<char> = path.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == '\'' {
            i += 1;
            while i < b.len() && !(b[i] == '\'' && b[i - 1] != '\\') {
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else if matches!(b[i], '.' | '[' | ']') {
            i += 1;
        } else {
            while i < b.len() && !matches!(b[i], '.' | '[' | ']') {
                i += 1;
            }
        }
        out.push(b[start..i].iter().collect());
    }
    out
}

/// The normalized path, or why it is not valid for `schema`.
pub(crate) fn valid_field_path(path: &str, schema: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut node = schema;
    let toks = tokens(path);
    let mut it = toks.iter();
    let step = |name: &str, node: &mut &Value, out: &mut String| -> Result<(), String> {
        if let Some(props) = properties(node) {
            let next = props.get(name).ok_or("does not refer to a valid field")?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(name);
            *node = next;
        } else if let Some(add) = additional(node) {
            out.push_str(&format!("[{name}]"));
            *node = add;
        } else {
            return Err("does not refer to a valid field".into());
        }
        Ok(())
    };
    while let Some(tok) = it.next() {
        match tok.as_str() {
            "[" => {
                let q = it.next().ok_or("unexpected end of JSON path")?;
                if q.len() < 2 || !q.starts_with('\'') || !q.ends_with('\'') {
                    return Err(format!("expected single quoted string but got {q}"));
                }
                let name =
                    unescape_single_quote(&q[1..q.len() - 1]).map_err(|e| format!("invalid string literal: {e}"))?;
                step(&name, &mut node, &mut out)?;
                match it.next().map(String::as_str) {
                    Some("]") => {}
                    Some(other) => return Err(format!("expected ] but got {other}")),
                    None => return Err("unexpected end of JSON path".into()),
                }
            }
            "." => {
                let name = it.next().ok_or("unexpected end of JSON path")?;
                step(name, &mut node, &mut out)?;
            }
            other => return Err(format!("expected [ or . but got: {other}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_normalized_and_checked() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
        }});
        assert_eq!(valid_field_path(".a.b", &s).as_deref(), Ok("a.b"));
        assert_eq!(valid_field_path(".m['x.y']", &s).as_deref(), Ok("m[x.y]"));
        assert_eq!(valid_field_path("['a'].b", &s).as_deref(), Ok("a.b"));
        assert!(valid_field_path(".c", &s).is_err());
        assert!(valid_field_path("a", &s).is_err());
    }
}
