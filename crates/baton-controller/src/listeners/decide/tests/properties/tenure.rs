//! A new tenure of a listener in the simulated cluster, and what must hold when it begins.
use proptest::prelude::*;

use super::api::ListenerLease;
use super::world::World;

impl World {
    /// A new tenure of `listener` for pod `to` with fencing token `token`, written by the
    /// controller or handed over by an agent: nothing may still run the listener, and the token
    /// is above every token its Leases carried and within the ceiling the status carries.
    pub(super) fn tenure(&mut self, listener: &str, to: &(String, String), token: i32) -> Result<(), TestCaseError> {
        let on: Vec<(&str, i32)> = self
            .pods
            .iter()
            .filter_map(|p| Some((p.uid.as_str(), p.agent.as_ref()?.running.get(listener)?.token)))
            .collect();
        prop_assert!(
            on.is_empty(),
            "{listener} given to {} (token {token}) while (pod, token) {on:?} may run it",
            to.0
        );
        let high = self.high.get(listener).copied();
        prop_assert!(
            high.is_none_or(|h| token > h),
            "{listener} given token {token} after {high:?}"
        );
        prop_assert!(
            self.ceiling.is_some_and(|c| token <= c),
            "token {token} above the ceiling {:?}",
            self.ceiling
        );
        self.high.insert(listener.to_string(), token);
        let terminating = self.api.leases.get(listener).is_some_and(|l| l.terminating);
        let rv = self.api.bump();
        let lease = ListenerLease {
            holder: Some(to.clone()),
            owner: Some(to.1.clone()),
            token,
            rv,
            renew: rv,
            acquire: rv,
            release_requested: false,
            successor: None,
            terminating,
        };
        self.api.leases.insert(listener.to_string(), lease);
        Ok(())
    }
}
