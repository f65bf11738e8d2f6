//! Quoted string literals in JSONPath expressions.

/// `UnquoteExtend`: like `strconv.Unquote` but also accepts single-quoted strings.
pub(super) fn unquote_extend(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let n = b.len();
    if n < 2 {
        return Err("invalid syntax".to_string());
    }
    let quote = b[0];
    if quote != b[n - 1] || (quote != b'"' && quote != b'\'') {
        return Err("invalid syntax".to_string());
    }
    let inner = &s[1..n - 1];
    let q = quote as char;
    if !inner.contains('\\') && !inner.contains(q) {
        return Ok(inner.to_string());
    }
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == q {
            return Err("invalid syntax".to_string());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("invalid syntax".to_string());
        };
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '\'' | '"' => {
                if e != q {
                    return Err("invalid syntax".to_string());
                }
                out.push(e);
            }
            'x' | 'u' | 'U' => {
                let len = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..len {
                    let d = chars
                        .next()
                        .and_then(|c| c.to_digit(16))
                        .ok_or_else(|| "invalid syntax".to_string())?;
                    v = v * 16 + d;
                }
                let ch = char::from_u32(v).ok_or_else(|| "invalid syntax".to_string())?;
                out.push(ch);
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|c| c.to_digit(8))
                        .ok_or_else(|| "invalid syntax".to_string())?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err("invalid syntax".to_string());
                }
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            }
            _ => return Err("invalid syntax".to_string()),
        }
    }
    Ok(out)
}
