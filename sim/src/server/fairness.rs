//! API Priority and Fairness, as a client sees it: each user (a flow, as the default
//! FlowSchemas distinguish flows by user) gets `qps` requests a second with bursts of `burst`;
//! above that the request is rejected as kube-apiserver's APF filter rejects it — 429, a
//! plain-text `Too many requests, please try again later.`, a `Retry-After` header whose value
//! follows kube-apiserver's dropped-requests tracker (1 s, doubled while rejections persist, up
//! to 32 s, then lowered a second at a time), and the `X-Kubernetes-PF-FlowSchema-UID` /
//! `X-Kubernetes-PF-PriorityLevel-UID` headers on every answer.
//!
//! As in kube-apiserver: users in `system:masters` match the `exempt` FlowSchema and are never
//! rejected; a watch is one request (counted when it starts, its events are free); long-running
//! subresources (exec, attach, port-forward, proxy, log) are not counted. Off unless configured.
//! Unlike APF nothing waits in a queue: over the rate is rejected at once.
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Response};

use super::response::full;
use super::Body;
use crate::auth::{RequestInfo, UserInfo, MASTERS};

/// kube-apiserver's `maxRetryAfter`.
const MAX_RETRY_AFTER: u64 = 32;

/// The message kube-apiserver's `tooManyRequests` writes (`http.Error` adds the newline).
pub const MESSAGE: &str = "Too many requests, please try again later.";

pub const FLOW_SCHEMA_HEADER: &str = "X-Kubernetes-PF-FlowSchema-UID";
pub const PRIORITY_LEVEL_HEADER: &str = "X-Kubernetes-PF-PriorityLevel-UID";

/// The per-user rate above which requests are rejected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowLimit {
    /// Requests per second per user, on average.
    pub qps: f64,
    /// Requests a user may make at once.
    pub burst: u32,
}

/// Which FlowSchema and priority level a request matched (their UIDs, as the headers tell).
#[derive(Debug, Clone)]
pub struct Classification {
    pub flow_schema_uid: String,
    pub priority_level_uid: String,
}

/// The decision for one request.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Flow control is off: no headers.
    Off,
    Admit(Classification),
    /// Rejected: retry after this many seconds.
    Reject(Classification, u64),
}

/// One user's bucket and dropped-requests history.
#[derive(Debug, Default)]
struct Flow {
    /// GCRA: when the next request is due at the average rate.
    next: Option<Instant>,
    dropped: Dropped,
}

/// kube-apiserver's `droppedRequestsStats`, in whole seconds since the simulator started.
#[derive(Debug)]
struct Dropped {
    history: VecDeque<(u64, u64)>,
    current: u64,
    count: u64,
    retry_after: u64,
    updated: u64,
}

impl Default for Dropped {
    fn default() -> Self {
        Dropped {
            history: VecDeque::new(),
            current: 0,
            count: 0,
            retry_after: 1,
            updated: 0,
        }
    }
}

impl Dropped {
    /// Record a rejection in second `now`; returns the `Retry-After` to send.
    fn record(&mut self, now: u64) -> u64 {
        if self.current == now {
            self.count += 1;
            return self.retry_after;
        }
        self.history.push_back((self.current, self.count));
        let keep = (2 * self.retry_after).min(MAX_RETRY_AFTER);
        while self.history.front().is_some_and(|(t, _)| now - t > keep) {
            self.history.pop_front();
        }
        self.current = now;
        self.count = 1;
        // Rejections in [now - retry_after, now).
        let dropped: u64 = self
            .history
            .iter()
            .rev()
            .take_while(|(t, _)| now - t <= self.retry_after)
            .filter(|(t, _)| *t < now)
            .map(|(_, n)| n)
            .sum();
        if now - self.updated >= self.retry_after && dropped >= 3 * self.retry_after {
            self.retry_after = (2 * self.retry_after).min(MAX_RETRY_AFTER);
            self.updated = now;
        } else if dropped < self.retry_after && self.retry_after > 1 {
            self.retry_after -= 1;
        }
        self.retry_after
    }
}

/// Flow control state: the limit (changeable while serving) and each user's flow.
pub struct Fairness {
    limit: Mutex<Option<FlowLimit>>,
    flows: Mutex<HashMap<String, Flow>>,
    started: Instant,
    exempt: Classification,
    limited: Classification,
}

impl Fairness {
    pub fn new(limit: Option<FlowLimit>) -> Self {
        let uid = || uuid::Uuid::new_v4().to_string();
        Fairness {
            limit: Mutex::new(limit),
            flows: Mutex::new(HashMap::new()),
            started: Instant::now(),
            exempt: Classification {
                flow_schema_uid: uid(),
                priority_level_uid: uid(),
            },
            limited: Classification {
                flow_schema_uid: uid(),
                priority_level_uid: uid(),
            },
        }
    }

