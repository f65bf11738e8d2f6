//! The runtime actions: promote, abort, retry (annotations, judged first, refused with a
//! message when there is nothing to act on) and restart.
use crate::api::ROLLOUT_RESOURCE;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;

use super::judge::{observed, refusal, Request};
use super::{Actor, Done};
use crate::api::rollout::{annotations, Rollout};
use crate::session::{CliError, Session};

/// How long a runtime action waits for the controller to observe the latest spec before judging.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Rollout once the controller has observed its current generation (bounded wait).
async fn get_observed(s: &Session, api: &Api<Rollout>, name: &str) -> Result<Rollout, CliError> {
    let r = api.get(name).await.map_err(|e| s.error(&e))?;
    if observed(&r) {
        return Ok(r);
    }
    let cfg = s.watch_config().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api.clone(), cfg).default_backoff().applied_objects());
    let deadline = tokio::time::Instant::now() + OBSERVE_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(r))) if observed(&r) => return Ok(r),
            Ok(Some(_)) => {}
            Ok(None) => return Err(CliError::msg("watch ended")),
            Err(_) => {
                return Err(CliError::msg(format!(
                    "the controller has not observed generation {} of rollout {name} within {OBSERVE_TIMEOUT:?}; is it running?",
                    r.metadata.generation.unwrap_or(0)
                )))
            }
        }
    }
}

/// End the current pause (`full`: skip every remaining batch and pause).
pub async fn promote(s: &Session, api: &Api<Rollout>, name: &str, full: bool, who: Actor<'_>) -> Done {
    let req = if full { Request::PromoteFull } else { Request::Promote };
    request(s, api, name, req, who).await
}

/// A runtime action: refused with a message (exit 1) when it has nothing to act on, else
/// requested through its annotation, conditional on the state it was judged on.
pub async fn request(s: &Session, api: &Api<Rollout>, name: &str, req: Request, who: Actor<'_>) -> Done {
    let (key, verb) = match req {
        Request::Promote => (annotations::PROMOTE, "promoted"),
        Request::PromoteFull => (
            annotations::PROMOTE_FULL,
            "promoted fully: the remaining batches and pauses are skipped",
        ),
        Request::Abort => (annotations::ABORT, "aborted"),
        Request::Retry => (annotations::RETRY, "retried"),
    };
    for _ in 0..5 {
        let r = get_observed(s, api, name).await?;
        if let Some(why) = refusal(&r, req) {
            return Err(CliError::msg(why));
        }
        let nonce = super::request_time();
        let patch = json!({"metadata": {"resourceVersion": r.resource_version(), "annotations": {key: nonce}}});
        match api.patch(name, &who.patch_params(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(format!("{ROLLOUT_RESOURCE}/{name} {verb}")),
            // The rollout moved on between reading and writing: judge it again.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(s.error(&e)),
        }
    }
    Err(CliError::msg(format!("rollout {name} kept changing; try again")))
}

/// Restart every instance: a new revision (the pod template gets the restart time).
pub async fn restart(s: &Session, api: &Api<Rollout>, name: &str, who: Actor<'_>) -> Done {
    let now = super::request_time();
    let patch = json!({"metadata": {"annotations": {
        annotations::RESTARTED_AT: now,
        annotations::CHANGE_CAUSE: who.cause,
    }}});
    api.patch(name, &who.patch_params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| s.error(&e))?;
    Ok(format!("{ROLLOUT_RESOURCE}/{name} restarted"))
}
