//! Dependencies point one way inside the crate: every `crate::<module>` reference in `src/`
//! goes to a lower layer than the module it is written in. This test reads the sources and
//! lists every edge that does not (and every top-level module missing from [`LAYERS`]). The
//! crate graph keeps the rest: this crate cannot reach the agent, the CLI or the dashboard.

use std::path::Path;

#[path = "../../../src/layers/scan.rs"]
mod scan;

/// Top-level modules, bottom first. A module may use only modules of a lower layer: the
/// subsystems (`rollout`, `listeners`, `election`) share a layer, so none of them uses another;
/// `operator` wires them. `api` is the crate `baton-api`.
const LAYERS: &[&[&str]] = &[
    &["api", "malloc"],
    &["error", "events", "metrics", "cache"],
    &["backoff", "probes", "throttle", "webhooks"],
    &["rollout", "listeners", "election"],
    &["operator"],
];

#[test]
fn dependencies_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = scan::edges(&src, &["lib", "layers"]);
    let problems = scan::problems(&edges, LAYERS);
    assert!(
        problems.is_empty(),
        "upward or sideways dependencies:\n{}",
        problems.join("\n")
    );
    // The checker sees what it should: known edges are found.
    assert!(edges.contains_key(&("rollout".into(), "api".into())));
    assert!(edges.contains_key(&("operator".into(), "listeners".into())));
}
