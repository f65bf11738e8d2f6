//! Politeness to the API server, as client-go's REST client has it: a client-side token bucket
//! (`--kube-api-qps`, `--kube-api-burst`) every request passes once per attempt, and answers that
//! carry `Retry-After` (429, or a 5xx) retried after the delay the server asked for, at most
//! [`MAX_RETRIES`] times.
//!
//! The stack, outermost first: retry → buffer → count → token bucket → in-flight limit → kube's
//! own stack (with kube's default retry turned off, so there is one retry policy, this one).
//!
//! The in-flight limit ([`MAX_IN_FLIGHT`]) bounds the connections: kube's HTTP/1.1 client opens
//! one per concurrent request and keeps every one idle in its pool afterwards, each with its
//! read buffer (a mass update without a QPS limit left over 100 open); client-go talks HTTP/2,
//! one connection for all. A watch holds its slot only until its response starts.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use kube::client::Body;
use tokio::time::{Instant, Sleep};
use tower::BoxError;

use crate::metrics::{CountRequests, Metrics};

/// client-go's `maxRetries` for answers with `Retry-After` (`rest.Request`).
pub const MAX_RETRIES: u32 = 10;

/// The longest `Retry-After` honoured as given; longer ones are shortened to it (kube-apiserver's
/// API Priority and Fairness never asks for more than 32 s).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Requests of the controller's client in flight at once (see the module).
pub const MAX_IN_FLIGHT: usize = 32;

/// Default `--kube-api-qps` (kube-scheduler's, and Flux's; see docs/operating.md).
pub const DEFAULT_QPS: f32 = 50.0;
/// Default `--kube-api-burst` (kube-scheduler's).
pub const DEFAULT_BURST: u32 = 100;

/// Default `--listener-api-qps`: the ListenerSet controller's client of its own. A set is made of
/// one Lease per listener: creating a set of 10,000 listeners is 10,000 creates, and a drain of a
/// pod holding 500 is 1,000 writes of the controller (release requests and assignments); at
/// 500/s with a burst of 1,000 those take ~18 s and ~1 s (see docs/operating.md).
pub const DEFAULT_LISTENER_QPS: f32 = 500.0;
/// Default `--listener-api-burst`.
pub const DEFAULT_LISTENER_BURST: u32 = 1000;

/// The client-side limit: `qps` requests per second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub qps: f32,
    pub burst: u32,
}

impl Limits {
    /// The token bucket the limits ask for; `None` when `qps` is zero or negative (no client-side
    /// limit, as client-go does for a negative QPS), an error when a positive `qps` comes with a
    /// zero burst (client-go refuses it too).
    pub fn bucket(&self) -> Result<Option<TokenBucket>, ClientError> {
        if !self.qps.is_finite() {
            return Err(ClientError::Qps(self.qps));
        }
        if self.qps <= 0.0 {
            return Ok(None);
        }
        if self.burst == 0 {
            return Err(ClientError::Burst);
        }
        Ok(Some(TokenBucket::new(self.qps, self.burst)))
    }
}

/// A token bucket that hands out reservations, as golang.org/x/time/rate (client-go's limiter)
/// does: each caller learns at once when its turn comes, so callers go in arrival order and a
/// watch (re)start waits behind at most the requests that arrived before it, never starved.
/// Kept as the "theoretical arrival time" of the next request (GCRA).
#[derive(Debug)]
pub struct TokenBucket {
    interval: Duration,
    /// How far ahead of `now` the next slot may be and still be free: `burst - 1` intervals.
    tolerance: Duration,
    next: Mutex<Option<Instant>>,
}

impl TokenBucket {
    pub fn new(qps: f32, burst: u32) -> Self {
        let interval = Duration::from_secs_f64(1.0 / f64::from(qps));
        TokenBucket {
            interval,
            tolerance: interval.saturating_mul(burst.saturating_sub(1)),
            next: Mutex::new(None),
        }
    }

    /// Take the next slot at `now`: how long to wait before using it (zero when a token is free).
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.interval);
        (at - now).saturating_sub(self.tolerance)
    }
}

/// A tower layer that makes each request wait for a token of the bucket (none: no limit).
#[derive(Clone)]
pub struct ThrottleLayer(pub Option<Arc<TokenBucket>>);

impl<S> tower::Layer<S> for ThrottleLayer {
    type Service = Throttled<S>;
    fn layer(&self, inner: S) -> Throttled<S> {
        Throttled {
            inner,
            bucket: self.0.clone(),
            reserved: false,
            wait: None,
        }
    }
}

/// The wait happens in `poll_ready`, as tower's own rate limit does: under the client's buffer
/// the requests queue in order, one token each; a watch takes one token when it starts, and
/// its events none.
pub struct Throttled<S> {
    inner: S,
    bucket: Option<Arc<TokenBucket>>,
    reserved: bool,
    wait: Option<Pin<Box<Sleep>>>,
}

