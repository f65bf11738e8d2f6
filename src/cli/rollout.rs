//! `baton rollout …`: status, history, and the runtime actions (annotations), pause/resume,
//! pins and undo (spec changes).
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;

use crate::api::rollout::{annotations, labels, Pin, Rollout};
use crate::cli::rollout_view::{observed, refusal, Request};
pub use crate::cli::rollout_view::{render, verdict, Verdict};

/// Exit code of `status` when the rollout failed or was rolled back.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of `status` on timeout.
pub const EXIT_TIMEOUT: u8 = 2;
/// Exit code of `status --watch=false` while still in progress.
pub const EXIT_IN_PROGRESS: u8 = 3;

#[derive(clap::Subcommand)]
pub enum RolloutCommand {
    /// Show progress and instances; with --watch (default) follow until Healthy, failed or timeout.
    /// Exit codes: 0 Healthy, 1 failed or rolled back, 2 timeout, 3 still in progress (--watch=false).
    Status {
        name: String,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        watch: bool,
        /// Give up after this long (e.g. 90s, 5m).
        #[arg(long)]
        timeout: Option<String>,
    },
    /// End the current pause between batches now; refused (exit 1) when there is none.
    Promote {
        name: String,
        /// Skip every remaining batch and pause: the rest of the instances move now, still
        /// health-gated.
        #[arg(long)]
        full: bool,
    },
    /// Stop all progress (sets spec.paused).
    Pause { name: String },
    /// Resume progress (clears spec.paused).
    Resume { name: String },
    /// Abort the rollout in progress: instances return to the last healthy revision at once.
    /// Refused (exit 1) when nothing is in progress.
    Abort { name: String },
    /// Roll out a failed revision again; refused (exit 1) when nothing failed.
    Retry { name: String },
    /// Restart every instance (a new revision, rolled out in batches).
    Restart { name: String },
    /// Roll the whole service back: copy a revision's template and version into spec. The
    /// instances move straight there, without the strategy's batches and pauses.
    Undo {
        name: String,
        /// Revision number (see `history`); default: the one before the current.
        #[arg(long)]
        to_revision: Option<i64>,
        /// Move through the strategy's batches and pauses, like any new revision.
        #[arg(long)]
        batches: bool,
    },
    /// Keep instances on a version from the history (single-instance or batch rollback).
    Pin {
        name: String,
        /// Instances, comma-separated (e.g. web-0,web-2).
        #[arg(long, value_delimiter = ',', required = true)]
        instances: Vec<String>,
        #[arg(long)]
        version: String,
    },
    /// Remove pins (of the given instances, or all).
    Unpin {
        name: String,
        #[arg(long, value_delimiter = ',')]
        instances: Vec<String>,
    },
    /// List the revisions kept as ControllerRevisions.
    History { name: String },
}

fn fail(msg: impl std::fmt::Display + 'static) -> ExitCode {
    // The API server's refusals are printed as kubectl prints them.
    match (&msg as &dyn std::any::Any).downcast_ref::<kube::Error>() {
        Some(kube::Error::Api(s)) => eprintln!("Error from server ({}): {}", s.reason, s.message),
        _ => eprintln!("error: {msg}"),
    }
    ExitCode::FAILURE
}

/// Parse `90s`, `5m`, `1h`, `250ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::api::rollout::parse_duration(s)
}

pub async fn run(client: kube::Client, ns: &str, cmd: RolloutCommand) -> ExitCode {
    let api: Api<Rollout> = Api::namespaced(client.clone(), ns);
    match cmd {
        RolloutCommand::Status { name, watch, timeout } => {
            let timeout = match timeout.as_deref().map(parse_duration).transpose() {
                Ok(t) => t,
                Err(e) => return fail(format!("--timeout: {e}")),
            };
            status(&api, &name, watch, timeout).await
        }
        RolloutCommand::Promote { name, full: false } => request(&api, &name, Request::Promote).await,
        RolloutCommand::Promote { name, full: true } => request(&api, &name, Request::PromoteFull).await,
        RolloutCommand::Abort { name } => request(&api, &name, Request::Abort).await,
        RolloutCommand::Retry { name } => request(&api, &name, Request::Retry).await,
        RolloutCommand::Restart { name } => annotate(&api, &name, annotations::RESTARTED_AT, "restarted").await,
        RolloutCommand::Pause { name } => patch_spec(&api, &name, json!({"spec": {"paused": true}}), "paused").await,
        RolloutCommand::Resume { name } => patch_spec(&api, &name, json!({"spec": {"paused": false}}), "resumed").await,
        RolloutCommand::Undo {
            name,
            to_revision,
            batches,
        } => undo(&api, &client, ns, &name, to_revision, batches).await,
        RolloutCommand::Pin {
            name,
            instances,
            version,
        } => pin(&api, &name, &instances, Some(&version)).await,
        RolloutCommand::Unpin { name, instances } => pin(&api, &name, &instances, None).await,
        RolloutCommand::History { name } => history(&api, &client, ns, &name).await,
    }
}

