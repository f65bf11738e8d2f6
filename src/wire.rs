//! Each wire word (annotation, label and finalizer keys, condition types and reasons, Event
//! reasons, release reasons, check placeholders) has one home in `crates/baton-api`. This test
//! reads the sources of `src/` and of the crates and fails on a string literal outside
//! `baton-api` and outside test code that spells one, or that starts with `baton.dev/` (a key
//! built by hand). Plain single words (`Ready`, `Orphaned`, `suspended`) are left out: they are
//! also Kubernetes' own words and table headers, which code may spell.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

use crate::api::listenerset::ReleaseReason;
use crate::api::notifications::{ListenerSetEvent, RolloutEvent};
use crate::api::rollout::{ConditionType, EventReason, FailureReason, Reason, RolloutPhase};

/// What the wire check reads from one source file (parsed by `syn`): the string literals of
/// its code (macro arguments included; attributes, doc comments and `#[cfg(test)]` items not),
/// the values of its `const …: &str` items, and the test modules it keeps in files of their own.
#[derive(Default)]
struct Scan {
    literals: Vec<String>,
    consts: Vec<String>,
    test_files: Vec<String>,
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Path>().is_ok_and(|p| p.is_ident("test")))
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item::*;
    match item {
        Const(i) => &i.attrs,
        Enum(i) => &i.attrs,
        Fn(i) => &i.attrs,
        Impl(i) => &i.attrs,
        Mod(i) => &i.attrs,
        Static(i) => &i.attrs,
        Struct(i) => &i.attrs,
        Trait(i) => &i.attrs,
        Use(i) => &i.attrs,
        _ => &[],
    }
}

fn is_str_ref(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Reference(r) if matches!(&*r.elem, syn::Type::Path(p) if p.path.is_ident("str")))
}

impl Scan {
    /// String literals among a macro's tokens (`format!`, `info!` …), whose arguments `syn`
    /// does not parse as expressions.
    fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
        for tt in tokens {
            match tt {
                proc_macro2::TokenTree::Group(g) => self.tokens(g.stream()),
                proc_macro2::TokenTree::Literal(l) => {
                    if let Ok(s) = syn::parse2::<syn::LitStr>(proc_macro2::TokenTree::Literal(l).into()) {
                        self.literals.push(s.value());
                    }
                }
                _ => {}
            }
        }
    }
}

impl<'ast> Visit<'ast> for Scan {
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}

    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_cfg_test(item_attrs(item)) {
            return visit::visit_item(self, item);
        }
        if let syn::Item::Mod(m) = item {
            if m.content.is_none() {
                self.test_files.push(m.ident.to_string());
            }
        }
    }

    fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
        if let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s), ..
        }) = &*c.expr
        {
            if is_str_ref(&c.ty) {
                self.consts.push(s.value());
            }
        }
        visit::visit_item_const(self, c);
    }

    fn visit_lit_str(&mut self, s: &'ast syn::LitStr) {
        self.literals.push(s.value());
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
    }
}

fn scan(src: &str) -> Scan {
    let mut out = Scan::default();
    match syn::parse_file(src) {
        Ok(file) => out.visit_file(&file),
        Err(e) => panic!("a source the compiler accepts parses: {e}"),
    }
    out
}

/// Where the files of the modules that `file` declares live.
fn children_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(""));
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("mod" | "lib" | "main") | None => parent.to_path_buf(),
        Some(stem) => parent.join(stem),
    }
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let api = root.join("crates/baton-api/src");
    let mut files = Vec::new();
    for tree in [
        "src",
        "crates/baton-agent/src",
        "crates/baton-controller/src",
        "crates/baton-api/src",
    ] {
        crate::layers::scan::sources(&root.join(tree), &mut files);
    }
    files.sort();
    let scanned: Vec<(PathBuf, Scan)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("readable source");
            (f, scan(&text))
        })
        .collect();
    // Test modules kept in files of their own, and everything below them.
    let mut test_dirs = Vec::new();
    for (file, s) in &scanned {
        for name in &s.test_files {
            let dir = children_dir(file).join(name);
            test_dirs.push(dir.with_extension("rs"));
            test_dirs.push(dir);
        }
    }
    let is_test = |f: &Path| test_dirs.iter().any(|d| f.starts_with(d));
    let consts = (scanned.iter())
        .filter(|(f, _)| f.starts_with(&api) && !is_test(f))
        .flat_map(|(_, s)| s.consts.clone())
        .collect();
    let words = wire_words(consts);
    let mut problems = Vec::new();
    for (file, s) in &scanned {
        if file.starts_with(&api) || is_test(file) {
            continue;
        }
        for text in &s.literals {
            if words.contains(text) || text.starts_with("baton.dev/") {
                let name = file.strip_prefix(root).unwrap_or(file).display();
                problems.push(format!("{name}: \"{text}\""));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "wire words spelled outside crates/baton-api (use the constant or enum there):\n{}",
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
fn the_scan_finds_literals_outside_comments_attributes_and_test_code() {
    let code = r##"
        /// "in a doc comment"
        // "in a comment"
        fn f<'a>(x: &'a str) { let a = "one"; let c = '"'; let r = r#"two "x""#; info!(k = %x, "in {}", "macro"); }
        #[serde(rename = "attribute")]
        struct S;
        #[cfg(test)]
        mod tests { fn t() { let _ = "three"; } }
        #[cfg(test)]
        mod more;
        /* "block" */
        pub const A: &str = "x";
        const C: &'static str = "z";
        const N: usize = 1;
    "##;
    let s = scan(code);
    assert_eq!(s.literals, ["one", "two \"x\"", "in {}", "macro", "x", "z"]);
    assert_eq!(s.consts, ["x", "z"]);
    assert_eq!(s.test_files, ["more"]);
}
