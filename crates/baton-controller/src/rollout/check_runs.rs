//! The shell of the checks per batch (`spec.checks`): runs the check runs the planner wants
//! ([`planner::CheckRun`]) in tasks of their own, keeps their progress in memory, and wakes the
//! Rollout when a run finishes. A reconcile only reads the progress and starts or cancels runs:
//! no request ever holds a reconcile worker. Nothing is persisted: after a restart every run the
//! planner still wants starts again from its first attempt.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use http_body_util::Full;
use kube::runtime::reflector::ObjectRef;
use tokio::task::AbortHandle;
use tracing::debug;

use crate::api::rollout::{HttpCheck, HttpMethod, JsonMatch, Rollout};
use crate::rollout::planner::{check_outcome, CheckOutcome, CheckProgress, CheckRun};

pub mod prometheus;

pub use crate::webhooks::client::{error_chain, exchange, http_client, HttpClient, HttpError};

/// Most bytes of a response body read (for the JSON match).
const MAX_BODY: usize = 1 << 20;

/// Why a check attempt failed; its text is the attempt's result for people (the `last:` of the
/// status and of the Rollout's failure message).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the check has no kind")]
    NoKind,
    /// No answer (see [`HttpError`]).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The status is not one of `expected` (empty: any 2xx).
    #[error("HTTP {status} (expected {})", wanted(.expected))]
    Status { status: u16, expected: Vec<i32> },
    #[error("the body is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("json {path} missing")]
    JsonMissing { path: String },
    #[error("json {path} = {found:?} (expected {expected:?})")]
    JsonMismatch {
        path: String,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Prometheus(#[from] prometheus::QueryError),
}

/// The statuses a check accepts, as its failure says them.
fn wanted(expected: &[i32]) -> String {
    if expected.is_empty() {
        "2xx".to_string()
    } else {
        expected.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
    }
}

struct Running {
    progress: Arc<Mutex<CheckProgress>>,
    task: AbortHandle,
}

/// The check runs of every Rollout, by Rollout uid and run key.
pub struct CheckRunner {
    client: Option<HttpClient>,
    /// Reads the Secrets of Prometheus checks.
    kube: kube::Client,
    runs: Mutex<HashMap<String, HashMap<String, Running>>>,
    wake: mpsc::UnboundedSender<ObjectRef<Rollout>>,
}

impl CheckRunner {
    /// A runner, and the stream of Rollouts to reconcile because a run finished.
    pub fn new(kube: kube::Client) -> (Arc<Self>, mpsc::UnboundedReceiver<ObjectRef<Rollout>>) {
        let (wake, woken) = mpsc::unbounded();
        let client = http_client();
        let runner = Arc::new(Self {
            client,
            kube,
            runs: Mutex::new(HashMap::new()),
            wake,
        });
        (runner, woken)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Running>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the runs of Rollout `uid` are doing, by key.
    pub fn progress(&self, uid: &str) -> BTreeMap<String, CheckProgress> {
        self.lock()
            .get(uid)
            .map(|runs| {
                runs.iter()
                    .map(|(k, r)| (k.clone(), r.progress.lock().unwrap_or_else(|p| p.into_inner()).clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Start the `wanted` runs of Rollout `uid` that are not running, cancel the rest.
    pub fn want(&self, uid: &str, rollout: &ObjectRef<Rollout>, wanted: &[CheckRun]) {
        let mut all = self.lock();
        if wanted.is_empty() && !all.contains_key(uid) {
            return;
        }
        let runs = all.entry(uid.to_string()).or_default();
        runs.retain(|key, run| {
            let keep = wanted.iter().any(|w| &w.key == key);
            if !keep {
                run.task.abort();
            }
            keep
        });
        for run in wanted {
            if runs.contains_key(&run.key) {
                continue;
            }
            let progress = Arc::new(Mutex::new(CheckProgress {
                attempts: 0,
                failures: 0,
                last: None,
                outcome: CheckOutcome::Running,
            }));
            let task = tokio::spawn(execute(
                (self.client.clone(), self.kube.clone()),
                run.clone(),
                progress.clone(),
                self.wake.clone(),
                rollout.clone(),
            ));
            runs.insert(
                run.key.clone(),
                Running {
                    progress,
                    task: task.abort_handle(),
                },
            );
        }
        if runs.is_empty() {
            all.remove(uid);
        }
    }

    /// Cancel every run of Rollout `uid` (deleted).
    pub fn forget(&self, uid: &str) {
        if let Some(runs) = self.lock().remove(uid) {
            runs.values().for_each(|r| r.task.abort());
        }
    }
}

impl Drop for CheckRunner {
    fn drop(&mut self) {
        for runs in self.lock().values() {
            runs.values().for_each(|r| r.task.abort());
        }
    }
}

/// One run: after its `delay`, up to `count` attempts `intervalSeconds` apart, until it passes or
/// fails; then the Rollout is woken.
async fn execute(
    (client, kube): (Option<HttpClient>, kube::Client),
    run: CheckRun,
    progress: Arc<Mutex<CheckProgress>>,
    wake: mpsc::UnboundedSender<ObjectRef<Rollout>>,
    rollout: ObjectRef<Rollout>,
) {
    let check = &run.check;
    let interval = Duration::from_secs(u64::try_from(check.interval_seconds.max(0)).unwrap_or(0));
    // A Prometheus check's credentials, read at the first attempt (and again after a failed read).
    let mut auth: Option<prometheus::Auth> = None;
    if !run.delay.is_zero() {
        tokio::time::sleep(run.delay).await;
    }
    loop {
        let started = tokio::time::Instant::now();
        let c = client.as_ref();
        let result = match (&check.http, &check.prometheus) {
            (Some(http), _) => attempt(c, http, &run.rendered).await,
            (None, Some(p)) => match (&p.secret_ref, &auth, rollout.namespace.as_deref()) {
                (Some(s), None, Some(ns)) => match prometheus::read_auth(&kube, ns, &s.name).await {
                    Ok(a) => prometheus::attempt(c, p, &run.rendered, Some(auth.insert(a))).await,
                    Err(e) => Err(e),
                },
                _ => prometheus::attempt(c, p, &run.rendered, auth.as_ref()).await,
            }
            .map_err(CheckError::from),
            (None, None) => Err(CheckError::NoKind),
        };
        let outcome = {
            let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
            p.attempts += 1;
            let last = match result {
                Ok(r) => r,
                Err(e) => {
                    p.failures += 1;
                    e.to_string()
                }
            };
            p.last = Some(last);
            p.outcome = check_outcome(check, p.attempts, p.failures);
            debug!(check = %run.name, target = %run.rendered, attempts = p.attempts, last = ?p.last, "check attempt");
            p.outcome
        };
        if outcome != CheckOutcome::Running {
            let _ = wake.unbounded_send(rollout);
            return;
        }
        tokio::time::sleep_until(started + interval).await;
    }
}

/// One attempt: the result for people, `Ok` when it passed.
async fn attempt(client: Option<&HttpClient>, http: &HttpCheck, url: &str) -> Result<String, CheckError> {
    let body = match (http.method, &http.body) {
        (HttpMethod::Post, Some(b)) => Bytes::from(b.clone()),
        _ => Bytes::new(),
    };
    let mut req = http::Request::builder()
        .method(http.method.as_str())
        .uri(url)
        .header(http::header::USER_AGENT, "baton-check");
    if http.method == HttpMethod::Post {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let timeout = Duration::from_secs(u64::try_from(http.timeout_seconds.max(1)).unwrap_or(1));
    let limit = http.json.is_some().then_some(MAX_BODY);
    let (status, body) = exchange(client, req.body(Full::new(body)), timeout, limit).await?;
    judge(http, status, &body)
}

/// The verdict on a response.
pub fn judge(http: &HttpCheck, status: u16, body: &[u8]) -> Result<String, CheckError> {
    let expected = if http.expected_status.is_empty() {
        (200..300).contains(&status)
    } else {
        http.expected_status.iter().any(|s| i32::from(status) == *s)
    };
    if !expected {
        return Err(CheckError::Status {
            status,
            expected: http.expected_status.clone(),
        });
    }
    if let Some(m) = &http.json {
        return json_match(m, body).map(|v| format!("HTTP {status}, {} = {v:?}", m.path));
    }
    Ok(format!("HTTP {status}"))
}

/// The field `m.path` of a JSON `body`, when it equals `m.equals` (as a string).
pub fn json_match(m: &JsonMatch, body: &[u8]) -> Result<String, CheckError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(CheckError::NotJson)?;
    let mut at = &value;
    for part in m.path.split('.') {
        let next = match at {
            serde_json::Value::Object(o) => o.get(part),
            serde_json::Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        at = next.ok_or_else(|| CheckError::JsonMissing { path: m.path.clone() })?;
    }
    let found = match at {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if found == m.equals {
        Ok(found)
    } else {
        Err(CheckError::JsonMismatch {
            path: m.path.clone(),
            found,
            expected: m.equals.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(expected: Vec<i32>, json: Option<(&str, &str)>) -> HttpCheck {
        HttpCheck {
            url: "http://x/".into(),
            method: HttpMethod::Get,
            body: None,
            expected_status: expected,
            json: json.map(|(p, e)| JsonMatch {
                path: p.into(),
                equals: e.into(),
            }),
            timeout_seconds: 1,
        }
    }

    /// The verdict as the status says it.
    fn judged(http: &HttpCheck, status: u16, body: &[u8]) -> Result<String, String> {
        judge(http, status, body).map_err(|e| e.to_string())
    }

    #[test]
    fn status_codes_and_json_fields_are_judged() {
        assert_eq!(judged(&http(vec![], None), 204, b""), Ok("HTTP 204".into()));
        assert_eq!(
            judged(&http(vec![], None), 503, b""),
            Err("HTTP 503 (expected 2xx)".into())
        );
        assert_eq!(
            judged(&http(vec![200, 202], None), 201, b""),
            Err("HTTP 201 (expected 200, 202)".into())
        );
        let body = br#"{"status":"ok","checks":{"db":true},"items":[{"n":3}]}"#;
        assert!(judged(&http(vec![200], Some(("status", "ok"))), 200, body).is_ok());
        assert!(judged(&http(vec![200], Some(("checks.db", "true"))), 200, body).is_ok());
        assert!(judged(&http(vec![200], Some(("items.0.n", "3"))), 200, body).is_ok());
        assert_eq!(
            judged(&http(vec![200], Some(("status", "degraded"))), 200, body),
            Err("json status = \"ok\" (expected \"degraded\")".into())
        );
        assert_eq!(
            judged(&http(vec![200], Some(("checks.cache", "true"))), 200, body),
            Err("json checks.cache missing".into())
        );
        assert_eq!(
            judged(&http(vec![200], Some(("status", "ok"))), 200, b"<html>"),
            Err("the body is not JSON".into())
        );
    }
}
