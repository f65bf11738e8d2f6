//! ListenerSets end to end on the simulator: the ListenerSet controller and the agent library
//! in-process (the agent as each simulated pod's process), and the `baton agent` sidecar binary,
//! in one test binary:
//!
//! * [`agent_sidecar`]: the real `baton agent` as a pod's sidecar, driven through its file and
//!   its localhost HTTP endpoints the way an application would;
//! * [`argocd`]: Argo CD's health of a ListenerSet (the shipped `health.lua`) in each state;
//! * [`deletion`]: deleting a ListenerSet — holders stop and release, Leases go, then the set;
//! * [`failures`]: crashed and partitioned agents, a controller replaced mid-handover, `recover`;
//! * [`flux`]: Flux's view (kstatus) of a ListenerSet in each state;
//! * [`handover`]: SIGTERM handovers, and a Rollout moving listeners without duplicates;
//! * [`lifecycle`]: suspend/resume, removal, a missing Secret, config, the write counters;
//! * [`rebalance`]: evening out after a scale-out that adds pods one at a time;
//! * [`stale_cache`]: a lagging pod cache never makes the controller write a Lease for a gone pod.
//!
//! The scenarios hold one lock for their whole run ([`listener_world::serial`]): each drives
//! agents, controllers and a simulator on cores the others would share. Listeners with real
//! processes, on both backends, are `tests/listener_procs`.
// The serial guard is held for a whole test on that test's own runtime: intended.
#![allow(clippy::await_holding_lock)]
#[path = "../support/listener_world.rs"]
mod listener_world;
#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod agent_sidecar;
mod argocd;
mod deletion;
mod failures;
mod flux;
mod handover;
mod lifecycle;
mod rebalance;
mod stale_cache;
