//! Reads a crate's sources for the modules each top-level module uses (`crate::<module>`
//! references outside comments) and checks them against a list of layers. Shared by the
//! operator's and the simulator's layer tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level module a file of `src/` belongs to (`None` for the crate roots and the files
/// named in `roots`).
fn module_of(relative: &Path, roots: &[&str]) -> Option<String> {
    let mut parts = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next()?;
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (!roots.contains(&name.as_str())).then_some(name)
}

/// The modules named after `crate::` in `code` (comments left out), including each name of a
/// `crate::{a, b::c}` group.
pub fn referenced(code: &str) -> BTreeSet<String> {
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
pub fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (module, module it uses) → the first file where it does, for every file below `src`.
pub fn edges(src: &Path, roots: &[&str]) -> BTreeMap<(String, String), String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut edges = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(src).expect("under src");
        let Some(from) = module_of(relative, roots) else {
            continue;
        };
        let code = std::fs::read_to_string(file).expect("readable source");
        for to in referenced(&code) {
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| relative.display().to_string());
            }
        }
    }
    edges
}

/// Every edge that does not point to a lower layer, and every module in no layer.
pub fn problems(edges: &BTreeMap<(String, String), String>, layers: &[&[&str]]) -> Vec<String> {
    let layer = |m: &str| layers.iter().position(|l| l.contains(&m));
    let mut problems = Vec::new();
    for ((from, to), file) in edges {
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
    problems
}
