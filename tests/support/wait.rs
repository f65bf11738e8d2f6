//! Waiting on a condition with a deadline, never a fixed sleep: the one polling loop of the
//! tests (`tests/`, `sim/tests/` through `#[path]`) and the benchmarks (`examples/`).
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

/// How often a condition is checked again.
pub const POLL: Duration = Duration::from_millis(20);

/// Check `check` every `every` until it returns `Ok`; after `deadline`, fail with a message
/// naming `what` and the last state `check` saw (its last `Err`), for the report.
pub async fn poll<T, S, F, Fut>(what: &str, deadline: Duration, every: Duration, mut check: F) -> Result<T, (String, S)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(last) if tokio::time::Instant::now() > end => {
                return Err((format!("timed out after {deadline:?} waiting for {what}"), last));
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// Check `check` every `every` until it returns Some, or fail after `deadline` naming `what`.
pub async fn poll_until<T, F, Fut>(what: &str, deadline: Duration, every: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll(what, deadline, every, || {
        let next = check();
        async move { next.await.ok_or(()) }
    })
    .await
    .map_err(|(message, ())| message)
}

/// Check `check` every [`POLL`] until it returns Some, or panic after `deadline` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_until(what, deadline, POLL, check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
