//! Rules of the house that no compiler checks, over the operator (`src/`, `crates/`), the simulator
//! (`sim/src/`), the real control plane's launcher (`controlplane/`) and what ships beside them:
//!
//! * the repository speaks of the product: no comment, doc or test name points at a tracker
//!   entry, a work session or a branch — it says the reason itself;
//! * functions a reader can hold: none over [`MAX_FN_LINES`] lines, generated code aside.

use std::path::{Path, PathBuf};

use crate::layers::scan::sources;

/// The longest function allowed, in lines from `fn` to its closing brace.
const MAX_FN_LINES: usize = 100;

/// Generated sources (`make protobuf` writes it), exempt from the length rule.
const GENERATED: &[&str] = &["sim/src/protobuf/generated.rs"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of the trees and files the rules cover, with its path relative to the root.
fn files(dirs: &[&str], exts: &[&str]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for d in dirs {
        let path = root().join(d);
        if path.is_file() {
            out.push(path);
        } else if exts == ["rs"] {
            sources(&path, &mut out);
        } else {
            walk(&path, exts, &mut out);
        }
    }
    out.into_iter()
        .map(|p| (p.strip_prefix(root()).unwrap_or(&p).display().to_string(), p))
        .collect()
}

fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            walk(&path, exts, out);
        } else if path.extension().is_some_and(|e| exts.iter().any(|x| e == *x)) {
            out.push(path);
        }
    }
}

/// Where `line` points at a tracker entry or a work history: "issue" or "stop" followed by a
/// number, or "branch" followed by a code span.
fn history_reference(line: &str) -> Option<String> {
    let lower = line.to_lowercase();
    let code_span = concat!("branch", " `");
    for word in ["issue ", "stop ", code_span] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(word) {
            let start = from + at;
            let rest = &lower[start + word.len()..];
            let before_ok = start == 0 || !lower[..start].ends_with(|c: char| c.is_alphanumeric());
            if before_ok && (word.ends_with('`') || rest.starts_with(|c: char| c.is_ascii_digit())) {
                return Some(line[start..].chars().take(40).collect());
            }
            from = start + word.len();
        }
    }
    None
}

#[test]
fn nothing_points_at_a_tracker_or_a_work_history() {
    let trees = [
        "src",
        "crates",
        "sim",
        "controlplane",
        "tests",
        "docs",
        "README.md",
        "Makefile",
    ];
    let exts = [
        "rs", "md", "toml", "yaml", "yml", "py", "sh", "lua", "json", "txt", "tpl",
    ];
    let mut found = Vec::new();
    for (name, path) in files(&trees, &exts) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(hit) = history_reference(line) {
                found.push(format!("{name}:{}: {hit}", i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "say the reason itself, not where it was discussed:\n{}",
        found.join("\n")
    );
}

#[test]
fn history_references_are_recognised() {
    let n = 7;
    assert!(history_reference(&format!("// see Issue {n}, part 2")).is_some());
    assert!(history_reference(&format!("figures of stop {n}")).is_some());
    let tick = '`';
    assert!(history_reference(&format!("measured on branch {tick}x{tick}")).is_some());
    assert!(history_reference("a known issue: the gap").is_none());
    assert!(history_reference("nonstop 5 times; backstop 3").is_none());
    assert!(history_reference("the agent's stop 'deadline'").is_none());
}

/// `code` with comments, strings and character literals blanked (newlines kept), so that
/// braces and `fn` inside them do not count.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |s: &str, out: &mut String| out.extend(s.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
    while i < b.len() {
        let rest = &src[i..];
        let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            rest.find("*/").map_or(rest.len(), |e| e + 2)
        } else if !prev_ident && (rest.starts_with("r\"") || rest.starts_with("r#")) {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let open = 1 + hashes + 1;
            rest.get(open..)
                .and_then(|r| r.find(&close))
                .map_or(rest.len(), |e| open + e + close.len())
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() && rest.as_bytes()[j] != b'"' {
                j += if rest.as_bytes()[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(rest.len())
        } else if rest.starts_with('\'') {
            char_literal(rest).unwrap_or(0)
        } else {
            0
        };
        if end > 0 {
            blank(&rest[..end], &mut out);
            i += end;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a character literal at the start of `s` (None: a lifetime).
fn char_literal(s: &str) -> Option<usize> {
    let body = s.get(1..)?;
    let len = if body.starts_with('\\') {
        body.find('\'')? + 1
    } else {
        let c = body.chars().next()?;
        body[c.len_utf8()..].starts_with('\'').then_some(c.len_utf8() + 1)?
    };
    Some(len + 1)
}

/// (name, first line, lines) of every function with a body in `src`.
fn functions(src: &str) -> Vec<(String, usize, usize)> {
    let code = code_only(src);
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("fn ") {
        let start = from + at;
        from = start + 3;
        if start > 0 && code[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = code[from..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (Some(open), semi) = (code[from..].find('{'), code[from..].find(';')) else {
            continue;
        };
        if name.is_empty() || semi.is_some_and(|s| s < open) {
            continue;
        }
        let mut depth = 0;
        let mut close = None;
        for (k, c) in code[from + open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(from + open + k);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        let first = code[..start].matches('\n').count() + 1;
        let last = code[..close].matches('\n').count() + 1;
        out.push((name, first, last - first + 1));
    }
    out
}

#[test]
fn functions_are_short() {
    let mut long = Vec::new();
    for (name, path) in files(&["src", "crates", "sim/src", "controlplane/src"], &["rs"]) {
        if GENERATED.contains(&name.as_str()) {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("readable source");
        for (f, line, lines) in functions(&src) {
            if lines > MAX_FN_LINES {
                long.push(format!("{name}:{line}: fn {f} is {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these into steps a reader can hold (at most {MAX_FN_LINES} lines):\n{}",
        long.join("\n")
    );
}

/// Longest source file a reader is asked to hold.
const MAX_FILE_LINES: usize = 700;

#[test]
fn files_are_short() {
    let dirs = [
        "src",
        "crates",
        "sim/src",
        "sim/tests",
        "controlplane/src",
        "tests",
        "jsonpath/src",
    ];
    let mut long = Vec::new();
    for (name, path) in files(&dirs, &["rs"]) {
        if GENERATED.contains(&name.as_str()) {
            continue;
        }
        let lines = std::fs::read_to_string(&path).expect("readable source").lines().count();
        if lines > MAX_FILE_LINES {
            long.push(format!("{name}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "split these along what they do (at most {MAX_FILE_LINES} lines):\n{}",
        long.join("\n")
    );
}

#[test]
fn function_lengths_are_measured_on_code() {
    let body = "    x += 1;\n".repeat(3);
    let src = format!(
        "fn a() {{\n{body}}}\n// fn b() {{ }}\nfn c<'a>(s: &'a str) -> char {{\n    let _ = \"{{\";\n    '}}'\n}}\nfn d();\n"
    );
    assert_eq!(functions(&src), [("a".to_string(), 1, 5), ("c".to_string(), 7, 4)]);
}
