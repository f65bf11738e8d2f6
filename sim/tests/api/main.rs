//! baton-sim's API server as clients meet kube-apiserver's: the same codes, messages, field paths
//! and headers for what it accepts and refuses, in one test binary:
//!
//! * [`admission_policy`]: ValidatingAdmissionPolicies and their bindings (CEL, match
//!   conditions, Deny and Warn, failure policy);
//! * [`authn`]: bearer tokens, anonymous requests, ServiceAccount tokens from TokenRequest,
//!   TokenReview;
//! * [`bad_input`]: bad input never crashes the server, each gets kube-apiserver's Status;
//! * [`banner`]: `baton-sim serve` prints the address its kubeconfig names;
//! * [`cel`]: CEL validation rules and list-type uniqueness on custom resources, and the checks
//!   of rules when a CRD is written;
//! * [`crd_deletion`]: deleting a CRD — `Terminating`, its custom resources deleted first;
//! * [`fairness`]: API Priority and Fairness — the per-user 429s, and real kubectl's retries;
//! * [`field_managers`]: the field manager a write is recorded as;
//! * [`fidelity`]: DELETE answers, dry-run, metadata-only answers, content negotiation, Events;
//! * [`protobuf_zero_values`]: protobuf bodies read as kube-apiserver reads them;
//! * [`rbac`]: RBAC authorization, escalation prevention, 403s in kube-apiserver's words;
//! * [`workload_validation`]: defaults and refusals of `apps/v1` workloads before any controller.
//!
//! Every test starts a simulator (or a `baton-sim serve` process) of its own.
#[path = "../common/mod.rs"]
mod common;

mod admission_policy;
mod authn;
mod bad_input;
mod banner;
mod cel;
mod crd_deletion;
mod fairness;
mod fidelity;
mod field_managers;
mod protobuf_zero_values;
mod rbac;
mod workload_validation;
