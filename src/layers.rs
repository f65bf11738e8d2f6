//! Dependencies point one way: every `crate::<module>` reference in the `baton` crate's `src/`
//! goes to a lower layer than the module it is written in. This test reads the sources and lists every edge that does
//! not (and every top-level module missing from [`LAYERS`]).

use std::path::Path;

pub(crate) mod scan;

/// Top-level modules, bottom first. A module may use only modules of a lower layer. The first
/// layer is the other crates, re-exported (`baton-api`, `baton-agent`, and the modules of
/// `baton-controller`): the compiler keeps what they use, and the controller's own layer test
/// keeps its inside. `actions` (what an operator does to a Rollout) serves the dashboard and
/// the CLI; the demo serves the dashboard; the CLI runs the demo and the dashboard, never the
/// reverse.
const LAYERS: &[&[&str]] = &[
    &[
        "api",
        "agent",
        "malloc",
        "error",
        "events",
        "metrics",
        "cache",
        "backoff",
        "probes",
        "throttle",
        "webhooks",
        "rollout",
        "listeners",
        "election",
        "operator",
    ],
    &["stdout", "telemetry"],
    &["session"],
    &["actions"],
    &["dashboard"],
    &["demo"],
    &["cli"],
];

#[test]
fn dependencies_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = scan::edges(&src, &["lib", "main", "layers", "wire", "house"]);
    let problems = scan::problems(&edges, LAYERS);
    assert!(
        problems.is_empty(),
        "upward or sideways dependencies:\n{}",
        problems.join("\n")
    );
    // The checker sees what it should: known edges are found.
    assert!(edges.contains_key(&("actions".into(), "rollout".into())));
    assert!(edges.contains_key(&("cli".into(), "operator".into())));
    assert!(edges.contains_key(&("cli".into(), "actions".into())));
}

#[test]
fn an_upward_use_is_reported() {
    let edges = [(("api".to_string(), "cli".to_string()), "api/x.rs".to_string())].into();
    assert_eq!(
        scan::problems(&edges, LAYERS),
        ["api/x.rs: api uses crate::cli, which is not below it"]
    );
}

#[test]
fn references_are_read_from_code_only() {
    let code = "use crate::api::{self, x};\n// crate::cli in a comment\nuse crate::{error::Error, backoff::{Retry, delay}, cache};\nlet a = crate::metrics::M::new(crate::events::X);";
    let found: Vec<String> = scan::referenced(code).into_iter().collect();
    assert_eq!(found, ["api", "backoff", "cache", "error", "events", "metrics"]);
}
