//! Dependencies point one way: every `crate::<module>` reference in `src/` goes to a lower layer
//! than the module it is written in. This test reads the sources and lists every edge that does
//! not (and every top-level module missing from [`LAYERS`]).

use std::path::Path;

pub(crate) mod scan;

/// Top-level modules, bottom first. A module may use only modules of a lower layer: the
/// subsystems (`rollout`, `listeners`, `agent`, `election`) share a layer, so none of them uses
/// another; `operator` wires them; `actions` (what an operator does to a Rollout) serves the
/// dashboard and the CLI; the demo serves the dashboard; the CLI runs the demo and the
/// dashboard, never the reverse. `api` and `agent` are the crates `baton-api` and `baton-agent`
/// (re-exported): the compiler keeps what they use; here they are the layers they are used from.
const LAYERS: &[&[&str]] = &[
    &["api", "malloc"],
    &["error", "events", "telemetry", "metrics", "cache", "stdout"],
    &["backoff", "probes", "session", "throttle", "notify"],
    &["rollout", "listeners", "agent", "election"],
    &["operator", "actions"],
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
    assert!(edges.contains_key(&("rollout".into(), "api".into())));
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
