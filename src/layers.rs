//! Dependencies point one way: every `crate::<module>` reference in `src/` goes to a lower layer
//! than the module it is written in. This test reads the sources and lists every edge that does
//! not (and every top-level module missing from [`LAYERS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules, bottom first. A module may use only modules of a lower layer: the
/// subsystems (`rollout`, `listeners`, `agent`, `election`) share a layer, so none of them uses
/// another; `operator` wires them; `actions` (what an operator does to a Rollout) serves the
/// dashboard and the CLI; the demo serves the dashboard; the CLI runs the demo and the
/// dashboard, never the reverse.
const LAYERS: &[&[&str]] = &[
    &["api", "memory"],
    &["error", "events", "telemetry", "metrics", "cache", "stdout"],
    &["backoff", "probes", "session", "throttle", "notify"],
    &["rollout", "listeners", "agent", "election"],
    &["operator", "actions"],
    &["dashboard"],
    &["demo"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file of `src/` belongs to (`None` for the crate roots and this file).
fn module_of(relative: &Path) -> Option<String> {
    let mut parts = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next()?;
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (!matches!(name.as_str(), "lib" | "main" | "layers" | "wire")).then_some(name)
}

/// The modules named after `crate::` in `code` (comments left out), including each name of a
/// `crate::{a, b::c}` group.
fn referenced(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 1;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 1 => break,
                        '}' => depth -= 1,
                        ',' if depth == 1 => {
                            out.insert(first_name(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                out.insert(first_name(&item));
            } else {
                out.insert(first_name(rest));
            }
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn first_name(path: &str) -> String {
    path.trim_start_matches(|c: char| c.is_whitespace() || c == '{')
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every `.rs` file below `dir`.
pub(crate) fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn dependencies_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let Some(from) = module_of(relative) else { continue };
        let code = std::fs::read_to_string(file).expect("readable source");
        for to in referenced(&code) {
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| relative.display().to_string());
            }
        }
    }
    for ((from, to), file) in &edges {
        match (layer(from), layer(to)) {
            (None, _) => problems.push(format!("module {from} is in no layer: add it to LAYERS")),
            (_, None) => problems.push(format!("{file}: crate::{to} is in no layer: add it to LAYERS")),
            (Some(a), Some(b)) if b >= a => {
                problems.push(format!("{file}: {from} uses crate::{to}, which is not below it"))
            }
            _ => {}
        }
    }
    problems.dedup();
    assert!(
        problems.is_empty(),
        "upward or sideways dependencies:\n{}",
        problems.join("\n")
    );
    // The checker sees what it should: known edges are found.
    assert!(edges.contains_key(&("rollout".into(), "api".into())));
    assert!(edges.contains_key(&("cli".into(), "operator".into())));
    assert!(edges.contains_key(&("cli".into(), "actions".into())));
}

#[test]
fn references_are_read_from_code_only() {
    let code = "use crate::api::{self, x};\n// crate::cli in a comment\nuse crate::{error::Error, backoff::{Retry, delay}, cache};\nlet a = crate::metrics::M::new(crate::events::X);";
    let found: Vec<String> = referenced(code).into_iter().collect();
    assert_eq!(found, ["api", "backoff", "cache", "error", "events", "metrics"]);
}
