//! Identity and timing of an agent, and which listener Leases it looks at.

use std::time::Duration;

use crate::api::listenerset::LISTENERSET_LABEL;

/// Which listener Leases the agent looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetFilter {
    /// Every ListenerSet of the namespace.
    All,
    /// These ListenerSets.
    Names(Vec<String>),
    /// Leases matching this extra label selector (e.g. `baton.dev/listenerset=sxt`).
    Selector(String),
}

/// Identity and timing of an agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub sets: SetFilter,
    /// Renew every this long; None = a quarter of each Lease's duration.
    pub renew_interval: Option<Duration>,
    /// Stop a listener this long before its Lease could expire; None = max(duration / 5, 500 ms)
    /// (at most half the duration). It must cover the time the application needs to stop.
    pub safety_margin: Option<Duration>,
    /// Wait between retries of a failed write.
    pub retry_period: Duration,
    /// Give up on one API request after this long.
    pub request_timeout: Duration,
    /// On shutdown, how long to wait for the application to acknowledge its stops.
    pub stop_timeout: Duration,
}

impl AgentConfig {
    pub fn new(namespace: impl Into<String>, pod_name: impl Into<String>, pod_uid: impl Into<String>) -> Self {
        AgentConfig {
            namespace: namespace.into(),
            pod_name: pod_name.into(),
            pod_uid: pod_uid.into(),
            sets: SetFilter::All,
            renew_interval: None,
            safety_margin: None,
            retry_period: Duration::from_millis(250),
            request_timeout: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(10),
        }
    }

    /// Only these ListenerSets.
    pub fn with_sets<I: IntoIterator<Item = S>, S: Into<String>>(mut self, sets: I) -> Self {
        self.sets = SetFilter::Names(sets.into_iter().map(Into::into).collect());
        self
    }

    pub(super) fn label_selector(&self) -> String {
        match &self.sets {
            SetFilter::All => LISTENERSET_LABEL.to_string(),
            SetFilter::Names(n) if n.is_empty() => LISTENERSET_LABEL.to_string(),
            SetFilter::Names(n) => format!("{LISTENERSET_LABEL} in ({})", n.join(",")),
            SetFilter::Selector(s) => format!("{LISTENERSET_LABEL},{s}"),
        }
    }

    pub(super) fn renew_every(&self, duration: Duration) -> Duration {
        self.renew_interval
            .unwrap_or(duration / 4)
            .max(Duration::from_millis(50))
    }

    pub(super) fn margin(&self, duration: Duration) -> Duration {
        self.safety_margin
            .unwrap_or_else(|| (duration / 5).max(Duration::from_millis(500)))
            .min(duration / 2)
    }
}
