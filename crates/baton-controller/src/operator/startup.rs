//! What `baton controller` checks before it starts its caches: that the CRDs are served.
//!
//! A transient answer (409, 429, 5xx, a transport error or a request that does not complete)
//! is retried with backoff, so one API hiccup at startup does not crash-loop the pod; only a
//! definite answer (404: not installed; 403: not allowed; …) or an API server that stays
//! unreachable for [`STARTUP_PATIENCE`] ends the process, with the message of that answer.
use std::future::Future;
use std::time::Duration;

use kube::api::{Api, ListParams};
use tracing::warn;

use crate::api::listenerset::ListenerSet;
use crate::api::rollout::Rollout;
use crate::error::{api_message, is_status, is_transient};

/// How long transient failures are retried before giving up.
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(120);
/// Bound on one request (a request that hangs counts as a transient failure).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Why `baton controller` cannot start; printed as `error: <text>`.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// An answer that retrying will not change.
    #[error("{}", api_message(.0))]
    Definite(#[source] kube::Error),
    /// Transient failures (the last one: `why`) lasted longer than `patience`.
    #[error("{why} (still failing after {attempts} attempts over {patience:?})")]
    StillFailing {
        why: String,
        attempts: u32,
        patience: Duration,
    },
    /// `what` ran out of attempts.
    #[error("{what}: gave up")]
    GaveUp { what: String },
    /// Checking that CRD `crd` is served failed for another reason than its absence.
    #[error("checking that {crd} is served: {source}")]
    Served { crd: String, source: Box<StartupError> },
    #[error(
        "the CustomResourceDefinition {crd} is not installed: run `kubectl apply -f crds/` (or install the Helm chart)"
    )]
    NotInstalled { crd: String },
    /// The API server refused (400) the label selector `selector` with `message`.
    #[error("--selector {selector:?}: {message}")]
    BadSelector { selector: String, message: String },
    #[error("listing Rollouts with --selector {selector:?}: {source}")]
    Selector { selector: String, source: kube::Error },
}

/// Why an attempt failed.
#[derive(Debug)]
pub enum Attempt {
    /// An answer that retrying will not change.
    Definite(kube::Error),
    /// May succeed if tried again.
    Transient(String),
}

/// Run `attempt` until it succeeds, fails definitely, or transient failures have lasted
/// `patience`; each failure is logged with the delay before the next try.
pub async fn retry_transient<T, F, Fut>(what: &str, patience: Duration, mut attempt: F) -> Result<T, StartupError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let give_up = tokio::time::Instant::now() + patience;
    let mut delay = FIRST_DELAY;
    for n in 1u32.. {
        let failure = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if is_transient(&e) => Attempt::Transient(api_message(&e)),
            Ok(Err(e)) => Attempt::Definite(e),
            Err(_) => Attempt::Transient(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
        };
        match failure {
            Attempt::Definite(e) => return Err(StartupError::Definite(e)),
            Attempt::Transient(why) if tokio::time::Instant::now() + delay > give_up => {
                return Err(StartupError::StillFailing {
                    why,
                    attempts: n,
                    patience,
                });
            }
            Attempt::Transient(why) => {
                warn!(attempt = n, retry_in = ?delay, error = %why, "{what}: transient failure, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
        }
    }
    Err(StartupError::GaveUp { what: what.to_string() })
}

/// Check that `rollouts.baton.dev` and `listenersets.baton.dev` are served in each of
/// `namespaces` (none: across all); the error names a missing CRD (404) or says what else
/// answered.
pub async fn check_crds(client: &kube::Client, namespaces: &[String], patience: Duration) -> Result<(), StartupError> {
    for ns in scopes(namespaces) {
        let (r, l): (Api<Rollout>, Api<ListenerSet>) = (api(client, ns), api(client, ns));
        served(&r, "rollouts.baton.dev", patience).await?;
        served(&l, "listenersets.baton.dev", patience).await?;
    }
    Ok(())
}

/// Each watched namespace, or `None` once for all of them.
fn scopes(namespaces: &[String]) -> Vec<Option<&str>> {
    match namespaces {
        [] => vec![None],
        some => some.iter().map(|n| Some(n.as_str())).collect(),
    }
}

fn api<K>(client: &kube::Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    }
}

/// The API server accepts `selector` (a shard's `--selector`): a list of Rollouts with it
/// answers, else its 400 message is the error.
pub async fn check_selector(client: &kube::Client, namespaces: &[String], selector: &str) -> Result<(), StartupError> {
    let r: Api<Rollout> = api(client, namespaces.first().map(String::as_str));
    match r.list_metadata(&ListParams::default().labels(selector).limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 400 => Err(StartupError::BadSelector {
            selector: selector.to_string(),
            message: s.message,
        }),
        Err(source) => Err(StartupError::Selector {
            selector: selector.to_string(),
            source,
        }),
    }
}

async fn served<K>(api: &Api<K>, crd: &str, patience: Duration) -> Result<(), StartupError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let what = format!("checking that {crd} is served");
    let missing = || async {
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Err(e) if is_status(&e, 404) => Ok(false),
            Err(e) => Err(e),
            Ok(_) => Ok(true),
        }
    };
    match retry_transient(&what, patience, missing).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(StartupError::NotInstalled { crd: crd.to_string() }),
        Err(e) => Err(StartupError::Served {
            crd: crd.to_string(),
            source: Box::new(e),
        }),
    }
}

#[cfg(test)]
mod tests;
