//! What baton ships besides its binary — the CRDs, the Helm chart, the plain manifests and the
//! Argo CD resource customizations — checked the way users and clusters consume them, in one test
//! binary:
//!
//! * [`argocd_customizations`]: the health and action scripts of `config/argocd/` pass argo-cd's
//!   own test cases with Lua 5.1, and install as the docs show (offline);
//! * [`chart`]: the chart's CRD copies are the generated ones, the chart lints, renders and
//!   installs with Helm's engine, its dashboard and alerts pass `promtool`, every value is
//!   documented;
//! * [`chart_rbac`]: the chart's RBAC and admission policies with the controller, the agents and
//!   the dashboard running as the chart's ServiceAccounts, with no 401/403, and the refusals it
//!   was written for;
//! * [`crds`]: `crds/` is what `baton crds` prints, applies client- and server-side, and its CEL
//!   rules are estimated under budget;
//! * [`crd_rules`]: the CRDs' validation rules and bounds, each violation a 422 naming the field.
//!
//! They run on both backends: baton-sim, a simulator per test, and the real control plane
//! (`BATON_TEST_CLUSTER=real`), where each test works in namespaces of its own and names what it
//! creates cluster-wide uniquely. The Helm checks need `.venv` with helm-python-sdk (`make
//! deps`); `BATON_SKIP_HELM_CHECKS=1` skips them.
// `support` and `world` each bring their own copy of the kubectl and real-control-plane helpers.
#![allow(clippy::duplicate_mod)]
#[path = "../dashboard/harness.rs"]
mod dashboard_harness;
#[path = "../support/helm.rs"]
mod helm;
#[path = "../support/mod.rs"]
mod support;
#[path = "../support/world.rs"]
mod world;

mod argocd_customizations;
mod chart;
mod chart_rbac;
mod crd_rules;
mod crds;