/// How long a runtime action waits for the controller to observe the latest spec before judging.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Rollout once the controller has observed its current generation (bounded wait).
async fn get_observed(api: &Api<Rollout>, name: &str) -> Result<Rollout, String> {
    let r = api.get(name).await.map_err(|e| e.to_string())?;
    if observed(&r) {
        return Ok(r);
    }
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api.clone(), cfg).default_backoff().applied_objects());
    let deadline = tokio::time::Instant::now() + OBSERVE_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(r))) if observed(&r) => return Ok(r),
            Ok(Some(_)) => {}
            Ok(None) => return Err("watch ended".into()),
            Err(_) => {
                return Err(format!(
                    "the controller has not observed generation {} of rollout {name} within {OBSERVE_TIMEOUT:?}; is it running?",
                    r.metadata.generation.unwrap_or(0)
                ))
            }
        }
    }
}

/// A runtime action: refused with a message (exit 1) when it has nothing to act on, else
/// requested through its annotation, conditional on the state it was judged on.
async fn request(api: &Api<Rollout>, name: &str, req: Request) -> ExitCode {
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
        let r = match get_observed(api, name).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        if let Some(why) = refusal(&r, req) {
            return fail(why);
        }
        let nonce = Timestamp::now().to_string();
        let patch = json!({"metadata": {"resourceVersion": r.resource_version(), "annotations": {key: nonce}}});
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                println!("rollout.baton.dev/{name} {verb}");
                return ExitCode::SUCCESS;
            }
            // The rollout moved on between reading and writing: judge it again.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return fail(e),
        }
    }
    fail(format!("rollout {name} kept changing; try again"))
}

