//! `baton rollout list` (alias `get`): the Rollouts of a namespace or, with `-A`, of all, as
//! kubectl's table or any of kubectl's `-o` formats, and with `-w` each change after.
use crate::api::ROLLOUT_RESOURCE;
use std::process::ExitCode;

use jiff::Timestamp;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::ResourceExt;

use super::view::{phase_word, verdict};
use crate::api::rollout::Rollout;
use crate::cli::output::{self, Follow, Got, PrintFlags};
use crate::cli::{emit, CliError, Session};

/// The images of a Rollout's containers, comma-separated.
fn images(r: &Rollout) -> String {
    let spec = r.spec.template.spec.as_ref();
    let images: Vec<String> = spec
        .map(|s| s.containers.iter().filter_map(|c| c.image.clone()).collect())
        .unwrap_or_default();
    output::or_none(Some(&images.join(",")))
}

/// The columns of the Rollout table, the CRD's printer columns as `kubectl get rollouts` prints
/// them (`-o wide` adds TARGET, READY, IMAGES).
pub const COLUMNS: [&str; 9] = [
    "NAME",
    "DESIRED",
    "CURRENT",
    "UP-TO-DATE",
    "AVAILABLE",
    "VERSION",
    "PHASE",
    "BATCH",
    "AGE",
];

/// The table of `rollouts` at `now`, header first; `namespaces` adds the NAMESPACE column.
pub fn rows(rollouts: &[Rollout], now: Timestamp, namespaces: bool, wide: bool) -> Vec<Vec<String>> {
    let mut head: Vec<&str> = Vec::new();
    if namespaces {
        head.push("NAMESPACE");
    }
    head.extend(COLUMNS);
    if wide {
        head.extend(["TARGET", "READY", "IMAGES"]);
    }
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for r in rollouts {
        let st = r.status.clone().unwrap_or_default();
        let mut row = Vec::new();
        if namespaces {
            row.push(r.namespace().unwrap_or_default());
        }
        let v = verdict(r);
        row.extend([
            r.name_any(),
            r.spec.replicas.to_string(),
            st.replicas.to_string(),
            st.updated_replicas.to_string(),
            st.available_replicas.to_string(),
            output::or_none(st.version.as_deref()),
            phase_word(r, v),
            output::or_none(st.batch_label.as_deref()),
            output::age(r.metadata.creation_timestamp.as_ref(), now),
        ]);
        if wide {
            row.push(r.spec.version.clone());
            row.push(if v == super::Verdict::Healthy { "True" } else { "False" }.into());
            row.push(images(r));
        }
        rows.push(row);
    }
    rows
}

/// `rollout list|get [NAMES] [-A] [-l SELECTOR] [-w]` with kubectl's printing flags.
pub async fn list(
    s: &Session,
    names: &[String],
    all_namespaces: bool,
    selector: Option<&str>,
    flags: &PrintFlags,
    follow: bool,
) -> Result<ExitCode, CliError> {
    let printer = flags.printer()?;
    let api: Api<Rollout> = if all_namespaces {
        Api::all(s.client.clone())
    } else {
        Api::namespaced(s.client.clone(), &s.namespace)
    };
    let mut lp = ListParams::default();
    if let Some(sel) = selector {
        lp = lp.labels(sel);
    }
    let listed = api.list(&lp).await.map_err(|e| s.error(&e))?;
    let version = listed.metadata.resource_version.clone().unwrap_or_default();
    let mut items = listed.items;
    if !names.is_empty() {
        for n in names {
            if !items.iter().any(|r| &r.name_any() == n) {
                return Err(CliError::with_code(
                    format!("Error from server (NotFound): rollouts.baton.dev \"{n}\" not found"),
                    1,
                ));
            }
        }
        items.retain(|r| names.contains(&r.name_any()));
    }
    items.sort_by_key(|r| (r.namespace(), r.name_any()));
    // kubectl shows one object asked for by name as itself, several (or none) as a List.
    let single = names.len() == 1 && selector.is_none();
    let objects = items.iter().map(output::object).collect::<Result<Vec<_>, _>>()?;
    let got = Got {
        resource: ROLLOUT_RESOURCE,
        objects: &objects,
        single,
    };
    let rows = rows(&items, Timestamp::now(), all_namespaces, printer.wide());
    if items.is_empty() && printer.is_table() {
        if all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", s.namespace);
        }
    }
    if !follow {
        if !(items.is_empty() && printer.is_table()) {
            emit(&printer.print(&got, rows)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut follow = Follow::new(printer);
    if !items.is_empty() {
        emit(&follow.print(&got, rows)?);
    }
    watch(s, &api, names, all_namespaces, version, &mut follow).await
}

/// `-w`: a row (or document, or name) per change to the Rollouts listed, from `version` on,
/// until interrupted; a watch the server ends is started again where it stopped.
async fn watch(
    s: &Session,
    api: &Api<Rollout>,
    names: &[String],
    all_namespaces: bool,
    mut version: String,
    follow: &mut Follow,
) -> Result<ExitCode, CliError> {
    let mut wp = WatchParams::default();
    if let Some(t) = s.watch_config().timeout {
        wp = wp.timeout(t);
    }
    if let [one] = names {
        wp = wp.fields(&format!("metadata.name={one}"));
    }
    loop {
        let mut events = api.watch(&wp, &version).await.map_err(|e| s.error(&e))?.boxed();
        while let Some(event) = events.try_next().await.map_err(|e| s.error(&e))? {
            let r = match event {
                WatchEvent::Added(r) | WatchEvent::Modified(r) | WatchEvent::Deleted(r) => r,
                WatchEvent::Bookmark(b) => {
                    version = b.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(e) => return Err(CliError::msg(e.message)),
            };
            version = r.resource_version().unwrap_or_default();
            if !names.is_empty() && !names.contains(&r.name_any()) {
                continue;
            }
            let objects = [output::object(&r)?];
            let got = Got {
                resource: ROLLOUT_RESOURCE,
                objects: &objects,
                single: true,
            };
            let rows = rows(std::slice::from_ref(&r), Timestamp::now(), all_namespaces, follow.wide());
            emit(&follow.print(&got, rows)?);
        }
    }
}
