//! ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1): filled in by the admission
//! policy step.

/// The policies and bindings at one point in time.
#[derive(Debug, Default)]
pub struct Snapshot {}
