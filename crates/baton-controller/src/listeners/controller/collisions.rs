//! Listener Lease names taken by Leases that are not the set's: the create of a listener's
//! Lease answers AlreadyExists while the set's Lease cache (label-selected) has no such Lease.
//! The controller never takes a Lease it did not create (and its admission policy would refuse
//! it), so the listener stays pending: the set's Degraded condition and a Warning Event name the
//! Lease, and the create is tried again every [`RETRY`] (two requests), not in a hot loop.
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;

use kube::api::Api;
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::{publish, Context, SetKey};
use crate::api::listenerset::{lease::lease_name, ListenerSet, LISTENERSET_LABEL, REASON_LEASE_NAME_TAKEN};
use crate::events::Severity as EventType;

/// How often a listener whose Lease name is taken is tried again.
pub(super) const RETRY: Duration = Duration::from_secs(10);

/// (namespace, set) → listener → what takes its Lease name.
#[derive(Default)]
pub(super) struct Collisions(Mutex<HashMap<SetKey, BTreeMap<String, String>>>);

impl Collisions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SetKey, BTreeMap<String, String>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The set's collisions, as condition messages; forgets those whose listener has a Lease of
    /// the set now (`leases`, by listener) or is no longer `wanted`.
    pub(super) fn of(
        &self,
        (ns, set): (&str, &str),
        leases: &super::read::LeaseByListener,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut all = self.lock();
        let key = (ns.to_string(), set.to_string());
        let Some(mine) = all.get_mut(&key) else {
            return Vec::new();
        };
        mine.retain(|listener, _| !leases.contains_key(listener) && wanted(listener));
        let out = mine.values().cloned().collect();
        if mine.is_empty() {
            all.remove(&key);
        }
        out
    }

    /// Whether `listener` of the set is known to collide.
    pub(super) fn known(&self, (ns, set): (&str, &str), listener: &str) -> bool {
        self.lock()
            .get(&(ns.to_string(), set.to_string()))
            .is_some_and(|m| m.contains_key(listener))
    }

    /// The set is gone.
    pub(super) fn forget(&self, ns: &str, set: &str) {
        self.lock().remove(&(ns.to_string(), set.to_string()));
    }

    fn record(&self, (ns, set): (&str, &str), listener: &str, message: String) -> bool {
        self.lock()
            .entry((ns.to_string(), set.to_string()))
            .or_default()
            .insert(listener.to_string(), message)
            .is_none()
    }
}

/// After creates of `listeners`' Leases answered AlreadyExists: read each Lease, and record those
/// that are not the set's (a Lease of the set is a race the next pass sees). How many are newly
/// found.
pub(super) async fn probe(ctx: &Context, set: &ListenerSet, ns: &str, listeners: &[String]) -> usize {
    let name = set.name_any();
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let mut found = Vec::new();
    for listener in listeners {
        let lease = lease_name(&name, listener);
        let Ok(Some(l)) = api.get_opt(&lease).await else {
            continue;
        };
        let owner = l.labels().get(LISTENERSET_LABEL).cloned();
        if owner.as_deref() == Some(name.as_str()) {
            continue;
        }
        let whose = match owner {
            Some(other) => format!("it belongs to ListenerSet {other}"),
            None => "it has no baton.dev/listenerset label: another component's".to_string(),
        };
        let message = format!(
            "listener {listener} cannot run: Lease {ns}/{lease} exists and is not this set's ({whose}); delete or \
             rename that Lease, or rename the listener"
        );
        if ctx.collisions.record((ns, &name), listener, message.clone()) {
            warn!(namespace = %ns, listenerset = %name, %listener, lease = %lease, "{message}");
            found.push(message);
        }
    }
    if !found.is_empty() {
        let note = found.join("; ");
        publish(
            ctx,
            &set.object_ref(&()),
            EventType::Warning,
            REASON_LEASE_NAME_TAKEN,
            &note,
        );
    }
    found.len()
}
