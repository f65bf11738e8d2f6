//! `baton rollout list` (alias `get`): the Rollouts of a namespace or, with `-A`, of all, as
//! kubectl's table (or `-o json|yaml|wide|name`).
use crate::api::ROLLOUT_RESOURCE;
use std::process::ExitCode;

use jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::ResourceExt;

use super::view::{phase_word, verdict};
use crate::api::rollout::Rollout;
use crate::cli::output::{self, Output};
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

/// The table of `rollouts` at `now`; `namespaces` adds the NAMESPACE column.
pub fn table(rollouts: &[Rollout], now: Timestamp, namespaces: bool, wide: bool) -> String {
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
    output::table(&rows)
}

pub async fn list(
    s: &Session,
    names: &[String],
    all_namespaces: bool,
    selector: Option<&str>,
    out: Option<Output>,
) -> Result<ExitCode, CliError> {
    let api: Api<Rollout> = if all_namespaces {
        Api::all(s.client.clone())
    } else {
        Api::namespaced(s.client.clone(), &s.namespace)
    };
    let mut lp = ListParams::default();
    if let Some(sel) = selector {
        lp = lp.labels(sel);
    }
    let mut items = api.list(&lp).await.map_err(|e| s.error(&e))?.items;
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
    match out {
        Some(o @ (Output::Json | Output::Yaml)) => {
            let objects = items.iter().map(output::object).collect::<Result<Vec<_>, _>>()?;
            emit(&output::document(&output::list(objects), o)?);
        }
        Some(Output::Name) => {
            for r in &items {
                emit(&format!("{ROLLOUT_RESOURCE}/{}\n", r.name_any()));
            }
        }
        _ if items.is_empty() => {
            if all_namespaces {
                eprintln!("No resources found");
            } else {
                eprintln!("No resources found in {} namespace.", s.namespace);
            }
        }
        other => emit(&table(
            &items,
            Timestamp::now(),
            all_namespaces,
            other == Some(Output::Wide),
        )),
    }
    Ok(ExitCode::SUCCESS)
}
