//! `baton dashboard`: the real binary against the simulator, with the operator
//! running in-process — every endpoint over HTTP (pages, live stream, assets, actions), the
//! refusals (RBAC's 403 in kubectl's words, CSRF, Host and Origin), escaping of what comes
//! from the cluster, and a real browser (headless Chromium through chromedriver) watching a
//! rollout and promoting it.
#[path = "../support/mod.rs"]
mod support;

mod harness;

mod actions;
mod browser;
mod demo;
mod pages;
mod security;