async fn annotate(api: &Api<Rollout>, name: &str, key: &str, verb: &str) -> ExitCode {
    let nonce = Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {key: nonce}}});
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            println!("rollout.baton.dev/{name} {verb}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn patch_spec(api: &Api<Rollout>, name: &str, patch: serde_json::Value, verb: &str) -> ExitCode {
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            println!("rollout.baton.dev/{name} {verb}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn revisions(client: &kube::Client, ns: &str, rollout: &Rollout) -> Result<Vec<ControllerRevision>, kube::Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    let uid = rollout.uid().unwrap_or_default();
    let mut list: Vec<ControllerRevision> = api
        .list(&ListParams::default().labels(&format!("{}={}", labels::ROLLOUT, rollout.name_any())))
        .await?
        .items
        .into_iter()
        .filter(|r| r.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    list.sort_by_key(|r| r.revision);
    Ok(list)
}

async fn history(api: &Api<Rollout>, client: &kube::Client, ns: &str, name: &str) -> ExitCode {
    let rollout = match api.get(name).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let revs = match revisions(client, ns, &rollout).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let st = rollout.status.clone().unwrap_or_default();
    println!("{:<10} {:<16} {:<28} NOTE", "REVISION", "VERSION", "NAME");
    for r in revs {
        let rname = r.name_any();
        let version = r.labels().get(labels::VERSION).cloned().unwrap_or_default();
        let mut notes = Vec::new();
        if st.current_revision.as_deref() == Some(rname.as_str()) {
            notes.push("current");
        }
        if st.update_revision.as_deref() == Some(rname.as_str()) {
            notes.push("update");
        }
        if st.failed_update.as_ref().is_some_and(|f| f.revision == rname) {
            notes.push("failed");
        }
        println!("{:<10} {:<16} {:<28} {}", r.revision, version, rname, notes.join(","));
    }
    ExitCode::SUCCESS
}

async fn undo(
    api: &Api<Rollout>,
    client: &kube::Client,
    ns: &str,
    name: &str,
    to: Option<i64>,
    batches: bool,
) -> ExitCode {
    let rollout = match api.get(name).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let revs = match revisions(client, ns, &rollout).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let update = rollout.status.as_ref().and_then(|s| s.update_revision.clone());
    let target = match to {
        Some(n) => revs.iter().find(|r| r.revision == n),
        // The newest revision other than the one being rolled out.
        None => revs.iter().rev().find(|r| Some(r.name_any()) != update),
    };
    let Some(target) = target else {
        return fail(match to {
            Some(n) => format!("revision {n} not found; see `baton rollout history {name}`"),
            None => format!("rollout {name} has no earlier revision to return to"),
        });
    };
    let data = target.data.as_ref().map(|d| d.0.clone()).unwrap_or_default();
    let (Some(template), Some(version)) = (data.get("template"), data.get("version")) else {
        return fail(format!("revision {} has no template/version data", target.revision));
    };
    // A JSON patch replaces the template whole (a merge patch would merge maps) and is
    // conditional on the resourceVersion we read.
    let mut patch = vec![
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": rollout.resource_version()}),
        json!({"op": "replace", "path": "/spec/template", "value": template}),
        json!({"op": "replace", "path": "/spec/version", "value": version}),
    ];
    // Straight to the revision: a full promotion in the same write, unless it is the current
    // (last healthy) revision, which every instance returns to at once anyway.
    let current = rollout.status.as_ref().and_then(|s| s.current_revision.clone());
    if !batches && current.as_deref() != Some(target.name_any().as_str()) {
        let nonce = Timestamp::now().to_string();
        patch.push(match rollout.metadata.annotations {
            Some(_) => json!({"op": "add", "path": format!("/metadata/annotations/{}", annotations::PROMOTE_FULL.replace('/', "~1")), "value": nonce}),
            None => json!({"op": "add", "path": "/metadata/annotations", "value": {annotations::PROMOTE_FULL: nonce}}),
        });
    }
    let patch: json_patch::Patch = match serde_json::from_value(serde_json::Value::Array(patch)) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match api
        .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
    {
        Ok(_) => {
            println!(
                "rollout.baton.dev/{name} rolled back to revision {} ({})",
                target.revision,
                version.as_str().unwrap_or("")
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn pin(api: &Api<Rollout>, name: &str, instances: &[String], version: Option<&str>) -> ExitCode {
    let rollout = match api.get(name).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut pins: Vec<Pin> = rollout.spec.pins.clone();
    for p in pins.iter_mut() {
        if instances.is_empty() && version.is_none() {
            p.instances.clear();
        } else {
            p.instances.retain(|i| !instances.contains(i));
        }
    }
    pins.retain(|p| !p.instances.is_empty());
    if let Some(v) = version {
        pins.push(Pin {
            instances: instances.to_vec(),
            version: v.to_string(),
        });
    }
    let patch = json!({"metadata": {"resourceVersion": rollout.resource_version()}, "spec": {"pins": pins}});
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            match version {
                Some(v) => println!("rollout.baton.dev/{name} pinned {} to {v}", instances.join(",")),
                None if instances.is_empty() => println!("rollout.baton.dev/{name} unpinned all instances"),
                None => println!("rollout.baton.dev/{name} unpinned {}", instances.join(",")),
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn status(api: &Api<Rollout>, name: &str, watch: bool, timeout: Option<Duration>) -> ExitCode {
    let first = match api.get(name).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let code = |v: Verdict| match v {
        Verdict::Healthy => ExitCode::SUCCESS,
        Verdict::Failed => ExitCode::from(EXIT_FAILED),
        Verdict::InProgress => ExitCode::from(EXIT_IN_PROGRESS),
    };
    let mut last = render(&first);
    print!("{last}");
    let v = verdict(&first);
    if !watch || v != Verdict::InProgress {
        return code(v);
    }
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api.clone(), cfg).default_backoff().applied_objects());
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
                Ok(n) => n,
                Err(_) => {
                    eprintln!("timed out waiting for rollout {name}");
                    return ExitCode::from(EXIT_TIMEOUT);
                }
            },
            None => stream.next().await,
        };
        match next {
            Some(Ok(r)) => {
                let view = render(&r);
                if view != last {
                    println!();
                    print!("{view}");
                    last = view;
                }
                let v = verdict(&r);
                if v != Verdict::InProgress {
                    return code(v);
                }
            }
            Some(Err(e)) => eprintln!("watch: {e}"),
            None => return fail("watch ended"),
        }
    }
}
