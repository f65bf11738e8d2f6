//! Listeners with real processes: every pod runs the `baton agent` binary as its sidecar
//! (attached to the simulated pod, so the simulated kubelet signals it), its app follows the
//! sidecar's endpoint or file and logs every start and stop, the controller is the `baton
//! controller` binary, and every Lease, ListenerSet and pod change is recorded. Each test runs in
//! its own namespace of one shared simulator and ends by checking the whole run: no listener in
//! two apps at any moment (exact intervals, and samples every 20 ms), no fencing token that went
//! back, nothing assigned to a pod after it was marked dead.

mod harness;

mod collision;
mod configs;
mod conformance;
mod controller_writes;
mod force;
mod in_flight;
mod lagging;
mod liveness;
mod many_sets;
mod migration;
mod notifications;
mod operator;
mod real_faults;
mod rebalance;
mod release;
mod seed;
mod sidecar;
mod starting;
mod unregistered;
mod upgrade;
mod workloads;

use harness::R;

/// Fail with every violation the run shows.
pub fn assert_clean(ns: &harness::Ns, check_starting: bool) {
    let v = ns.violations(check_starting);
    assert!(v.is_empty(), "{} violations:\n{}", v.len(), v.join("\n"));
}

/// Unwrap a harness result.
pub fn ok<T>(r: R<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}
