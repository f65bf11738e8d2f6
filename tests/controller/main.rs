//! `baton controller` as a process, and the leader election it runs on: the real binary (or the
//! election library in-process) against the simulator, in one test binary:
//!
//! * [`election`]: leader election in-process — one leader at a time, handover through a
//!   released Lease, takeover after a crash, a partitioned leader, resourceVersion races, and
//!   leaders whose work hogs their thread;
//! * [`ha`]: two controller processes with leader election — the standby writes nothing, SIGTERM
//!   and kill -9 of the leader mid-rollout, a partitioned leader, missing CRDs;
//! * [`polite`]: client-side rate limits against the simulator's API Priority and Fairness,
//!   retries after 429, shards, and a pod cache holding only the controller's own pods;
//! * [`robustness`]: transient errors at startup, objects the types cannot decode, SIGTERM,
//!   restarts, per-object backoff, the bad-input table, a CRD deleted under the controller.
//!
//! Every test starts a simulator of its own and leans on what only it offers (its write log,
//! fault rules, flow limits): `make test-real` does not run this binary.
#[path = "../support/mod.rs"]
mod support;

mod election;
mod ha;
mod polite;
mod robustness;
