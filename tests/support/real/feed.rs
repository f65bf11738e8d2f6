//! The ordered change feed of the real control plane: one watch per resource, all namespaces,
//! from the revision current when the feed starts, resumed from the last revision seen when a
//! watch ends (kube-apiserver closes them every few minutes). Every event carries its
//! resourceVersion (etcd's revision: one order across resources). A watch that can no longer
//! resume (410 Gone after a compaction) counts as lagged: the recorder then missed changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::core::GroupVersionKind;
use tokio::sync::mpsc;

/// One change: resource `(group, plural)`, namespace, revision, whether a deletion, the object.
#[derive(Debug, Clone)]
pub struct Change {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub rv: u64,
    pub deleted: bool,
    pub value: serde_json::Value,
}

/// What the feed watches: `(group, version, kind, plural)`.
pub type Resource = (&'static str, &'static str, &'static str, &'static str);

/// The feed's watches; dropping it ends them.
pub struct Watches(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Watches {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Start one watch per resource; changes arrive on the receiver; `lagged` counts what was lost.
pub async fn start(
    client: kube::Client,
    resources: &[Resource],
    lagged: Arc<AtomicU64>,
) -> Result<(mpsc::UnboundedReceiver<Change>, Watches), String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (group, version, kind, plural) in resources.iter().copied() {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let rv = list_rv(&api).await?;
        let (tx, lagged) = (tx.clone(), lagged.clone());
        tasks.push(tokio::spawn(
            async move { follow(api, group, plural, rv, tx, lagged).await },
        ));
    }
    Ok((rx, Watches(tasks)))
}

async fn list_rv(api: &Api<DynamicObject>) -> Result<String, String> {
    let l = api
        .list_metadata(&ListParams::default().limit(1))
        .await
        .map_err(|e| e.to_string())?;
    Ok(l.metadata.resource_version.unwrap_or_default())
}

async fn follow(
    api: Api<DynamicObject>,
    group: &'static str,
    plural: &'static str,
    mut rv: String,
    tx: mpsc::UnboundedSender<Change>,
    lagged: Arc<AtomicU64>,
) {
    let wp = WatchParams::default().timeout(290);
    loop {
        let stream = match api.watch(&wp, &rv).await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut stream = stream.boxed();
        while let Some(ev) = stream.next().await {
            let (obj, deleted) = match ev {
                Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => (o, false),
                Ok(WatchEvent::Deleted(o)) => (o, true),
                Ok(WatchEvent::Bookmark(b)) => {
                    rv = b.metadata.resource_version;
                    continue;
                }
                Ok(WatchEvent::Error(e)) if e.code == 410 => {
                    lagged.fetch_add(1, Ordering::Relaxed);
                    rv = list_rv(&api).await.unwrap_or_default();
                    break;
                }
                Ok(WatchEvent::Error(_)) | Err(_) => break,
            };
            let obj_rv = obj.metadata.resource_version.clone().unwrap_or_default();
            let change = Change {
                group: group.to_string(),
                plural: plural.to_string(),
                namespace: obj.metadata.namespace.clone().unwrap_or_default(),
                rv: obj_rv.parse().unwrap_or(0),
                deleted,
                value: serde_json::to_value(&obj).unwrap_or_default(),
            };
            rv = obj_rv;
            if tx.send(change).is_err() {
                return;
            }
        }
    }
}
