//! Each wire word (annotation, label and finalizer keys, condition types and reasons, Event
//! reasons, release reasons, check placeholders) has one home in `src/api/`. This test reads the
//! sources and fails on a string literal outside `src/api/` and outside test code that spells
//! one, or that starts with `baton.dev/` (a key built by hand). Plain single words (`Ready`,
//! `Orphaned`, `suspended`) are left out: they are also Kubernetes' own words and table
//! headers, which code may spell.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::api::listenerset::ReleaseReason;
use crate::api::notifications::{ListenerSetEvent, RolloutEvent};
use crate::api::rollout::{ConditionType, EventReason, FailureReason, Reason, RolloutPhase};

/// A Rust source with comments dropped and each string literal replaced by `""`: the code, and
/// the literals with their offset in it.
struct Lexed {
    code: String,
    literals: Vec<(usize, String)>,
}

fn lex(src: &str) -> Lexed {
    let b: Vec<char> = src.chars().collect();
    let mut out = Lexed {
        code: String::new(),
        literals: Vec::new(),
    };
    let at = |i: usize| b.get(i).copied().unwrap_or('\0');
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ident = |j: usize| j < b.len() && (b[j].is_alphanumeric() || b[j] == '_');
        // `r"…"` and `br"…"` start raw strings; `for"` or `xr"` do not occur in Rust.
        let raw_prefix = i == 0 || !ident(i - 1) || (b[i - 1] == 'b' && (i < 2 || !ident(i - 2)));
        if c == '/' && at(i + 1) == '/' {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < b.len() && !(b[i] == '*' && at(i + 1) == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            // A char literal (a lifetime has no closing quote right after one character).
            i += 2;
            while i < b.len() && b[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == 'r' && raw_prefix && matches!(at(i + 1), '"' | '#') {
            let hashes = (i + 1..b.len()).take_while(|&j| b[j] == '#').count();
            if at(i + 1 + hashes) != '"' {
                out.code.push(c);
                i += 1;
                continue;
            }
            let start = i + 2 + hashes;
            let closes = |j: usize| b[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#');
            let mut end = start;
            while end < b.len() && !closes(end) {
                end += 1;
            }
            out.literals
                .push((out.code.len(), b[start..end.min(b.len())].iter().collect()));
            out.code.push_str("\"\"");
            i = end + 1 + hashes;
        } else if c == '"' {
            let mut text = String::new();
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                text.push(at(i));
                i += 1;
            }
            out.literals.push((out.code.len(), text));
            out.code.push_str("\"\"");
            i += 1;
        } else {
            out.code.push(c);
            i += 1;
        }
    }
    out
}

/// The byte ranges of `code` under `#[cfg(test)]` (an item with a body), and the names of the
/// test modules declared there as files (`#[cfg(test)] mod tests;`).
fn test_code(code: &str) -> (Vec<(usize, usize)>, Vec<String>) {
    let (mut ranges, mut files) = (Vec::new(), Vec::new());
    for (at, _) in code.match_indices("#[cfg(test)]") {
        let rest = &code[at..];
        let Some(end) = rest.find([';', '{']) else { continue };
        if rest.as_bytes()[end] == b';' {
            let item = rest[..end].split_whitespace().collect::<Vec<_>>();
            if let [.., "mod", name] = item.as_slice() {
                files.push(name.to_string());
            }
            continue;
        }
        let mut depth = 0;
        for (j, ch) in rest[end..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => continue,
            }
            if depth == 0 {
                ranges.push((at, at + end + j));
                break;
            }
        }
    }
    (ranges, files)
}

/// Where the files of the modules that `file` declares live.
fn children_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(""));
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("mod" | "lib" | "main") | None => parent.to_path_buf(),
        Some(stem) => parent.join(stem),
    }
}

/// The values of the `const …: &str` items of `lexed` code.
fn str_consts(lexed: &Lexed) -> Vec<String> {
    let mut out = Vec::new();
    for (at, text) in &lexed.literals {
        let before = &lexed.code[..*at];
        let item = before.rsplit([';', '{', '}']).next().unwrap_or_default();
        if item.contains("const ") && item.contains("str") && item.trim_end().ends_with('=') {
            out.push(text.clone());
        }
    }
    out
}

