//! The Kubernetes JSONPath dialect (`k8s.io/client-go/util/jsonpath`), as used by CRD
//! `additionalPrinterColumns` and `kubectl -o jsonpath`.
//!
//! The parser is a port of the Go parser, including its quirks:
//! * `['a.b']` is re-parsed as `.a.b` (two fields), exactly like upstream; to address a
//!   key containing dots use backslash escapes: `.metadata.labels.app\.kubernetes\.io/name`.
//! * Missing keys yield no result (the server calls `AllowMissingKeys(true)`).
//! * Filter comparisons between different JSON types (e.g. an int and a float, or a
//!   missing field) are evaluation errors.
//!
//! [`eval`] treats evaluation errors (array index out of range, comparing incompatible
//! types, ...) as "no match"; only a malformed expression is an `Err`.

use serde_json::Value;
use std::borrow::Cow;

/// Evaluate `expr` against `obj`, returning all matches in order (flattened over the
/// template's segments). Accepts `{...}` templates (text outside braces is returned as
/// string values) and bare expressions such as `.spec.replicas`, which are wrapped in
/// braces like the apiserver does for CRD columns.
pub fn eval(obj: &Value, expr: &str) -> Result<Vec<Value>, String> {
    match eval_results(obj, expr) {
        Ok(segments) => Ok(segments.into_iter().flatten().collect()),
        Err(EvalError::Parse(e)) => Err(e),
        Err(EvalError::Runtime(_)) => Ok(Vec::new()),
    }
}

/// Error from [`eval_results`].
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// The expression is malformed.
    Parse(String),
    /// The expression is fine but failed on this object (what `FindResults` returns).
    Runtime(String),
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Parse(e) | EvalError::Runtime(e) => f.write_str(e),
        }
    }
}

/// Like `JSONPath.FindResults`: one result list per template segment.
pub fn eval_results(obj: &Value, expr: &str) -> Result<Vec<Vec<Value>>, EvalError> {
    let nodes = parse_template(expr).map_err(EvalError::Parse)?;
    let mut out = Vec::new();
    exec_nodes(&nodes, obj, &mut out).map_err(EvalError::Runtime)?;
    Ok(out)
}

/// Parse-only check (e.g. for validating CRD `jsonPath`s).
pub fn validate(expr: &str) -> Result<(), String> {
    parse_template(expr).map(|_| ())
}

/// Render a value the way `JSONPath.PrintResults` does (Go `fmt.Fprint` of the decoded
/// JSON): strings raw, `map[k:v ...]`, `[a b]`, `<nil>` for null.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                go_float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(to_text).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", k, m.get(k).map(to_text).unwrap_or_default()))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `%v` for a float64 (shortest representation, exponent form outside [1e-4, 1e21)).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Decide on the exponent of the shortest representation, like strconv 'g'.
    let sci = format!("{f:e}");
    let Some((mant, e)) = sci.split_once('e') else {
        return format!("{f}");
    };
    let exp: i32 = e.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        // Rust: "1.5e-7"; Go: "1.5e-07".
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        let digits = if digits.len() < 2 {
            format!("0{digits}")
        } else {
            digits.to_string()
        };
        return format!("{mant}e{sign}{digits}");
    }
    format!("{f}")
}

// ---------------------------------------------------------------------------
// AST
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
struct Param {
    value: i64,
    known: bool,
    derived: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    List(Vec<Node>),
    Text(String),
    Field(String),
    Array([Param; 3]),
    Filter {
        left: Vec<Node>,
        right: Vec<Node>,
        op: String,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Wildcard,
    Recursive,
    Union(Vec<Vec<Node>>),
    Identifier(String),
}

// ---------------------------------------------------------------------------
// Parser (port of parser.go)
// ---------------------------------------------------------------------------

struct Parser<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    width: usize,
    root: Vec<Node>,
    /// Nodes of the action (`{...}`) currently being parsed.
    cur: Vec<Node>,
    /// Nesting depth of `parseAction` re-parses (unions, dict keys, filters).
    depth: usize,
}

/// Guard against pathological nesting (the Go parser has no limit, but a stack overflow
/// would abort the process here).
const MAX_DEPTH: usize = 64;

const EOF: Option<char> = None;

