//! The differential suite: the same request sequences sent to baton-sim and to the real
//! kube-apiserver (v1.33, the control plane `baton-cluster` runs), the answers compared after
//! normalising what must differ (uids, timestamps, resourceVersions, generated names, server
//! addresses). Every difference is either fixed in baton-sim or documented, with its reason,
//! in `known.rs` and docs/simulator.md ("Differences from kube-apiserver"); an undocumented one
//! fails its test. Each test prints its figures; the last one prints the suite's.
//!
//! The tests need the real control plane, so they are `#[ignore]`d in the baton-sim-only
//! tier; `make test-real` runs them (`cargo test -p baton-sim --test differential --
//! --ignored` under `baton-cluster exec`). By hand, against a running control plane:
//! `BATON_CLUSTER_DIR=target/cluster-dev cargo test -p baton-sim --test differential -- --ignored`.

mod diff;
mod harness;
mod known;
mod normalise;
mod report;

#[path = "../../../tests/support/kubectl.rs"]
mod kubectl;

mod setup;

mod crud;
mod deletion;
mod discovery;
mod leases_events;
mod lists;
mod patch;
mod rbac;
mod subresources;
mod tables;
mod validation;
mod watches;

/// Every test of the suite (the summary line waits for all of them).
pub const TESTS: &[&str] = &[
    "create_get_update_delete",
    "patches_and_server_side_apply",
    "status_and_scale_subresources",
    "lists_pages_and_selectors",
    "watches_from_a_resource_version",
    "crd_validation_failures",
    "metadata_limits_and_dry_run",
    "rbac_denials",
    "tables_and_kubectl",
    "propagation_policies",
    "finalizers_and_namespace_deletion",
    "leases",
    "events_in_one_store",
    "discovery_and_version",
];