/// A word that only baton's API means: a key or path (`/`, `.`, `-`, `{`), or a compound word
/// (`NoEligiblePods`). Media types (`application/json`) are HTTP's.
fn distinctive(word: &str) -> bool {
    let compound = word.chars().filter(|c| c.is_uppercase()).count() >= 2;
    !word.starts_with("application/") && (word.contains(['/', '.', '-', '{']) || compound)
}

fn wire_words(api_consts: Vec<String>) -> BTreeSet<String> {
    let mut words: BTreeSet<String> = api_consts.into_iter().collect();
    words.extend(RolloutPhase::ALL.iter().map(|w| w.as_str().to_string()));
    words.extend(ConditionType::ALL.iter().map(|w| w.as_str().to_string()));
    words.extend(Reason::ALL.iter().map(|w| w.as_str().to_string()));
    words.extend(FailureReason::ALL.iter().map(|w| w.as_str().to_string()));
    words.extend(EventReason::ALL.iter().map(|w| w.as_str().to_string()));
    words.extend(RolloutEvent::ALL.iter().map(|w| w.as_str().to_string()));
    words.extend(ListenerSetEvent::ALL.iter().map(|w| w.as_str().to_string()));
    words.extend(ReleaseReason::ALL.iter().map(|w| w.as_str().to_string()));
    words.retain(|w| distinctive(w));
    words
}

#[test]
fn each_wire_word_is_spelled_only_in_api() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    crate::layers::sources(&src, &mut files);
    files.sort();
    let lexed: Vec<(PathBuf, Lexed)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("readable source");
            (f, lex(&text))
        })
        .collect();
    // Test modules kept in files of their own, and everything below them.
    let mut test_dirs = Vec::new();
    for (file, l) in &lexed {
        for name in test_code(&l.code).1 {
            let dir = children_dir(file).join(&name);
            test_dirs.push(dir.with_extension("rs"));
            test_dirs.push(dir);
        }
    }
    let is_test = |f: &Path| test_dirs.iter().any(|d| f.starts_with(d));
    let api = src.join("api");
    let consts = (lexed.iter())
        .filter(|(f, _)| f.starts_with(&api) && !is_test(f))
        .flat_map(|(_, l)| str_consts(l))
        .collect();
    let words = wire_words(consts);
    let mut problems = Vec::new();
    for (file, l) in &lexed {
        if file.starts_with(&api) || is_test(file) || file.ends_with("wire.rs") {
            continue;
        }
        let ranges = test_code(&l.code).0;
        for (at, text) in &l.literals {
            if ranges.iter().any(|(a, b)| a <= at && at <= b) {
                continue;
            }
            if words.contains(text) || text.starts_with("baton.dev/") {
                let line = l.code[..*at].lines().count();
                let name = file.strip_prefix(&src).unwrap_or(file).display();
                problems.push(format!("src/{name}: \"{text}\" (near line {line})"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "wire words spelled outside src/api/ (use the constant or enum there):\n{}",
        problems.join("\n")
    );
    // The checker sees what it should.
    for known in [
        "baton.dev/drain",
        "NoEligiblePods",
        "RolledBack",
        "holder-not-eligible",
        "{{podIP}}",
    ] {
        assert!(words.contains(known), "{known} not among the wire words");
    }
    assert!(!words.contains("Ready"), "plain words are left out");
    assert!(!words.contains("application/json"), "media types are left out");
}

#[test]
fn the_lexer_finds_literals_outside_comments_and_test_code() {
    let code = "// \"in a comment\"\nlet a = \"one\"; let c = '\"'; let r = r#\"two \"x\"\"#;\nfn f<'a>(x: &'a str) {}\n#[cfg(test)]\nmod tests { fn t() { \"three\"; } }\n#[cfg(test)]\nmod more;\n/* \"block\" */";
    let l = lex(code);
    let texts: Vec<&str> = l.literals.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["one", "two \"x\"", "three"]);
    let (ranges, files) = test_code(&l.code);
    let three = l.literals[2].0;
    assert!(ranges.iter().any(|(a, b)| *a <= three && three <= *b));
    assert!(!ranges
        .iter()
        .any(|(a, b)| *a <= l.literals[0].0 && l.literals[0].0 <= *b));
    assert_eq!(files, ["more"]);
    let consts = str_consts(&lex(
        "pub const A: &str = \"x\";\nlet b = \"y\";\nconst C: &'static str = \"z\";",
    ));
    assert_eq!(consts, ["x", "z"]);
}
