//! Identity and timing of an agent, and which ListenerSets it serves.

use std::time::Duration;

use baton_api::listenerset::LISTENERSET_LABEL;

/// Which ListenerSets the agent serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetFilter {
    /// Every ListenerSet of the namespace.
    All,
    /// These ListenerSets.
    Names(Vec<String>),
}

/// Identity and timing of an agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub sets: SetFilter,
    /// Renew every this long; None = a quarter of the shortest lease duration of the listeners
    /// held (of the default, 15 s, with none).
    pub renew_interval: Option<Duration>,
    /// Stop a listener this long before its Lease could expire; None = max(duration / 5, 500 ms)
    /// (at most half the duration). It must cover the time the application needs to stop.
    pub safety_margin: Option<Duration>,
    /// First wait before retrying a failed write; doubled (with jitter) on each failure.
    pub retry_period: Duration,
    /// Longest wait between retries of a failed write.
    pub max_retry_period: Duration,
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
            max_retry_period: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(10),
        }
    }

    /// Only these ListenerSets.
    pub fn with_sets<I: IntoIterator<Item = S>, S: Into<String>>(mut self, sets: I) -> Self {
        self.sets = SetFilter::Names(sets.into_iter().map(Into::into).collect());
        self
    }

    /// Whether the agent serves ListenerSet `set`.
    pub fn serves(&self, set: &str) -> bool {
        match &self.sets {
            SetFilter::All => true,
            SetFilter::Names(n) => n.is_empty() || n.iter().any(|s| s == set),
        }
    }

    /// The per-set watch's label selector (controllers of the per-listener protocol).
    pub(super) fn sets_selector(&self) -> String {
        match &self.sets {
            SetFilter::Names(n) if !n.is_empty() => format!("{LISTENERSET_LABEL} in ({})", n.join(",")),
            _ => LISTENERSET_LABEL.to_string(),
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
