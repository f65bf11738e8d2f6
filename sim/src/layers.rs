//! Dependencies point one way in the simulator too: every `crate::<module>` reference in
//! `sim/src/` goes to a lower layer than the module it is written in. The scanner is the
//! operator's (`src/layers/scan.rs`).

use std::path::Path;

#[path = "../../src/layers/scan.rs"]
mod scan;

/// Top-level modules, bottom first; a module may use only modules of a lower layer.
///
/// * Formats and algorithms that know no API object: errors, Go's number formats, metadata
///   rules, label/field selectors, JSONPath, OpenAPI schemas, patches and field ownership, CEL.
/// * The resource registry, then the store.
/// * The request path below the handlers: `auth` (identities, tokens, RBAC over a snapshot),
///   `admission` (the chain of checks a request carries, and its plugins), `strategy` (per-kind
///   defaulting and validation).
/// * `handlers`: the request handlers (`Core`), which every write goes through.
/// * `controllers`: clients of `Core`, never called by it (they hook in through
///   `api::AfterWrite`).
/// * What the HTTP server renders (`openapi`, `protobuf`, `table`) or injects (`faults`), then
///   the server itself, which starts nothing and is started by `lib.rs`.
const LAYERS: &[&[&str]] = &[
    &["error", "go_format"],
    &["meta", "selector", "jsonpath", "schema", "strategic", "tls"],
    &["managed", "cel"],
    &["resources"],
    &["store"],
    &["auth"],
    &["admission"],
    &["strategy"],
    &["handlers"],
    &["controllers"],
    &["openapi", "protobuf", "table", "faults"],
    &["server"],
];

const ROOTS: &[&str] = &["lib", "layers", "bin"];

#[test]
fn dependencies_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = scan::edges(&src, ROOTS);
    let problems = scan::problems(&edges, LAYERS);
    assert!(
        problems.is_empty(),
        "upward or sideways dependencies:\n{}",
        problems.join("\n")
    );
    // The checker sees what it should: known edges are found.
    assert!(edges.contains_key(&("server".into(), "handlers".into())));
    assert!(edges.contains_key(&("controllers".into(), "handlers".into())));
    assert!(edges.contains_key(&("handlers".into(), "admission".into())));
}

#[test]
fn a_call_back_into_the_handlers_is_reported() {
    let edges = [(("store".to_string(), "handlers".to_string()), "store.rs".to_string())].into();
    assert_eq!(
        scan::problems(&edges, LAYERS),
        ["store.rs: store uses crate::handlers, which is not below it"]
    );
    let edges = [(
        ("handlers".to_string(), "controllers".to_string()),
        "handlers/x.rs".to_string(),
    )]
    .into();
    assert_eq!(scan::problems(&edges, LAYERS).len(), 1);
}