    /// Change the limit (None: off); every user's bucket starts full again.
    pub fn set_limit(&self, limit: Option<FlowLimit>) {
        *self.limit.lock().unwrap_or_else(|p| p.into_inner()) = limit;
        self.flows.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn limit(&self) -> Option<FlowLimit> {
        *self.limit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admit or reject `user`'s request `info` arriving at `now`.
    pub fn admit(&self, user: &UserInfo, info: &RequestInfo, now: Instant) -> Verdict {
        let Some(limit) = self.limit() else {
            return Verdict::Off;
        };
        if user.in_group(MASTERS) {
            return Verdict::Admit(self.exempt.clone());
        }
        let long_running = matches!(
            info.subresource.as_str(),
            "attach" | "exec" | "proxy" | "log" | "portforward"
        ) || info.verb == "proxy";
        if long_running || limit.qps <= 0.0 {
            return Verdict::Admit(self.limited.clone());
        }
        let interval = Duration::from_secs_f64(1.0 / limit.qps);
        let tolerance = interval.saturating_mul(limit.burst.saturating_sub(1));
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        let flow = flows.entry(user.username.clone()).or_default();
        let due = flow.next.map_or(now, |n| n.max(now));
        if due.saturating_duration_since(now) > tolerance {
            let second = now.saturating_duration_since(self.started).as_secs();
            return Verdict::Reject(self.limited.clone(), flow.dropped.record(second));
        }
        flow.next = Some(due + interval);
        Verdict::Admit(self.limited.clone())
    }
}

/// Add the classification headers APF sets on every answer it classified.
pub fn set_headers(resp: &mut Response<Body>, c: &Classification) {
    let h = resp.headers_mut();
    for (name, v) in [
        (FLOW_SCHEMA_HEADER, &c.flow_schema_uid),
        (PRIORITY_LEVEL_HEADER, &c.priority_level_uid),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    }
}

/// The rejection as kube-apiserver writes it (`http.Error`: plain text, nosniff).
pub fn too_many_requests(c: &Classification, retry_after: u64) -> Response<Body> {
    let mut resp = Response::builder()
        .status(429)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .header(header::RETRY_AFTER, retry_after.to_string())
        .body(full(Bytes::from(format!("{MESSAGE}\n"))))
        .unwrap_or_else(|_| Response::new(full("")));
    set_headers(&mut resp, c);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserInfo {
        UserInfo {
            username: name.into(),
            groups: vec!["system:authenticated".into()],
            ..UserInfo::default()
        }
    }

    fn get() -> RequestInfo {
        RequestInfo::new("GET", "/api/v1/namespaces/default/pods", &Default::default())
    }

    fn rejected(v: &Verdict) -> Option<u64> {
        match v {
            Verdict::Reject(_, s) => Some(*s),
            _ => None,
        }
    }

    #[test]
    fn each_user_gets_its_burst_then_its_rate() {
        let f = Fairness::new(Some(FlowLimit { qps: 10.0, burst: 3 }));
        let t0 = Instant::now();
        let (a, b) = (user("a"), user("b"));
        let first: Vec<_> = (0..4).map(|_| rejected(&f.admit(&a, &get(), t0))).collect();
        assert_eq!(first, [None, None, None, Some(1)]);
        // Another user has a bucket of its own.
        assert!(rejected(&f.admit(&b, &get(), t0)).is_none());
        // 100 ms later one more token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(rejected(&f.admit(&a, &get(), t1)).is_none());
        assert!(rejected(&f.admit(&a, &get(), t1)).is_some());
    }

    #[test]
    fn masters_are_exempt_and_off_is_off() {
        let f = Fairness::new(Some(FlowLimit { qps: 0.001, burst: 1 }));
        let admin = UserInfo::admin("root");
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(matches!(f.admit(&admin, &get(), t0), Verdict::Admit(_)));
        }
        f.set_limit(None);
        assert!(matches!(f.admit(&user("a"), &get(), t0), Verdict::Off));
    }

    #[test]
    fn retry_after_doubles_while_rejections_persist_and_comes_down() {
        let mut d = Dropped::default();
        // Many rejections every second: 1 → 2 → 4 …, never above 32.
        let mut seen = Vec::new();
        for s in 1..=80 {
            for _ in 0..100 {
                d.record(s);
            }
            seen.push(d.retry_after);
        }
        assert_eq!(seen[0], 1);
        assert!(seen.contains(&2) && seen.contains(&4) && seen.contains(&32));
        assert!(seen.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*seen.last().expect("some"), MAX_RETRY_AFTER);
        // Then one rejection now and then: it comes down a second at a time.
        let before = d.retry_after;
        d.record(200);
        d.record(300);
        assert_eq!(d.retry_after, before - 2);
    }
}
