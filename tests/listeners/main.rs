//! ListenerSet controller + agent, end to end on the simulator.
// The serial guard is held for a whole test on that test's own runtime: intended.
#![allow(clippy::await_holding_lock)]
#[path = "../support/listener_world.rs"]
mod listener_world;
#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod argocd;
mod deletion;
mod failures;
mod flux;
mod handover;
mod lifecycle;
mod stale_cache;
