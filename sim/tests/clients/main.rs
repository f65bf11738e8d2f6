//! baton-sim as the clients baton's users run see it — kube-rs and real kubectl — in one test
//! binary:
//!
//! * [`kube_client`]: kube-rs's watches, reflectors, concurrency, subresources, GC;
//! * [`kubectl`]: real kubectl, each test asserting what it prints;
//! * [`kubectl_cluster`]: what every cluster has — `kubectl create` of built-in kinds (protobuf
//!   bodies), `describe` and `events --for`, client-side and server-side apply;
//! * [`rbac_kubectl`]: `kubectl auth can-i`, `auth whoami` and `--as` against the RBAC-enforcing
//!   simulator.
//!
//! Every test starts a simulator of its own.
#[path = "../common/mod.rs"]
mod common;

mod kube_client;
mod kubectl;
mod kubectl_cluster;
mod rbac_kubectl;
