//! One queue's task: each message is attempted until delivered or until it has waited
//! `retry_for`, before the next one is tried.
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use tracing::{debug, info, warn};

use super::{format, schedule, Notifier, Queued, SinkError};
use crate::api::notifications::{headers as h, EVENT_NOTIFICATION_FAILED};
use crate::events::{Occurrence, Severity};

pub(super) async fn run_queue(n: Arc<Notifier>, mut rx: tokio::sync::mpsc::UnboundedReceiver<Queued>) {
    while let Some(q) = rx.recv().await {
        deliver(&n, &q).await;
    }
}

/// What a log line or an Event calls message `q`.
fn describe(q: &Queued) -> String {
    format!(
        "notification {} ({}) to Secret {}/{}",
        q.message.event, q.message.id, q.namespace, q.secret
    )
}

async fn deliver(n: &Notifier, q: &Queued) {
    let cfg = &n.cfg;
    let retry_for = cfg.retry_for.as_secs();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let why = match attempt(n, q).await {
            Ok(()) => {
                n.count("delivered");
                if attempts > 1 {
                    info!(attempts, "{} delivered", describe(q));
                }
                return;
            }
            Err(why) => why,
        };
        let next = schedule::next_attempt(
            attempts,
            q.queued.elapsed(),
            cfg.retry_for,
            cfg.first_retry,
            cfg.max_retry,
        );
        let Some(wait) = next else {
            n.count("failed");
            report(
                n,
                q,
                format!("dropped after {attempts} attempts in {retry_for}s: {why}"),
            );
            return;
        };
        n.count("retried");
        debug!(
            attempts,
            wait_ms = wait.as_millis() as u64,
            "{} failed: {why}",
            describe(q)
        );
        if attempts == 1 {
            report(n, q, format!("failed: {why}; retrying for up to {retry_for}s"));
        }
        tokio::time::sleep(wait).await;
    }
}

/// Logs and publishes (a `NotificationFailed` Event) what happened to message `q`: `what`
/// follows the message's description.
fn report(n: &Notifier, q: &Queued, what: String) {
    let note = format!("{} {what}", describe(q));
    warn!("{note}");
    let o = Occurrence::new(Severity::Warning, EVENT_NOTIFICATION_FAILED, note);
    n.events.publish_in_background(q.regarding.clone(), vec![o]);
}

/// One attempt: Ok when the receiver answered 2xx.
async fn attempt(n: &Notifier, q: &Queued) -> Result<(), SinkError> {
    let target = n.sinks.resolve(&q.namespace, &q.secret).await?;
    let body = format::render(&q.message, q.format);
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .uri(target.url.clone())
        .header(http::header::USER_AGENT, h::USER_AGENT);
    // The Secret's headers (authorization, say) never replace the message's own.
    let ours = |k: &http::HeaderName| body.headers.iter().any(|(o, _)| k.as_str().eq_ignore_ascii_case(o));
    for (k, v) in target.headers.iter().filter(|(k, _)| !ours(k)) {
        req = req.header(k, v);
    }
    for (k, v) in &body.headers {
        req = req.header(*k, v.as_str());
    }
    let req = req.body(Full::new(Bytes::from(body.bytes)));
    let (status, _) = super::client::exchange(n.http.as_ref(), req, n.cfg.attempt_timeout, None).await?;
    match status {
        200..=299 => Ok(()),
        _ => Err(SinkError::Status(status)),
    }
}
