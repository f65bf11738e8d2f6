//! Election settings: client-go's defaults and timing rules, and what [`run`](super::run) derives
//! from them.

use std::time::Duration;

/// client-go's default lease duration.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// client-go's default renew deadline.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// client-go's default retry period.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// client-go's `JitterFactor`: standbys wait `retry_period × [1, 1 + JITTER_FACTOR)` between
/// attempts, and the renew deadline must exceed `JITTER_FACTOR × retry_period`.
pub const JITTER_FACTOR: f64 = 1.2;
/// `leaseDurationSeconds` written when releasing (client-go's `ReleaseOnCancel`).
pub const RELEASED_LEASE_DURATION_SECONDS: i32 = 1;

/// Settings of one election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// Name of the Lease object (e.g. `baton-controller`).
    pub lease_name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity written to `holderIdentity` (the pod name); must be unique.
    pub identity: String,
    /// How long standbys wait, after they last saw the record change, before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops its work.
    pub renew_deadline: Duration,
    /// Time between a standby's acquire attempts and between the leader's renewals.
    pub retry_period: Duration,
}

/// What is wrong with an [`ElectionConfig`]. Messages follow client-go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("leader election: lease name must not be empty")]
    EmptyLeaseName,
    #[error("leader election: namespace must not be empty")]
    EmptyNamespace,
    #[error("leader election: identity must not be empty (Lock identity is empty)")]
    EmptyIdentity,
    #[error("leader election: leaseDuration must be greater than zero")]
    ZeroLeaseDuration,
    #[error("leader election: renewDeadline must be greater than zero")]
    ZeroRenewDeadline,
    #[error("leader election: retryPeriod must be greater than zero")]
    ZeroRetryPeriod,
    #[error("leader election: leaseDuration ({0:?}) must be at least 1s: the Lease stores whole seconds")]
    LeaseDurationTooShort(Duration),
    #[error(
        "leader election: leaseDuration ({lease_duration:?}) must be greater than renewDeadline ({renew_deadline:?})"
    )]
    LeaseNotLongerThanRenew {
        lease_duration: Duration,
        renew_deadline: Duration,
    },
    #[error(
        "leader election: renewDeadline ({renew_deadline:?}) must be greater than retryPeriod*JitterFactor ({retry_period:?} * {JITTER_FACTOR} = {min:?})"
    )]
    RenewNotLongerThanJitteredRetry {
        renew_deadline: Duration,
        retry_period: Duration,
        min: Duration,
    },
}

impl ElectionConfig {
    /// A config with client-go's default timings.
    pub fn new(lease_name: impl Into<String>, namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        ElectionConfig {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// Check the settings as client-go's `NewLeaderElector` does:
    /// `lease_duration > renew_deadline > JITTER_FACTOR × retry_period`, all greater than zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_name.is_empty() {
            return Err(ConfigError::EmptyLeaseName);
        }
        if self.namespace.is_empty() {
            return Err(ConfigError::EmptyNamespace);
        }
        if self.identity.is_empty() {
            return Err(ConfigError::EmptyIdentity);
        }
        if self.lease_duration.is_zero() {
            return Err(ConfigError::ZeroLeaseDuration);
        }
        if self.renew_deadline.is_zero() {
            return Err(ConfigError::ZeroRenewDeadline);
        }
        if self.retry_period.is_zero() {
            return Err(ConfigError::ZeroRetryPeriod);
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(ConfigError::LeaseDurationTooShort(self.lease_duration));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(ConfigError::LeaseNotLongerThanRenew {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        let min = self.retry_period.mul_f64(JITTER_FACTOR);
        if self.renew_deadline <= min {
            return Err(ConfigError::RenewNotLongerThanJitteredRetry {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
                min,
            });
        }
        Ok(())
    }

    /// `leaseDurationSeconds` to write: the lease duration rounded up to whole seconds.
    pub(super) fn lease_duration_seconds(&self) -> i32 {
        let secs = self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }

    /// How long after the renew deadline a `lead` future that ignores [`Leader::stop`](super::Leader::stop) is dropped:
    /// half the gap between the renew deadline and the lease duration.
    pub(super) fn abort_grace(&self) -> Duration {
        self.lease_duration.saturating_sub(self.renew_deadline) / 2
    }
}
