//! Robustness of `baton controller`, replayed against the simulator with
//! the real binary where the case is the process's own behaviour:
//!
//! * `startup`: transient API errors at startup (409/429/5xx) are retried, many starts.
//! * `poison`: an object the API server stored but the Rust type cannot decode is skipped and
//!   reported; every other object is reconciled, through restarts.
//! * `shutdown`: SIGTERM ends a poisoned or stuck controller within a bound and releases its
//!   leader Lease.
//! * `restarts`: 20 restarts, each `/readyz` 200 and every object reconciled.
//! * `backoff`: a failing reconcile backs off exponentially per object, one log line per attempt.
//! * `bad_input`: the bad-input table, with a canary Rollout and ListenerSet reconciled
//!   throughout and after a restart.
//! * `crd_deleted`: a CRD deleted with kubectl under a running controller is reported, and its
//!   ListenerSets leave no Lease behind.
//!
//! `BATON_TEST_BIN=/path/to/baton` runs them against another build of the binary, e.g. one
//! from before a fix, to see them fail.
mod controller;

mod backoff;
mod bad_input;
mod crd_deleted;
mod poison;
mod restarts;
mod shutdown;
mod startup;
