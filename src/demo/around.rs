//! The demo's "around the rollout" step: a migration hook before the first batch, an HTTP health
//! check per batch that fails (and rolls the batch back), and a webhook receiver that prints the
//! notifications it gets. The health endpoint and the receiver are served by the demo itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{follow, healthy_at, rollout_manifest, states, step, DemoError, MANAGER, NAME};
use crate::api::notifications::secret_keys;
use crate::api::notifications::RolloutEvent::{
    BatchCompleted, CheckFailed, Completed, Failed, HookFailed, RolledBack, Started,
};
use crate::api::rollout::Rollout;

/// The Secret the notifications are sent with (its `url` is the demo's receiver).
const SINK: &str = "deploy-webhook";

/// The health endpoint and the webhook receiver, on one local port.
struct Endpoints {
    port: u16,
    /// The `event` of every notification received, in order.
    received: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve() -> Result<Endpoints, DemoError> {
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let r = received.clone();
    let app = axum::Router::new()
        .route(
            "/health/{instance}",
            // v4 broke something the migration did not cover: its instances answer 503 (v2's
            // are not checked).
            axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "db schema mismatch") }),
        )
        .route(
            "/webhook",
            axum::routing::post(move |axum::Json(m): axum::Json<serde_json::Value>| {
                let r = r.clone();
                async move {
                    let event = m["event"].as_str().unwrap_or("?").to_string();
                    out!("  webhook ← {event}: {}", m["message"].as_str().unwrap_or(""));
                    r.lock().unwrap_or_else(|p| p.into_inner()).push(event);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(DemoError::Endpoints)?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Endpoints { port, received, task })
}

/// v4 with a preRollout migration hook, an HTTP health check and a webhook sink.
fn around_manifest(port: u16) -> serde_json::Value {
    let mut m = rollout_manifest("v4", "user-service:v4");
    let spec = &mut m["spec"];
    // Room for the migration and three check attempts: the check, not the deadline, fails it.
    spec["progressDeadlineSeconds"] = json!(30);
    spec["hooks"] = json!({"preRollout": {"template": {"spec": {
        "containers": [{"name": "migrate", "image": "user-service-migrate:v4", "args": ["expand"]}],
        "restartPolicy": "Never"
    }}}});
    spec["checks"] = json!([{
        "name": "health",
        "http": {"url": format!("http://127.0.0.1:{port}/health/{{{{instance}}}}"), "expectedStatus": [200], "timeoutSeconds": 2},
        "count": 3, "failureLimit": 2, "intervalSeconds": 1
    }]);
    spec["notifications"] = json!([{
        "sink": {"secretRef": {"name": SINK}},
        "format": "json",
        "events": [Started, BatchCompleted, Completed, Failed, RolledBack, CheckFailed, HookFailed]
    }]);
    m
}

/// Step 5: v4 runs its migration Job, then its first batch fails the health check (the endpoint
/// answers 503) and is rolled back to v2; the webhook receiver prints each notification.
pub(super) async fn hooks_checks_and_webhooks(client: &kube::Client, api: &Api<Rollout>) -> Result<(), DemoError> {
    step("5. around the rollout: v4 runs a migration Job first, then a health check fails its first batch; a webhook hears it all");
    let endpoints = serve().await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SINK, "namespace": "default"},
        "stringData": {secret_keys::URL: format!("http://127.0.0.1:{}/webhook", endpoints.port)}
    });
    let pp = PatchParams::apply(MANAGER).force();
    secrets.patch(SINK, &pp, &Patch::Apply(&secret)).await?;
    out!(
        "health endpoint http://127.0.0.1:{}/health/<instance> answers 503; webhook receiver at /webhook",
        endpoints.port
    );
    api.patch(NAME, &pp, &Patch::Apply(around_manifest(endpoints.port)))
        .await?;
    let r = follow(api, Duration::from_secs(90), |r| states::rolled_back_to(r, "v2")).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    for j in jobs.list(&Default::default()).await?.items {
        let done = j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0;
        out!(
            "migration hook Job {}: {}",
            j.metadata.name.as_deref().unwrap_or("?"),
            if done { "succeeded" } else { "not succeeded" }
        );
    }
    if let Some(f) = r.status.as_ref().and_then(|s| s.failed_update.as_ref()) {
        out!("failedUpdate: {:?}: {}", f.reason, f.message);
    }
    // The receiver hears the rollback shortly after the status says it (delivery is async).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = endpoints.received.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if [Started, CheckFailed, RolledBack]
            .iter()
            .all(|e| got.iter().any(|g| g == e.as_str()))
        {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(DemoError::Notifications(got));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out!("spec back to v2 (baton rollout undo): the hook, check and webhook go with v4's spec");
    api.patch(NAME, &pp, &Patch::Apply(rollout_manifest("v2", "user-service:v2")))
        .await?;
    follow(api, Duration::from_secs(60), |r| healthy_at(r, "v2")).await?;
    Ok(())
}