fn parse_template(expr: &str) -> Result<Vec<Node>, String> {
    let text: Cow<'_, str> = if expr.contains('{') {
        Cow::Borrowed(expr)
    } else {
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return Ok(Vec::new());
        }
        // A bare `spec.replicas` is treated as `.spec.replicas` (kubectl's relaxed form).
        let starts_alpha = trimmed.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
        if starts_alpha {
            Cow::Owned(format!("{{.{trimmed}}}"))
        } else {
            Cow::Owned(format!("{{{trimmed}}}"))
        }
    };
    parse(&text)
}

/// `Parse(name, text)`: returns the root list's nodes.
fn parse(text: &str) -> Result<Vec<Node>, String> {
    parse_at_depth(text, 0)
}

fn parse_at_depth(text: &str, depth: usize) -> Result<Vec<Node>, String> {
    if depth > MAX_DEPTH {
        return Err("jsonpath expression nested too deeply".to_string());
    }
    let mut p = Parser {
        input: text,
        pos: 0,
        start: 0,
        width: 0,
        root: Vec::new(),
        cur: Vec::new(),
        depth,
    };
    p.parse_text()?;
    Ok(p.root)
}

/// `parseAction`: parses `{text}` and returns the inner list's nodes.
fn parse_action(text: &str, depth: usize) -> Result<Vec<Node>, String> {
    let nodes = parse_at_depth(&format!("{{{text}}}"), depth + 1)?;
    match nodes.into_iter().next() {
        Some(Node::List(inner)) => Ok(inner),
        _ => Ok(Vec::new()),
    }
}

