//! `baton rollout list` (alias `get`): the Rollouts of a namespace or, with `-A`, of all, as
//! kubectl's table or any of kubectl's `-o` formats, and with `-w` each change after.
use crate::api::ROLLOUT_RESOURCE;
use std::process::ExitCode;

use jiff::Timestamp;
use kube::ResourceExt;

use super::view::{phase_word, verdict};
use crate::api::rollout::Rollout;
use crate::cli::get::{get, Printer, Query};
use crate::cli::output::{self, PrintFlags};
use crate::cli::{CliError, Session};

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
    let kind = Printer {
        resource: ROLLOUT_RESOURCE,
        plural: "rollouts.baton.dev",
        rows,
    };
    let query = Query {
        names,
        all_namespaces,
        selector,
    };
    get(s, &kind, &query, flags, follow).await
}
