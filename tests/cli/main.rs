//! The `baton` command line, end to end: the real binary (and real kubectl running it as the
//! plugin `kubectl baton`) against the test's API server — baton-sim, or the real control plane
//! (`BATON_TEST_CLUSTER=real`), where each test's namespaces are its own — in one test binary:
//!
//! * [`basics`]: kubectl's global flags, `rollout list -A`, `-o`, tables, error messages, a
//!   closed pipe;
//! * [`completion`]: shell completion of resource names (bash, and kubectl's plugin completion);
//! * [`exit_codes`]: one table of exit codes for every command;
//! * [`lint`]: `baton rollout lint`, offline;
//! * [`listeners`]: `baton listeners …` and what every view says when no listener can move;
//! * [`output`]: kubectl's printing flags, each printing what `kubectl get` prints;
//! * [`rollout`]: the `baton rollout …` commands with the operator running.
#[path = "../cli_support/mod.rs"]
mod cli_support;
#[path = "../dashboard/harness.rs"]
mod dashboard;
#[path = "../support/listener_world.rs"]
mod listener_world;
#[path = "../support/mod.rs"]
mod support;

mod basics;
mod completion;
mod exit_codes;
mod lint;
mod listeners;
mod output;
mod rollout;