fn is_terminator(r: Option<char>) -> bool {
    match r {
        None => true,
        Some(c) => matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
        ),
    }
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn go_rune_repr(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn consume_text(&mut self) -> String {
        let v = self.input.get(self.start..self.pos).unwrap_or("").to_string();
        self.start = self.pos;
        v
    }

    fn next(&mut self) -> Option<char> {
        match self.rest().chars().next() {
            None => {
                self.width = 0;
                EOF
            }
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                Some(c)
            }
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.rest().chars().next()
    }

    fn backup(&mut self) {
        self.pos = self.pos.saturating_sub(self.width);
    }

    fn cur(&mut self) -> &mut Vec<Node> {
        &mut self.cur
    }

    /// `parseText` + `parseLeftDelim` + `parseRightDelim`, iteratively.
    fn parse_text(&mut self) -> Result<(), String> {
        loop {
            if self.rest().starts_with('{') {
                if self.pos > self.start {
                    let t = self.consume_text();
                    self.root.push(Node::Text(t));
                }
                self.pos += 1;
                self.consume_text();
                self.cur = Vec::new();
                self.parse_inside_action()?;
                let list = std::mem::take(&mut self.cur);
                self.root.push(Node::List(list));
                continue;
            }
            if self.next() == EOF {
                break;
            }
        }
        if self.pos > self.start {
            let t = self.consume_text();
            self.root.push(Node::Text(t));
        }
        Ok(())
    }

    fn parse_inside_action(&mut self) -> Result<(), String> {
        // Iterative version of the Go recursion (which tail-calls itself).
        loop {
            if self.rest().starts_with('}') {
                self.pos += 1;
                self.consume_text();
                return Ok(());
            }
            if self.rest().starts_with("[?(") {
                self.parse_filter()?;
                continue;
            }
            if self.rest().starts_with("..") {
                self.parse_recursive()?;
                continue;
            }
            match self.next() {
                None => return Err("unclosed action".to_string()),
                Some('\r' | '\n') => return Err("unclosed action".to_string()),
                Some(' ') | Some('@') | Some('$') => {
                    self.consume_text();
                }
                Some('[') => self.parse_array()?,
                Some(q @ ('"' | '\'')) => self.parse_quote(q)?,
                Some('.') => self.parse_field()?,
                Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => {
                    self.backup();
                    self.parse_number()?;
                }
                Some(c) if is_alphanumeric(c) => {
                    self.backup();
                    self.parse_identifier();
                }
                Some(c) => return Err(format!("unrecognized character in action: {}", go_rune_repr(c))),
            }
        }
    }

    fn parse_identifier(&mut self) {
        loop {
            let r = self.next();
            if is_terminator(r) {
                self.backup_if(r);
                break;
            }
        }
        let value = self.consume_text();
        let node = match value.as_str() {
            "true" => Node::Bool(true),
            "false" => Node::Bool(false),
            _ => Node::Identifier(value),
        };
        self.cur().push(node);
    }

    /// Go's `backup` after reading EOF is a no-op because width is 0.
    fn backup_if(&mut self, r: Option<char>) {
        if r.is_some() {
            self.backup();
        }
    }

    fn parse_recursive(&mut self) -> Result<(), String> {
        if matches!(self.cur().last(), Some(Node::Recursive)) {
            return Err("invalid multiple recursive descent".to_string());
        }
        self.pos += 2;
        self.consume_text();
        self.cur().push(Node::Recursive);
        if self.peek().is_some_and(is_alphanumeric) {
            self.parse_field()?;
        }
        Ok(())
    }

    fn parse_number(&mut self) -> Result<(), String> {
        if matches!(self.peek(), Some('+' | '-')) {
            self.next();
        }
        loop {
            let r = self.next();
            match r {
                Some(c) if c == '.' || c.is_ascii_digit() => {}
                _ => {
                    self.backup_if(r);
                    break;
                }
            }
        }
        let value = self.consume_text();
        if let Ok(i) = value.parse::<i64>() {
            self.cur().push(Node::Int(i));
            return Ok(());
        }
        if let Ok(f) = value.parse::<f64>() {
            self.cur().push(Node::Float(f));
            return Ok(());
        }
        Err(format!("cannot parse number {value}"))
    }

    fn parse_array(&mut self) -> Result<(), String> {
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated array".to_string()),
                Some(']') => break,
                _ => {}
            }
        }
        let full = self.consume_text();
        // full = "[...]"
        let mut text = full.get(1..full.len().saturating_sub(1)).unwrap_or("").to_string();
        if text == "*" {
            text = ":".to_string();
        }

        // union operator
        let strs: Vec<&str> = text.split(',').collect();
        if strs.len() > 1 {
            let mut union = Vec::new();
            for s in strs {
                let nodes = parse_action(&format!("[{}]", s.trim_matches(' ')), self.depth)?;
                union.push(nodes);
            }
            self.cur().push(Node::Union(union));
            return Ok(());
        }

        // dict key: ^'([^']*)'$ — re-parsed as `.key` (so dots split the key, like upstream).
        if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
            let inner = &text[1..text.len() - 1];
            if !inner.contains('\'') {
                let nodes = parse_action(&format!(".{inner}"), self.depth)?;
                self.cur().extend(nodes);
                return Ok(());
            }
        }

        // slice operator: ^(-?[\d]*)(:-?[\d]*)?(:-?[\d]*)?$
        let Some(groups) = match_slice(&text) else {
            return Err(format!("invalid array index {text}"));
        };
        let mut params = [Param {
            value: 0,
            known: false,
            derived: false,
        }; 3];
        for i in 0..3 {
            let g = groups[i].as_deref().unwrap_or("");
            if !g.is_empty() {
                let g = if i > 0 { &g[1..] } else { g };
                if i > 0 && g.is_empty() {
                    params[i].known = false;
                } else {
                    params[i].known = true;
                    params[i].value = g
                        .parse::<i64>()
                        .map_err(|_| format!("array index {g} is not a number"))?;
                }
            } else if i == 1 {
                params[i].known = true;
                params[i].value = params[0].value.saturating_add(1);
                params[i].derived = true;
            } else {
                params[i].known = false;
                params[i].value = 0;
            }
        }
        self.cur().push(Node::Array(params));
        Ok(())
    }

    fn parse_filter(&mut self) -> Result<(), String> {
        self.pos += 3;
        self.consume_text();
        let mut begin = false;
        let mut end = false;
        let mut pair = '\0';
        loop {
            let r = self.next();
            match r {
                None | Some('\n') => return Err("unterminated filter".to_string()),
                Some(q @ ('"' | '\'')) => {
                    if !begin {
                        begin = true;
                        pair = q;
                        continue;
                    }
                    let prev = self.input.as_bytes().get(self.pos.wrapping_sub(2)).copied();
                    if prev != Some(b'\\') && q == pair {
                        end = true;
                    }
                }
                Some(')') if begin == end => break,
                _ => {}
            }
        }
        if self.next() != Some(']') {
            return Err("unclosed array expect ]".to_string());
        }
        let full = self.consume_text();
        let text = full.get(..full.len().saturating_sub(2)).unwrap_or("");
        match split_filter(text) {
            None => {
                let left = parse_action(text, self.depth)?;
                self.cur().push(Node::Filter {
                    left,
                    right: Vec::new(),
                    op: "exists".to_string(),
                });
            }
            Some((l, op, r)) => {
                let left = parse_action(l, self.depth)?;
                let right = parse_action(r, self.depth)?;
                self.cur().push(Node::Filter {
                    left,
                    right,
                    op: op.to_string(),
                });
            }
        }
        Ok(())
    }

    fn parse_quote(&mut self, end: char) -> Result<(), String> {
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated quoted string".to_string()),
                Some(c) if c == end => {
                    let prev = self.input.as_bytes().get(self.pos.wrapping_sub(2)).copied();
                    if prev != Some(b'\\') {
                        break;
                    }
                }
                _ => {}
            }
        }
        let value = self.consume_text();
        let s = unquote_extend(&value).map_err(|e| format!("unquote string {value} error {e}"))?;
        self.cur().push(Node::Text(s));
        Ok(())
    }

    fn parse_field(&mut self) -> Result<(), String> {
        self.consume_text();
        while self.advance() {}
        let value = self.consume_text();
        if value == "*" {
            self.cur().push(Node::Wildcard);
        } else {
            self.cur().push(Node::Field(value.replace('\\', "")));
        }
        Ok(())
    }

    fn advance(&mut self) -> bool {
        let r = self.next();
        if r == Some('\\') {
            self.next();
        } else if is_terminator(r) {
            self.backup_if(r);
            return false;
        }
        true
    }
}

