//! Commands the docs show with their output, so a test can run them and compare.
//!
//! In a markdown file, a fenced block right after `<!-- check: NAME -->` holds one or more
//! commands, each on a line starting with `$ `, each followed by the output it prints:
//!
//! ````text
//! <!-- check: lint-mismatch -->
//! ```console
//! $ baton rollout lint -f web.yaml
//! web.yaml: Rollout/web: spec.selector: …
//! ```
//! ````
//!
//! [`shown`] reads them back; [`same_text`] compares an output with the one shown, ages and
//! column padding aside (they depend on when and how long the run took).
use std::path::Path;

/// One command a doc shows and the output shown under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The command line, without the `$ `.
    pub command: String,
    /// What it prints, every line ending in `\n` (empty when it prints nothing).
    pub output: String,
}

/// The commands of block `name` in `doc` (a path from the repository root), in order.
/// Panics, naming the file and block, when there is no such block or it shows no command.
pub fn shown(doc: &str, name: &str) -> Vec<Shown> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(doc);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {doc}: {e}"));
    let marker = format!("<!-- check: {name} -->");
    let Some(at) = text.find(&marker) else {
        panic!("{doc} has no block marked {marker}");
    };
    let mut lines = text[at + marker.len()..].lines().skip_while(|l| l.trim().is_empty());
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "{doc}: {marker} is not followed by a fenced block"
    );
    let mut out: Vec<Shown> = Vec::new();
    for line in lines.take_while(|l| !l.starts_with("```")) {
        match (line.strip_prefix("$ "), out.last_mut()) {
            (Some(command), _) => out.push(Shown {
                command: command.to_string(),
                output: String::new(),
            }),
            (None, Some(last)) => {
                last.output.push_str(line);
                last.output.push('\n');
            }
            (None, None) => panic!("{doc}: block {name} has output before its first `$ ` command"),
        }
    }
    assert!(!out.is_empty(), "{doc}: block {name} shows no command");
    out
}

/// The words of a command line as a POSIX shell splits it: at blanks outside quotes, quotes
/// removed (no expansions: the docs show commands that need none).
pub fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, ' ' | '\t') => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// Whether `s` is an age as kubectl prints one ("5s", "3m", "2d4h", "<unknown>").
fn is_age(s: &str) -> bool {
    if s == "<unknown>" {
        return true;
    }
    let mut digits = false;
    let mut units = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => digits = true,
            's' | 'm' | 'h' | 'd' | 'y' if digits => {
                units += 1;
                digits = false;
            }
            _ => return false,
        }
    }
    units > 0 && !digits
}

/// `text` with each run of spaces made one space, line ends trimmed and every age word
/// replaced by `<age>`: what stays the same from one run to the next.
pub fn squeezed(text: &str) -> String {
    text.lines()
        .map(|l| {
            l.split(' ')
                .filter(|w| !w.is_empty())
                .map(|w| if is_age(w) { "<age>" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `actual` is the output the doc shows, ages and column padding aside.
pub fn same_text(actual: &str, shown: &str) -> bool {
    squeezed(actual) == squeezed(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_padding_do_not_count() {
        assert!(same_text("NAME   AGE\nweb    5s\n", "NAME AGE\nweb  2d4h\n"));
        assert!(!same_text("web 5s v1\n", "web 5s v2\n"));
        assert!(is_age("3m") && is_age("2d4h") && !is_age("v1") && !is_age("5") && !is_age("ms"));
        assert_eq!(
            words(r#"baton get -o 'jsonpath={.a}{"\n"}' "" x"#),
            ["baton", "get", "-o", r#"jsonpath={.a}{"\n"}"#, "", "x"]
        );
    }
}