impl<S, R> tower::Service<R> for Throttled<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        if let (Some(bucket), false) = (&self.bucket, self.reserved) {
            self.reserved = true;
            let wait = bucket.reserve(Instant::now());
            if !wait.is_zero() {
                self.wait = Some(Box::pin(tokio::time::sleep(wait)));
            }
        }
        if let Some(w) = self.wait.as_mut() {
            if w.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wait = None;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.reserved = false;
        self.inner.call(req)
    }
}

/// How long the server asked to wait before a retry, when the answer may be retried: 429 or a
/// 5xx with a `Retry-After` of whole seconds (client-go's `checkWait`; the server did not
/// process the request, so every verb is retried). Capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return None;
    }
    let secs: u64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The retry policy: [`retry_after`], at most [`MAX_RETRIES`] times per request.
#[derive(Clone, Debug)]
pub struct RetryAfter {
    left: u32,
}

impl Default for RetryAfter {
    fn default() -> Self {
        RetryAfter { left: MAX_RETRIES }
    }
}

impl<B> tower::retry::Policy<Request<Body>, Response<B>, BoxError> for RetryAfter {
    type Future = Sleep;

    fn retry(&mut self, _req: &mut Request<Body>, result: &mut Result<Response<B>, BoxError>) -> Option<Sleep> {
        let r = result.as_ref().ok()?;
        let wait = retry_after(r.status(), r.headers())?;
        self.left = self.left.checked_sub(1)?;
        tracing::debug!(status = %r.status(), ?wait, "the API server asked to retry later");
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        let body = req.body().try_clone()?;
        let mut out = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version())
            .body(body)
            .ok()?;
        *out.headers_mut() = req.headers().clone();
        *out.extensions_mut() = req.extensions().clone();
        Some(out)
    }
}

/// Why the controller's client cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--kube-api-qps must be a number, got {0}")]
    Qps(f32),
    #[error("--kube-api-burst must be at least 1 when --kube-api-qps is positive")]
    Burst,
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

/// The controller's client: requests counted in `metrics` (every attempt, so throttled answers
/// show as `code="429"`), limited by `limits`, retried when the server says when.
pub fn client(mut config: kube::Config, metrics: Arc<Metrics>, limits: Limits) -> Result<kube::Client, ClientError> {
    let bucket = limits.bucket()?.map(Arc::new);
    // One retry policy: this one (kube's default retries 503/504 without Retry-After too, and
    // would sit under the limiter, its retries not counted).
    config.default_retry = false;
    let host = config
        .cluster_url
        .authority()
        .map_or_else(|| config.cluster_url.to_string(), |a| a.to_string());
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder
        .with_layer(&tower::limit::ConcurrencyLimitLayer::new(MAX_IN_FLIGHT))
        .with_layer(&ThrottleLayer(bucket))
        .with_layer(&CountRequests(metrics, host))
        // The retry layer re-sends through a handle on the stack below it.
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(RetryAfter::default()))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, v.parse().expect("header value"));
        h
    }

    #[test]
    fn retry_after_as_client_go() {
        let s = |c: u16| StatusCode::from_u16(c).expect("status");
        assert_eq!(retry_after(s(429), &headers("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(s(503), &headers("1")), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(s(500), &headers("0")), Some(Duration::ZERO));
        // Without the header, or on a 4xx other than 429, or a date: no retry.
        assert_eq!(retry_after(s(429), &HeaderMap::new()), None);
        assert_eq!(retry_after(s(409), &headers("1")), None);
        assert_eq!(retry_after(s(429), &headers("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(s(429), &headers("-1")), None);
        assert_eq!(retry_after(s(429), &headers("100000")), Some(MAX_RETRY_AFTER));
    }

    #[tokio::test]
    async fn the_retry_budget_is_client_gos() {
        let mut p = RetryAfter::default();
        let mut req = Request::new(Body::empty());
        let mut n = 0;
        loop {
            let mut res: Result<Response<()>, BoxError> = Ok(Response::builder()
                .status(429)
                .header("Retry-After", "0")
                .body(())
                .expect("response"));
            if tower::retry::Policy::retry(&mut p, &mut req, &mut res).is_none() {
                break;
            }
            n += 1;
        }
        assert_eq!(n, MAX_RETRIES);
    }

    #[test]
    fn bucket_lets_a_burst_through_then_paces() {
        let b = TokenBucket::new(10.0, 3);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..6).map(|_| b.reserve(t0)).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(waits, [ms(0), ms(0), ms(0), ms(100), ms(200), ms(300)]);
        // After a quiet second the burst is back (and no more than the burst).
        let t1 = t0 + Duration::from_secs(2);
        let waits: Vec<Duration> = (0..4).map(|_| b.reserve(t1)).collect();
        assert_eq!(waits, [ms(0), ms(0), ms(0), ms(100)]);
    }

    #[test]
    fn limits_as_client_go() {
        let l = |qps, burst| Limits { qps, burst }.bucket();
        assert!(matches!(l(-1.0, 0), Ok(None)));
        assert!(matches!(l(0.0, 10), Ok(None)));
        assert!(l(5.0, 0).is_err());
        assert!(l(f32::NAN, 1).is_err());
        assert!(matches!(l(5.0, 1), Ok(Some(_))));
    }
}
