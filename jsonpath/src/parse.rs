//! The JSONPath parser: a port of `k8s.io/client-go/util/jsonpath/parser.go`.

use std::borrow::Cow;

use super::ast::{Node, Param};
use super::unquote::unquote_extend;

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

pub(super) fn parse_template(expr: &str) -> Result<Vec<Node>, String> {
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

/// `Parse(name, text)` as client-go has it: no wrapping of a bare expression.
pub(super) fn parse_exact(text: &str) -> Result<Vec<Node>, String> {
    parse(text)
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