/// `^(-?[\d]*)(:-?[\d]*)?(:-?[\d]*)?$` → the three capture groups.
fn match_slice(text: &str) -> Option<[Option<String>; 3]> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut groups: [Option<String>; 3] = [None, None, None];
    // group 1
    let start = i;
    if i < b.len() && b[i] == b'-' {
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    groups[0] = Some(text[start..i].to_string());
    for g in groups.iter_mut().skip(1) {
        if i < b.len() && b[i] == b':' {
            let start = i;
            i += 1;
            if i < b.len() && b[i] == b'-' {
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            *g = Some(text[start..i].to_string());
        }
    }
    if i == b.len() {
        Some(groups)
    } else {
        None
    }
}

/// `^([^!<>=]+)([!<>=]+)(.+?)$`
fn split_filter(text: &str) -> Option<(&str, &str, &str)> {
    let is_op = |c: char| matches!(c, '!' | '<' | '>' | '=');
    let op_start = text.find(is_op)?;
    if op_start == 0 {
        return None;
    }
    let after = &text[op_start..];
    let op_len = after.find(|c: char| !is_op(c)).unwrap_or(after.len());
    let right = &after[op_len..];
    if right.is_empty() || right.contains(['\n', '\r']) {
        // `.` in Go regexps does not match newlines.
        return None;
    }
    Some((&text[..op_start], &after[..op_len], right))
}

/// `UnquoteExtend`: like `strconv.Unquote` but also accepts single-quoted strings.
fn unquote_extend(s: &str) -> Result<String, String> {
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

// ---------------------------------------------------------------------------
// Evaluation (port of jsonpath.go, on serde_json values)
// ---------------------------------------------------------------------------

type Vals<'a> = Vec<Cow<'a, Value>>;

/// Execute root-level nodes (`FindResults`), handling `{range ...}{end}` blocks.
fn exec_nodes(nodes: &[Node], data: &Value, out: &mut Vec<Vec<Value>>) -> Result<(), String> {
    let mut i = 0;
    while i < nodes.len() {
        let node = &nodes[i];
        if let Node::List(list) = node {
            if let Some(Node::Identifier(id)) = list.first() {
                if id == "range" {
                    let results = eval_list(vec![Cow::Borrowed(data)], &list[1..])?;
                    let end =
                        find_matching_end(nodes, i + 1).ok_or_else(|| "not in range, nothing to end".to_string())?;
                    let body = &nodes[i + 1..end];
                    let owned: Vec<Value> = results.into_iter().map(Cow::into_owned).collect();
                    for v in &owned {
                        exec_nodes(body, v, out)?;
                    }
                    if owned.is_empty() {
                        // Upstream quirk: nodes after `{end}` only run inside the last iteration.
                        return Ok(());
                    }
                    i = end + 1;
                    continue;
                }
                if id == "end" && list.len() == 1 {
                    return Err("not in range, nothing to end".to_string());
                }
            }
        }
        let results = walk(vec![Cow::Borrowed(data)], node)?;
        out.push(results.into_iter().map(Cow::into_owned).collect());
        i += 1;
    }
    Ok(())
}

fn is_marker(node: &Node, name: &str) -> bool {
    matches!(node, Node::List(l) if matches!(l.first(), Some(Node::Identifier(id)) if id == name))
}

fn find_matching_end(nodes: &[Node], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, n) in nodes.iter().enumerate().skip(from) {
        if is_marker(n, "range") {
            depth += 1;
        } else if is_marker(n, "end") {
            if depth == 0 {
                return Some(j);
            }
            depth -= 1;
        }
    }
    None
}

fn walk<'a>(input: Vals<'a>, node: &Node) -> Result<Vals<'a>, String> {
    match node {
        Node::List(nodes) => eval_list(input, nodes),
        Node::Text(t) => Ok(vec![Cow::Owned(Value::String(t.clone()))]),
        Node::Field(name) => Ok(eval_field(input, name)),
        Node::Array(params) => eval_array(input, params),
        Node::Filter { left, right, op } => eval_filter(input, left, right, op),
        Node::Int(i) => Ok(input.iter().map(|_| Cow::Owned(Value::from(*i))).collect()),
        Node::Float(f) => Ok(input
            .iter()
            .map(|_| {
                Cow::Owned(
                    serde_json::Number::from_f64(*f)
                        .map(Value::Number)
                        .unwrap_or(Value::Null),
                )
            })
            .collect()),
        Node::Bool(b) => Ok(input.iter().map(|_| Cow::Owned(Value::Bool(*b))).collect()),
        Node::Wildcard => Ok(eval_wildcard(input)),
        Node::Recursive => Ok(eval_recursive(input)),
        Node::Union(lists) => {
            let mut out = Vec::new();
            for l in lists {
                out.extend(eval_list(input.clone(), l)?);
            }
            Ok(out)
        }
        Node::Identifier(name) => match name.as_str() {
            // `range` passes its input through; `end` outside of a range block is an error.
            "range" => Ok(input),
            "end" => Err("not in range, nothing to end".to_string()),
            _ => Err(format!("unrecognized identifier {name}")),
        },
    }
}

