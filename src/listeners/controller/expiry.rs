//! A Lease's duration, as a decision reads it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;

/// The Lease's `leaseDurationSeconds`, `default` when it has none.
pub(super) fn lease_duration(lease: &Lease, default: i32) -> Duration {
    let secs = lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .filter(|d| *d > 0)
        .unwrap_or(default);
    Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1))
}
