//! The API server of the simulated cluster: the set's listener Leases and the pods' liveness
//! Leases as it holds them, which the agents ([`super::agent`]) and the controller
//! ([`super::controller`]) read and the world ([`super::world`]) writes.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The lease duration of the simulated set.
pub(super) const D: Duration = Duration::from_secs(2);

/// A listener Lease as the API server holds it.
#[derive(Clone, Debug)]
pub(super) struct ListenerLease {
    pub holder: Option<(String, String)>,
    /// The uid its Pod ownerReference (and holder label) names; a release keeps it.
    pub owner: Option<String>,
    pub token: i32,
    pub rv: u64,
    pub renew: u64,
    pub acquire: u64,
    pub release_requested: bool,
    /// The pod (name, uid) the release request hands it to, if it names one.
    pub successor: Option<(String, String)>,
    pub terminating: bool,
}

/// A pod's liveness Lease as the API server holds it.
#[derive(Clone, Debug)]
pub(super) struct LiveM {
    /// When it was created (its uid).
    pub created: u64,
    pub registered: bool,
    pub transitions: i32,
    pub renew: u64,
    pub rv: u64,
    pub fenced: bool,
    /// Its agent marked the registration leaving (it shuts down); a registration clears it.
    pub leaving: bool,
}

#[derive(Default)]
pub(super) struct Api {
    pub rv: u64,
    /// By listener.
    pub leases: BTreeMap<String, ListenerLease>,
    /// By pod uid.
    pub live: BTreeMap<String, LiveM>,
    /// Every tenure whose holder acknowledged it: (listener, holder uid, token).
    pub acknowledged: BTreeSet<(String, String, i32)>,
}

impl Api {
    pub fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }
}
