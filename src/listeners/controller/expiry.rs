//! Lease expiry, judged on this process's monotonic clock: a Lease is expired when
//! `leaseDurationSeconds` have passed since this process first saw its holder's current record
//! (client-go's rule); `renewTime` is never compared with the local wall clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use tokio::time::Instant;

use super::Context;
use crate::listeners::assigner::{self, LeaseView};

/// (namespace, set, listener) of an observed Lease.
pub(super) type LeaseKey = (String, String, String);

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

pub(super) fn holder_of(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// The Leases of one set as this reconcile judges them.
pub(super) struct ObservedLeases {
    pub(super) views: Vec<LeaseView>,
    /// The Lease behind each view, by listener.
    pub(super) by_listener: BTreeMap<String, Arc<Lease>>,
    /// When the first live Lease expires, unless renewed.
    pub(super) next_expiry: Option<Instant>,
    /// Leases expired at once by a recover (their holder is not live).
    pub(super) recovered: usize,
}

/// Views of the `leases` of set `name` in `ns`, with expiry judged on our monotonic clock. With
/// `live_now` (a recover), Leases of holders not in it are expired at once.
pub(super) fn observe_leases(
    ctx: &Context,
    ns: &str,
    name: &str,
    leases: &[Arc<Lease>],
    live_now: Option<&BTreeSet<String>>,
    default_duration: i32,
    now: Instant,
) -> ObservedLeases {
    let mut next_expiry: Option<Instant> = None;
    let mut lease_views = Vec::new();
    let mut lease_by_listener: BTreeMap<String, Arc<Lease>> = BTreeMap::new();
    let mut recovered = 0usize;
    {
        let mut observed = ctx.observed.lock().unwrap_or_else(|p| p.into_inner());
        let current: BTreeSet<String> = leases.iter().map(|l| l.name_any()).collect();
        observed.retain(|(n, s, lname), _| n != ns || s != name || current.contains(lname));
        for lease in leases {
            let lname = lease.name_any();
            // Expiry counts from the last change the *holder* made (holder, renewal, transitions),
            // like client-go's observed record: the controller's own writes (release requests)
            // must not look like signs of life from a dead holder.
            let rv = holder_record(lease);
            let entry = observed
                .entry((ns.to_string(), name.to_string(), lname))
                .or_insert_with(|| (rv.clone(), now));
            if entry.0 != rv {
                *entry = (rv, now);
            }
            let duration = lease_duration(lease, default_duration);
            let expires_at = entry.1 + duration;
            let mut expired = holder_of(lease).is_some() && now >= expires_at;
            if let (Some(holder), Some(live_now)) = (holder_of(lease), live_now) {
                let live = live_now.contains(holder);
                if !live && !expired {
                    expired = true;
                    recovered += 1;
                }
            }
            if holder_of(lease).is_some() && !expired {
                next_expiry = Some(next_expiry.map_or(expires_at, |t| t.min(expires_at)));
            }
            if let Some(view) = assigner::lease_view(lease, name, expired) {
                lease_by_listener.insert(view.listener.clone(), lease.clone());
                lease_views.push(view);
            }
        }
    }
    ObservedLeases {
        views: lease_views,
        by_listener: lease_by_listener,
        next_expiry,
        recovered,
    }
}
