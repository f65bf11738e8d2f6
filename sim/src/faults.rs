//! Fault injection, switchable at run time: latency, error rates, blocked clients, a paused
//! server, watches closed mid-stream, and watch events held back. Rules match a client identity: a substring of its
//! User-Agent or its bearer token, or every client when the rule has none.
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

/// One fault rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultRule {
    /// Substring of the User-Agent or bearer token the rule applies to; None = every client.
    pub client: Option<String>,
    pub latency: Duration,
    /// Fraction of requests (0.0–1.0) answered with one of `error_codes`.
    pub error_rate: f64,
    pub error_codes: Vec<u16>,
    /// Requests hang until unblocked; open watches stop delivering (a network partition).
    pub blocked: bool,
    /// Substring of the request path the rule's errors and latency apply to (e.g.
    /// `/rollouts/web/status`); None = every path. Partitions ignore it.
    pub path: Option<String>,
    /// Each event of the client's open watches reaches it this long after its write, in order
    /// (a watch cache or a network that lags behind the store); its own requests are answered
    /// as before, so it can read what its watches do not show yet. Events sent when a watch
    /// opens (the initial list, the history it resumes from) are not held back. With `path`,
    /// only watches of the resource it names (`/leases`: every watch of Leases).
    pub watch_delay: Duration,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<FaultRule>,
    paused: bool,
    counter: u64,
    /// Requests answered with an injected error so far.
    injected: u64,
}

/// What a request must suffer, decided when it arrives.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass { latency: Duration },
    Fail { latency: Duration, code: u16 },
}

/// Fault controls shared by the server and tests.
pub struct Faults {
    state: Mutex<State>,
    /// Bumped on every change, so waiting requests and watches re-check.
    changed: watch::Sender<u64>,
    /// Bumped to close open watches; the value carries the client filter.
    drop_watches: watch::Sender<(u64, Option<String>)>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
            drop_watches: watch::channel((0, None)).0,
        }
    }
}

fn matches(rule: &FaultRule, identity: &str) -> bool {
    rule.client.as_deref().is_none_or(|c| identity.contains(c))
}

/// Whether `identity` may not talk to the server now: it is blocked, or the server paused.
fn held(state: &State, identity: &str) -> bool {
    state.paused || state.rules.iter().any(|r| r.blocked && matches(r, identity))
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut g);
        drop(g);
        self.changed.send_modify(|v| *v += 1);
        r
    }

    /// Add a rule; returns its index.
    pub fn add_rule(&self, rule: FaultRule) -> usize {
        self.with(|s| {
            s.rules.push(rule);
            s.rules.len() - 1
        })
    }

    /// Remove every rule equal to `rule` (the others, e.g. other tests' partitions, stay).
    pub fn remove_rule(&self, rule: &FaultRule) {
        self.with(|s| s.rules.retain(|r| r != rule));
    }

    pub fn clear(&self) {
        self.with(|s| {
            s.rules.clear();
            s.paused = false;
        })
    }

    pub fn set_latency(&self, client: Option<&str>, latency: Duration) {
        self.add_rule(FaultRule {
            client: client.map(str::to_string),
            latency,
            ..FaultRule::default()
        });
    }

    pub fn set_error_rate(&self, client: Option<&str>, rate: f64, codes: &[u16]) {
        self.add_rule(FaultRule {
            client: client.map(str::to_string),
            error_rate: rate.clamp(0.0, 1.0),
            error_codes: codes.to_vec(),
            ..FaultRule::default()
        });
    }

    /// Cut a client off: its requests hang and its watches go silent until `unblock`.
    pub fn block(&self, client: &str) {
        self.add_rule(FaultRule {
            client: Some(client.to_string()),
            blocked: true,
            ..FaultRule::default()
        });
    }

    pub fn unblock(&self, client: &str) {
        self.with(|s| s.rules.retain(|r| !(r.blocked && r.client.as_deref() == Some(client))));
    }

    pub fn pause(&self) {
        self.with(|s| s.paused = true);
    }

    pub fn resume(&self) {
        self.with(|s| s.paused = false);
    }

    /// Close every open watch (of one client, or all).
    pub fn drop_watches(&self, client: Option<&str>) {
        self.drop_watches.send_modify(|(n, c)| {
            *n += 1;
            *c = client.map(str::to_string);
        });
    }

    pub fn watch_drops(&self) -> watch::Receiver<(u64, Option<String>)> {
        self.drop_watches.subscribe()
    }

    /// How many requests were answered with an injected error so far.
    pub fn injected(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).injected
    }

    /// Delay each watch event of `client` (a substring of its User-Agent or token; None = every
    /// client) by `delay` (see [`FaultRule::watch_delay`]); `remove_rule` with the rule returned
    /// ends it.
    pub fn delay_watches(&self, client: Option<&str>, delay: Duration) -> FaultRule {
        let rule = FaultRule {
            client: client.map(str::to_string),
            watch_delay: delay,
            ..FaultRule::default()
        };
        self.add_rule(rule.clone());
        rule
    }

    /// What each event of `identity`'s watch of `resource` (its plural) meets, read under one
    /// lock: `None` while the client is held (partitioned, or the server paused), else how long
    /// the event is held back (the longest of its rules' [`FaultRule::watch_delay`]).
    pub fn watch_delay(&self, identity: &str, resource: &str) -> Option<Duration> {
        let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if held(&g, identity) {
            return None;
        }
        let on = |r: &FaultRule| {
            r.path
                .as_deref()
                .is_none_or(|p| p.strip_prefix('/').unwrap_or(p) == resource)
        };
        Some(
            g.rules
                .iter()
                .filter(|r| matches(r, identity) && on(r))
                .map(|r| r.watch_delay)
                .max()
                .unwrap_or_default(),
        )
    }

    /// Whether a client may talk to the server right now.
    pub fn is_held(&self, identity: &str) -> bool {
        held(&self.state.lock().unwrap_or_else(|p| p.into_inner()), identity)
    }

    /// Wait until the client is neither blocked nor the server paused.
    pub async fn wait_released(&self, identity: &str) {
        let mut rx = self.changed.subscribe();
        while self.is_held(identity) {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Decide the fate of one request to `path`.
    pub fn verdict(&self, identity: &str, path: &str) -> Verdict {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.counter = g.counter.wrapping_add(1);
        let mut latency = Duration::ZERO;
        let mut code = None;
        let roll = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0;
        let on_path = |r: &FaultRule| r.path.as_deref().is_none_or(|p| path.contains(p));
        for r in g.rules.iter().filter(|r| matches(r, identity) && on_path(r)) {
            latency += r.latency;
            if code.is_none() && r.error_rate > 0.0 && roll < r.error_rate && !r.error_codes.is_empty() {
                let idx = (g.counter as usize) % r.error_codes.len();
                code = r.error_codes.get(idx).copied();
            }
        }
        match code {
            Some(code) => {
                g.injected += 1;
                Verdict::Fail { latency, code }
            }
            None => Verdict::Pass { latency },
        }
    }
}
