//! What expiry is judged from (see [`crate::listeners::decide`]): a Lease's holder record and
//! duration.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;

use crate::listeners::assigner;
use crate::listeners::decide::LeaseFacts;

/// The fields only a holder's renewals (or an assignment) change.
fn holder_record(lease: &Lease) -> String {
    let spec = lease.spec.as_ref();
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        spec.and_then(|s| s.holder_identity.as_deref()),
        spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
        spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0),
        spec.and_then(|s| s.lease_transitions),
    )
}

pub(super) fn lease_duration(lease: &Lease, default: i32) -> Duration {
    let secs = lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .filter(|d| *d > 0)
        .unwrap_or(default);
    Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1))
}

/// What the decision needs of a Lease of set `set`; `None` if it is not a listener Lease of it.
pub(super) fn lease_facts(lease: &Lease, set: &str, default_duration: i32) -> Option<LeaseFacts> {
    Some(LeaseFacts {
        name: lease.name_any(),
        view: assigner::lease_view(lease, set, false)?,
        record: holder_record(lease),
        duration: lease_duration(lease, default_duration),
    })
}