fn eval_list<'a>(input: Vals<'a>, nodes: &[Node]) -> Result<Vals<'a>, String> {
    let mut cur = input;
    for n in nodes {
        cur = walk(cur, n)?;
    }
    Ok(cur)
}

/// Child accessor preserving borrowedness.
fn child<'a>(v: &Cow<'a, Value>, f: impl Fn(&Value) -> Option<&Value>) -> Option<Cow<'a, Value>> {
    match v {
        Cow::Borrowed(r) => f(r).map(Cow::Borrowed),
        Cow::Owned(o) => f(o).map(|c| Cow::Owned(c.clone())),
    }
}

fn children<'a>(v: &Cow<'a, Value>) -> Vals<'a> {
    match &**v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            keys.iter().filter_map(|k| child(v, |x| x.get(k.as_str()))).collect()
        }
        Value::Array(a) => (0..a.len()).filter_map(|i| child(v, |x| x.get(i))).collect(),
        // Go indexes strings byte-wise (yielding uint8 values).
        Value::String(s) => s.bytes().map(|b| Cow::Owned(Value::from(u64::from(b)))).collect(),
        _ => Vec::new(),
    }
}

fn eval_field<'a>(input: Vals<'a>, name: &str) -> Vals<'a> {
    input
        .iter()
        .filter_map(|v| match &**v {
            Value::Object(_) => child(v, |x| x.get(name)),
            _ => None,
        })
        .collect()
}

