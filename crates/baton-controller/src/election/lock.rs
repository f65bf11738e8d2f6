//! The Lease as a lock: reads and resourceVersion-conditional writes, no timing decisions.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};

use super::{ElectionConfig, RELEASED_LEASE_DURATION_SECONDS};

/// Result of one conditional write.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    /// The write was accepted; the Lease as stored.
    Written(Box<Lease>),
    /// `409`: the Lease changed since it was read, or it was created by someone else meanwhile.
    Conflict,
}

/// The Lease as a lock: reads and resourceVersion-conditional writes, no timing decisions.
#[derive(Clone)]
pub struct LeaseLock {
    pub(super) api: Api<Lease>,
    name: String,
    pub(super) identity: String,
    lease_duration_seconds: i32,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("lease_duration_seconds", &self.lease_duration_seconds)
            .finish()
    }
}

/// The non-empty holder of a Lease.
pub fn holder_of(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

pub(super) fn transitions_of(lease: &Lease) -> i32 {
    lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0)
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl LeaseLock {
    /// A lock on Lease `cfg.namespace/cfg.lease_name` for `cfg.identity`.
    pub fn new(client: kube::Client, cfg: &ElectionConfig) -> Self {
        LeaseLock {
            api: Api::namespaced(client, &cfg.namespace),
            name: cfg.lease_name.clone(),
            identity: cfg.identity.clone(),
            lease_duration_seconds: cfg.lease_duration_seconds(),
        }
    }

    /// Read the Lease (None when it does not exist).
    pub async fn get(&self) -> Result<Option<Lease>, kube::Error> {
        self.api.get_opt(&self.name).await
    }

    /// Make this identity the holder, or renew it, conditional on `current` being the latest
    /// version: create when `current` is None, else replace with `current`'s resourceVersion.
    /// Renewing (holder already this identity) keeps `acquireTime` and `leaseTransitions`;
    /// taking over from anyone else (or from a free Lease) sets `acquireTime` and increments
    /// `leaseTransitions`. Deciding *whether* to take over (expiry) is the caller's job.
    pub async fn acquire_or_renew(&self, current: Option<&Lease>) -> Result<WriteOutcome, kube::Error> {
        let now = now_micro();
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(self.lease_duration_seconds),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(cur) => {
                let mut next = cur.clone();
                let ours = holder_of(cur) == Some(self.identity.as_str());
                let spec = next.spec.get_or_insert_with(LeaseSpec::default);
                if !ours {
                    spec.acquire_time = Some(now.clone());
                    spec.lease_transitions = Some(transitions_of(cur).saturating_add(1));
                } else if spec.acquire_time.is_none() {
                    spec.acquire_time = Some(now.clone());
                }
                spec.holder_identity = Some(self.identity.clone());
                spec.lease_duration_seconds = Some(self.lease_duration_seconds);
                spec.renew_time = Some(now);
                self.replace(&next).await
            }
        };
        match result {
            Ok(l) => Ok(WriteOutcome::Written(Box::new(l))),
            Err(e) if is_conflict(&e) => Ok(WriteOutcome::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Release a Lease this identity holds, conditional on `current` being the latest version:
    /// `holderIdentity` cleared and `leaseDurationSeconds: 1` (client-go's `ReleaseOnCancel`),
    /// `leaseTransitions` kept. If `current` is stale but the Lease is still ours (a write of
    /// ours landed after `current` was read, or someone touched its metadata), it re-reads and
    /// retries once. Returns whether the Lease was released.
    pub async fn release(&self, current: &Lease) -> Result<bool, kube::Error> {
        let mut cur = current.clone();
        for _ in 0..2 {
            if holder_of(&cur) != Some(self.identity.as_str()) {
                return Ok(false);
            }
            let mut next = cur.clone();
            let now = now_micro();
            let spec = next.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(RELEASED_LEASE_DURATION_SECONDS);
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            match self.replace(&next).await {
                Ok(_) => return Ok(true),
                Err(e) if is_conflict(&e) => match self.get().await? {
                    Some(l) => cur = l,
                    None => return Ok(false),
                },
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        // `lease` carries the resourceVersion it was read with: the server answers 409 if the
        // Lease has changed since.
        self.api.replace(&self.name, &PostParams::default(), lease).await
    }
}
