//! `kubectl get` of one of baton's kinds, shared by `baton rollout list|get` and
//! `baton listeners list`: list (a namespace or all, by label, by name), print with kubectl's
//! printing flags, and with `-w` print each change after, as `kubectl get -w` does.
use std::fmt::Debug;
use std::process::ExitCode;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::output::{self, Follow, Got, PrintFlags};
use super::{emit, CliError, Session};
use crate::session::exit;

/// The table of some objects at a time: header first; `namespaces` adds NAMESPACE, `wide` the
/// `-o wide` columns.
pub type Rows<K> = fn(&[K], Timestamp, bool, bool) -> Vec<Vec<String>>;

/// What `get` prints a kind with.
pub struct Printer<K> {
    /// `<singular>.<group>`, as `-o name` prints it.
    pub resource: &'static str,
    /// `<plural>.<group>`, as kubectl's NotFound names it.
    pub plural: &'static str,
    pub rows: Rows<K>,
}

/// What to get: names (none: all), every namespace or this one, a label selector.
pub struct Query<'a> {
    pub names: &'a [String],
    pub all_namespaces: bool,
    pub selector: Option<&'a str>,
}

/// `get [NAMES] [-A] [-l SELECTOR] [-o …] [-w]` of `kind`.
pub async fn get<K>(
    s: &Session,
    kind: &Printer<K>,
    q: &Query<'_>,
    flags: &PrintFlags,
    follow: bool,
) -> Result<ExitCode, CliError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let printer = flags.printer()?;
    let api: Api<K> = if q.all_namespaces {
        Api::all(s.client.clone())
    } else {
        Api::namespaced(s.client.clone(), &s.namespace)
    };
    let mut lp = ListParams::default();
    if let Some(sel) = q.selector {
        lp = lp.labels(sel);
    }
    let listed = api.list(&lp).await.map_err(|e| s.error(&e))?;
    let version = listed.metadata.resource_version.clone().unwrap_or_default();
    let mut items = listed.items;
    // As `kubectl get a nope`: what was found is printed, then a NotFound for each name that
    // was not (a watch starts only when every name was found).
    let missing = match not_found(kind, q.names, &items) {
        Some(e) if follow => return Err(e),
        missing => missing,
    };
    if !q.names.is_empty() {
        items.retain(|r| q.names.contains(&r.name_any()));
    }
    items.sort_by_key(|r| (r.namespace(), r.name_any()));
    // kubectl shows one object asked for by name as itself, several (or none) as a List.
    let single = q.names.len() == 1 && q.selector.is_none();
    let objects = items.iter().map(output::object).collect::<Result<Vec<_>, _>>()?;
    let got = Got {
        resource: kind.resource,
        objects: &objects,
        single,
    };
    let rows = (kind.rows)(&items, Timestamp::now(), q.all_namespaces, printer.wide());
    let nothing = items.is_empty() && printer.is_table();
    if nothing && q.names.is_empty() {
        if q.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", s.namespace);
        }
    }
    if !follow {
        if !nothing {
            emit(&printer.print(&got, rows)?);
        }
        return missing.map_or(Ok(ExitCode::SUCCESS), Err);
    }
    let mut follow = Follow::new(printer);
    if !items.is_empty() {
        emit(&follow.print(&got, rows)?);
    }
    watch(s, &api, kind, q, version, &mut follow).await
}

/// kubectl's NotFound for each of `names` that is not among `items`, one line each; None when
/// every one is there.
fn not_found<K: Resource>(kind: &Printer<K>, names: &[String], items: &[K]) -> Option<CliError> {
    let lines: Vec<String> = names
        .iter()
        .filter(|n| !items.iter().any(|r| &r.name_any() == *n))
        .map(|n| format!("Error from server (NotFound): {} \"{n}\" not found", kind.plural))
        .collect();
    (!lines.is_empty()).then(|| CliError::with_code(lines.join("\n"), exit::NOT_FOUND))
}

/// `-w`: a row (or document, or name) per change to the objects listed, from `version` on,
/// until interrupted; a watch the server ends is started again where it stopped.
async fn watch<K>(
    s: &Session,
    api: &Api<K>,
    kind: &Printer<K>,
    q: &Query<'_>,
    mut version: String,
    follow: &mut Follow,
) -> Result<ExitCode, CliError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let mut wp = WatchParams::default();
    if let Some(t) = s.watch_config().timeout {
        wp = wp.timeout(t);
    }
    if let Some(sel) = q.selector {
        wp = wp.labels(sel);
    }
    if let [one] = q.names {
        wp = wp.fields(&format!("metadata.name={one}"));
    }
    loop {
        let mut events = api.watch(&wp, &version).await.map_err(|e| s.error(&e))?.boxed();
        while let Some(event) = events.try_next().await.map_err(|e| s.error(&e))? {
            let o = match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
                WatchEvent::Bookmark(b) => {
                    version = b.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(e) => return Err(CliError::with_code(format!("error: {}", e.message), exit::API)),
            };
            version = o.resource_version().unwrap_or_default();
            if !q.names.is_empty() && !q.names.contains(&o.name_any()) {
                continue;
            }
            let objects = [output::object(&o)?];
            let got = Got {
                resource: kind.resource,
                objects: &objects,
                single: true,
            };
            let rows = (kind.rows)(
                std::slice::from_ref(&o),
                Timestamp::now(),
                q.all_namespaces,
                follow.wide(),
            );
            emit(&follow.print(&got, rows)?);
        }
    }
}