fn eval_wildcard(input: Vals<'_>) -> Vals<'_> {
    input.iter().flat_map(children).collect()
}

fn eval_recursive(input: Vals<'_>) -> Vals<'_> {
    let mut result = Vec::new();
    for v in input {
        if v.is_null() {
            continue;
        }
        let kids = children(&v);
        if !kids.is_empty() {
            result.push(v);
            result.extend(eval_recursive(kids));
        }
    }
    result
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn eval_array<'a>(input: Vals<'a>, params: &[Param; 3]) -> Result<Vals<'a>, String> {
    let mut result = Vec::new();
    for v in &input {
        if v.is_null() {
            continue;
        }
        let Value::Array(arr) = &**v else {
            return Err(format!("{} is not array or slice", go_type_name(v)));
        };
        let len = arr.len() as i64;
        let mut p = *params;
        if !p[0].known {
            p[0].value = 0;
        }
        if p[0].value < 0 {
            p[0].value = p[0].value.saturating_add(len);
        }
        if !p[1].known {
            p[1].value = len;
        }
        if p[1].value < 0 || (p[1].value == 0 && p[1].derived) {
            p[1].value = p[1].value.saturating_add(len);
        }
        if p[1].value != p[0].value {
            if p[0].value >= len || p[0].value < 0 {
                return Err(format!(
                    "array index out of bounds: index {}, length {}",
                    p[0].value, len
                ));
            }
            if p[1].value > len || p[1].value < 0 {
                return Err(format!(
                    "array index out of bounds: index {}, length {}",
                    p[1].value.saturating_sub(1),
                    len
                ));
            }
            if p[0].value > p[1].value {
                return Err(format!(
                    "starting index {} is greater than ending index {}",
                    p[0].value, p[1].value
                ));
            }
        } else {
            // Upstream returns immediately here (dropping any remaining inputs).
            return Ok(result);
        }
        let mut step = 1usize;
        if p[2].known {
            if p[2].value <= 0 {
                return Err("step must be > 0".to_string());
            }
            step = usize::try_from(p[2].value).unwrap_or(usize::MAX);
        }
        let (start, end) = (p[0].value as usize, p[1].value as usize);
        for i in (start..end).step_by(step) {
            if let Some(c) = child(v, |x| x.get(i)) {
                result.push(c);
            }
        }
    }
    Ok(result)
}

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

fn cmp_equal(a: &Value, b: &Value) -> Result<bool, String> {
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

fn cmp_less(a: &Value, b: &Value) -> Result<bool, String> {
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

fn eval_filter<'a>(input: Vals<'a>, left: &[Node], right: &[Node], op: &str) -> Result<Vals<'a>, String> {
    let mut results = Vec::new();
    for v in &input {
        let Value::Array(arr) = &**v else {
            return Err(format!("{} is not array or slice and cannot be filtered", to_text(v)));
        };
        for i in 0..arr.len() {
            let Some(item) = child(v, |x| x.get(i)) else {
                continue;
            };
            let lefts = eval_list(vec![item.clone()], left);
            if op == "exists" {
                if lefts.as_ref().is_ok_and(|l| !l.is_empty()) {
                    results.push(item);
                }
                continue;
            }
            let lefts = lefts?;
            if lefts.len() != 1 {
                return Err("can only compare one element at a time".to_string());
            }
            let rights = eval_list(vec![item.clone()], right)?;
            if rights.len() != 1 {
                return Err("can only compare one element at a time".to_string());
            }
            let (l, r) = (&*lefts[0], &*rights[0]);
            let pass = match op {
                "<" => cmp_less(l, r)?,
                ">" => !(cmp_less(l, r)? || cmp_equal(l, r)?),
                "==" => cmp_equal(l, r)?,
                "!=" => !cmp_equal(l, r)?,
                "<=" => cmp_less(l, r)? || cmp_equal(l, r)?,
                ">=" => !cmp_less(l, r)?,
                _ => return Err(format!("unrecognized filter operator {op}")),
            };
            if pass {
                results.push(item);
            }
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests;
