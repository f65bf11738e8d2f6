//! `POST /api/rollouts/{ns}/{name}/{action}`: the CLI's actions ([`crate::actions`]) as the
//! dashboard's user, answered with JSON — `{"message": …}` (what the CLI prints) or
//! `{"error": …}` in kubectl's words, with the API server's status (403 for RBAC) or 409 when
//! the action has nothing to act on.
//!
//! The actions' writes are made by field manager `baton-dashboard` and record the command the
//! CLI would have run as their change cause (`baton dashboard: rollout undo web --to-revision 2`),
//! so `history` says where a change came from.
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use kube::api::Api;
use serde::Deserialize;
use serde_json::json;

use super::Dashboard;
use crate::actions::judge::Request;
use crate::actions::{runtime, spec, Actor, DASHBOARD_MANAGER};
use crate::api::rollout::Rollout;
use crate::session::{CliError, Session};

/// What an action may take in its body.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// `undo`: the revision to return to (default: the one before the current).
    pub revision: Option<i64>,
    /// `pin`/`unpin`: the instances.
    #[serde(default)]
    pub instances: Vec<String>,
    /// `pin`: the version (from the history).
    pub version: Option<String>,
}

/// The actions, by their name in the URL.
pub const ACTIONS: &[&str] = &[
    "promote",
    "promote-full",
    "pause",
    "resume",
    "abort",
    "retry",
    "restart",
    "undo",
    "pin",
    "unpin",
];

/// A JSON error answer.
pub fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({"error": message.into()}))).into_response()
}

/// The change cause of `action`: the CLI command it stands for.
fn cause(action: &str, name: &str, body: &Body) -> String {
    let mut words = vec![format!("baton dashboard: rollout {action} {name}")];
    if action == "promote-full" {
        words[0] = format!("baton dashboard: rollout promote {name} --full");
    }
    if let Some(r) = body.revision {
        words.push(format!("--to-revision {r}"));
    }
    if !body.instances.is_empty() {
        words.push(format!("--instances {}", body.instances.join(",")));
    }
    if let Some(v) = &body.version {
        words.push(format!("--version {v}"));
    }
    words.join(" ")
}

pub(crate) async fn rollout_action(
    State(d): State<Dashboard>,
    Path((ns, name, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if d.0.read_only {
        return error(
            StatusCode::FORBIDDEN,
            "error: the dashboard runs read-only (--read-only)",
        );
    }
    if !ACTIONS.contains(&action.as_str()) {
        return error(
            StatusCode::NOT_FOUND,
            format!("error: unknown action {action:?} (one of {})", ACTIONS.join(", ")),
        );
    }
    if d.0.caches.namespace.as_ref().is_some_and(|w| *w != ns) {
        return error(
            StatusCode::NOT_FOUND,
            format!("error: namespace {ns} is outside the dashboard's scope ({})", d.0.scope),
        );
    }
    let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("error: the body: {e}")),
        }
    };
    let session = Session {
        namespace: ns.clone(),
        ..d.0.session.clone()
    };
    match perform(&session, &ns, &name, &action, &body).await {
        Ok(message) => (StatusCode::OK, Json(json!({"message": message}))).into_response(),
        Err(e) => {
            let code = e
                .http_status
                .and_then(|c| StatusCode::from_u16(c).ok())
                .filter(|c| c.is_client_error() || c.is_server_error())
                .unwrap_or(StatusCode::CONFLICT);
            error(code, e.message)
        }
    }
}

/// Run `action` on Rollout `ns/name` with the CLI's code.
async fn perform(s: &Session, ns: &str, name: &str, action: &str, body: &Body) -> Result<String, CliError> {
    let api: Api<Rollout> = Api::namespaced(s.client.clone(), ns);
    let cause = cause(action, name, body);
    let who = Actor {
        manager: DASHBOARD_MANAGER,
        cause: &cause,
    };
    match action {
        "promote" => runtime::promote(s, &api, name, false, who).await,
        "promote-full" => runtime::promote(s, &api, name, true, who).await,
        "abort" => runtime::request(s, &api, name, Request::Abort, who).await,
        "retry" => runtime::request(s, &api, name, Request::Retry, who).await,
        "restart" => runtime::restart(s, &api, name, who).await,
        "pause" => spec::set_paused(s, &api, name, true, who).await,
        "resume" => spec::set_paused(s, &api, name, false, who).await,
        "undo" => spec::undo(s, &api, name, body.revision, false, false, who).await,
        "pin" => match &body.version {
            Some(v) if !body.instances.is_empty() => spec::pin(s, &api, name, &body.instances, Some(v), who).await,
            _ => Err(CliError::msg("pin needs \"instances\" and \"version\"")),
        },
        "unpin" => spec::pin(s, &api, name, &body.instances, None, who).await,
        other => Err(CliError::msg(format!("unknown action {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_the_cli_command() {
        let b = |revision, instances: &[&str], version: Option<&str>| Body {
            revision,
            instances: instances.iter().map(|s| s.to_string()).collect(),
            version: version.map(String::from),
        };
        assert_eq!(
            cause("undo", "web", &b(Some(2), &[], None)),
            "baton dashboard: rollout undo web --to-revision 2"
        );
        assert_eq!(
            cause("pin", "web", &b(None, &["web-1"], Some("v1"))),
            "baton dashboard: rollout pin web --instances web-1 --version v1"
        );
        assert_eq!(
            cause("promote-full", "web", &b(None, &[], None)),
            "baton dashboard: rollout promote web --full"
        );
    }
}
