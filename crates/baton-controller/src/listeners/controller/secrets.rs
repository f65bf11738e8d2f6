//! Which Secrets the ListenerSet controller reads, and its caches of them. RBAC decides what a
//! controller may read, and a watch it may not make fails with 403 for ever (and its cache is
//! never synced), so the controller watches exactly what the chart grants: Secrets in every
//! watched namespace (`All`), only in listed namespaces (one watch each), or none (`Off`). A
//! set whose Secret is outside that access is reported with why, never guessed at.

use crate::webhooks::SecretsNotRead;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};

use crate::cache::api;
use crate::cache::{synced, Synced};

/// Which Secrets the controller may read (`baton controller --read-secrets`,
/// `--secret-namespaces`; the chart's `rbac.secrets`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretAccess {
    /// Every Secret in the watched namespace(s).
    #[default]
    All,
    /// Secrets in these namespaces only.
    Namespaces(Vec<String>),
    /// No Secret: ListenerSets that reference one are reported.
    Off,
}

impl SecretAccess {
    /// May the controller read Secrets of namespace `ns`? Err says why not, naming the flag.
    pub fn allows(&self, ns: &str) -> Result<(), SecretsNotRead> {
        match self {
            SecretAccess::All => Ok(()),
            SecretAccess::Off => Err(SecretsNotRead::Off),
            SecretAccess::Namespaces(list) if list.iter().any(|n| n == ns) => Ok(()),
            SecretAccess::Namespaces(list) => Err(SecretsNotRead::Elsewhere(list.clone())),
        }
    }
}

/// The Secret caches the controller reads, by namespace (`None`: all namespaces watched).
#[derive(Clone, Default)]
pub struct SecretStores {
    access: SecretAccess,
    stores: Vec<(Option<String>, Store<Secret>)>,
}

impl SecretStores {
    /// Secret `ns/name` as cached; Err says why the controller cannot read it.
    pub fn get(&self, ns: &str, name: &str) -> Result<Option<Arc<Secret>>, String> {
        let store = self
            .stores
            .iter()
            .find(|(n, _)| n.as_deref().is_none_or(|n| n == ns))
            .map(|(_, s)| s);
        match (store, &self.access) {
            (Some(s), _) => Ok(s.get(&ObjectRef::new(name).within(ns))),
            (None, SecretAccess::Off) => Err(format!(
                "the controller does not read Secrets (baton controller --read-secrets=false); with the chart, list \
                 namespace {ns} in rbac.secrets.namespaces"
            )),
            (None, SecretAccess::Namespaces(list)) => Err(format!(
                "the controller reads Secrets only in namespace(s) {} (--secret-namespaces; chart value \
                 rbac.secrets.namespaces)",
                list.join(", ")
            )),
            (None, SecretAccess::All) => Err("the controller does not watch this namespace".into()),
        }
    }
}

impl SecretStores {
    /// Stores over `stores`, read with `access` (tests fill the stores by hand).
    #[cfg(test)]
    pub(super) fn with(access: SecretAccess, stores: Vec<(Option<String>, Store<Secret>)>) -> SecretStores {
        SecretStores { access, stores }
    }

    /// The Secrets of `ns` that `selector` matches, in name order; Err says why the controller
    /// cannot read them.
    pub fn select(&self, ns: &str, selector: &LabelSelector) -> Result<Vec<Arc<Secret>>, String> {
        // The store of the namespace (by reading one name through it: the same access rules).
        self.get(ns, "")?;
        let store = self
            .stores
            .iter()
            .find(|(n, _)| n.as_deref().is_none_or(|n| n == ns))
            .map(|(_, s)| s);
        let mut found: Vec<Arc<Secret>> = store
            .map(|s| s.state())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
            .filter(|s| {
                let labels = s.metadata.labels.clone().unwrap_or_default();
                crate::api::pod::selector_matches(selector, &labels)
            })
            .collect();
        found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(found)
    }
}

/// What watching the Secrets gives the controller: the caches, their readiness, and a stream
/// of changed Secrets (to reconcile the sets that use them).
pub(super) struct SecretWatch {
    pub(super) stores: SecretStores,
    pub(super) synced: Vec<Synced>,
    pub(super) changes: BoxStream<'static, Result<Secret, watcher::Error>>,
}

/// Watch the Secrets `access` allows within `watched` (the controller's namespace, None = all).
pub(super) fn watch(client: &kube::Client, access: &SecretAccess, watched: &Option<String>) -> SecretWatch {
    let namespaces: Vec<Option<String>> = match access {
        SecretAccess::Off => Vec::new(),
        SecretAccess::All => vec![watched.clone()],
        SecretAccess::Namespaces(list) => list
            .iter()
            .filter(|n| watched.as_ref().is_none_or(|w| w == *n))
            .map(|n| Some(n.clone()))
            .collect(),
    };
    let mut stores = SecretStores {
        access: access.clone(),
        stores: Vec::new(),
    };
    let mut ready = Vec::new();
    let mut streams = Vec::new();
    for ns in namespaces {
        let (store, writer) = reflector::store();
        let (tx, rx) = synced();
        let secrets: Api<Secret> = api(client, &ns);
        let s = tx
            .track(
                watcher(secrets, watcher::Config::default())
                    .default_backoff()
                    .modify(strip_secret)
                    .reflect(writer),
            )
            .touched_objects()
            .boxed();
        stores.stores.push((ns, store));
        ready.push(rx);
        streams.push(s);
    }
    let changes = if streams.is_empty() {
        futures::stream::pending().boxed()
    } else {
        futures::stream::select_all(streams).boxed()
    };
    SecretWatch {
        stores,
        synced: ready,
        changes,
    }
}

/// Secrets are cached with their keys only: values are never held in memory.
pub(super) fn strip_secret(s: &mut Secret) {
    s.metadata.managed_fields = None;
    s.metadata.annotations = None;
    s.string_data = None;
    if let Some(data) = s.data.as_mut() {
        for v in data.values_mut() {
            *v = k8s_openapi::ByteString(Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(access: SecretAccess, namespaces: &[Option<&str>]) -> SecretStores {
        SecretStores {
            access,
            stores: namespaces
                .iter()
                .map(|n| (n.map(str::to_string), reflector::store::<Secret>().0))
                .collect(),
        }
    }

    #[test]
    fn secrets_outside_the_access_say_why() {
        let all = stores(SecretAccess::All, &[None]);
        assert_eq!(all.get("apps", "s"), Ok(None));
        let listed = stores(
            SecretAccess::Namespaces(vec!["apps".into(), "billing".into()]),
            &[Some("apps"), Some("billing")],
        );
        assert_eq!(listed.get("billing", "s"), Ok(None));
        let err = listed.get("other", "s").unwrap_err();
        assert!(err.contains("only in namespace(s) apps, billing"), "{err}");
        let off = stores(SecretAccess::Off, &[]);
        let err = off.get("apps", "s").unwrap_err();
        assert!(
            err.contains("does not read Secrets") && err.contains("list namespace apps in rbac.secrets.namespaces"),
            "{err}"
        );
    }
}
