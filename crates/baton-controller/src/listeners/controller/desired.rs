//! What a ListenerSet's spec asks for: its listeners after merging `listeners` and
//! `listenersFrom`, each with where its config lives, and the problems found on the way. A set's
//! resolved listeners are kept ([`DesiredCache`]) while its spec and the Secrets they were read
//! from are unchanged: a pass at rest does not re-read thousands of Secret keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::context::SetKey;
use super::SecretStores;
use crate::api::listenerset::{self, ListenerSet};
use crate::listeners::decide::Wanted;

/// One listener after merging `listeners` and `listenersFrom`.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    pub(super) id: String,
    pub(super) suspended: bool,
    /// `<secret>/<key>` holding its config.
    pub(super) config: Option<(String, String)>,
    /// Why its config cannot be read (missing Secret or key), if so.
    pub(super) config_problem: Option<String>,
}

/// What the spec asks for, with the problems found on the way.
#[derive(Default)]
pub(super) struct Desired {
    /// In id order.
    pub(super) listeners: Vec<Resolved>,
    /// The same listeners as the decision reads them.
    pub(super) wanted: Vec<Wanted>,
    pub(super) problems: Vec<String>,
    /// The listenersFrom Secret is missing: Leases of unknown listeners must not be removed.
    pub(super) keep_unknown: bool,
    /// The `resourceVersion` of each config Secret as read, by name.
    versions: BTreeMap<String, String>,
    /// Names this resolution (`wanted`) for the decision ([`crate::listeners::decide::Delta`]).
    pub(super) number: u64,
}

/// One listener per key of Secret `name` (a key already taken by a Secret earlier in name order
/// is reported, not replaced).
fn add_keys(secret: &Secret, name: &str, map: &mut BTreeMap<String, Resolved>, problems: &mut Vec<String>) {
    for key in secret.data.iter().flatten().map(|(k, _)| k) {
        if let Err(e) = listenerset::validate_listener_id(key) {
            problems.push(format!("Secret {name} key {e}; rename the key"));
            continue;
        }
        if let Some(first) = map.get(key).and_then(|r| r.config.as_ref()) {
            problems.push(format!(
                "listener {key} is a key of both Secret {} and Secret {name}: the listener takes its config from {}; \
                 remove the key from one of them",
                first.0, first.0
            ));
            continue;
        }
        map.insert(
            key.clone(),
            Resolved {
                id: key.clone(),
                suspended: false,
                config: Some((name.to_string(), key.clone())),
                config_problem: None,
            },
        );
    }
}

/// The listeners of Secret `name` (`spec.listenersFrom.secretRef`).
fn from_secret(
    ns: &str,
    name: &str,
    secrets: &SecretStores,
    map: &mut BTreeMap<String, Resolved>,
    problems: &mut Vec<String>,
    keep_unknown: &mut bool,
) {
    match secrets.get(ns, name) {
        Ok(Some(secret)) => add_keys(&secret, name, map, problems),
        Ok(None) => {
            *keep_unknown = true;
            problems.push(format!(
                "Secret {ns}/{name} (spec.listenersFrom.secretRef) does not exist: create it; listeners \
                 already running keep running"
            ));
        }
        Err(why) => {
            *keep_unknown = true;
            problems.push(format!(
                "Secret {ns}/{name} (spec.listenersFrom.secretRef) cannot be read: {why}; listeners \
                 already running keep running"
            ));
        }
    }
}

pub(super) fn resolve(set: &ListenerSet, ns: &str, secrets: &SecretStores) -> Desired {
    let mut problems = Vec::new();
    let mut map: BTreeMap<String, Resolved> = BTreeMap::new();
    let mut keep_unknown = false;
    if let Some(from) = &set.spec.listeners_from {
        match (&from.secret_ref, &from.secret_selector) {
            (Some(r), _) => from_secret(ns, &r.name, secrets, &mut map, &mut problems, &mut keep_unknown),
            (None, Some(selector)) => match secrets.select(ns, selector) {
                Ok(found) => {
                    for secret in found {
                        let name = secret.metadata.name.clone().unwrap_or_default();
                        add_keys(&secret, &name, &mut map, &mut problems);
                    }
                }
                Err(why) => {
                    keep_unknown = true;
                    problems.push(format!(
                        "the Secrets of {ns} (spec.listenersFrom.secretSelector) cannot be read: {why}; listeners \
                         already running keep running"
                    ));
                }
            },
            (None, None) => {}
        }
    }
    for l in &set.spec.listeners {
        map.insert(
            l.id.clone(),
            Resolved {
                id: l.id.clone(),
                suspended: l.suspend,
                config: l
                    .config_ref
                    .as_ref()
                    .map(|c| (c.secret_key_ref.name.clone(), c.secret_key_ref.key.clone())),
                config_problem: None,
            },
        );
    }
    let mut versions = BTreeMap::new();
    for r in map.values_mut() {
        let Some((secret, key)) = &r.config else { continue };
        let read = secrets.get(ns, secret);
        if let Ok(Some(s)) = &read {
            if !versions.contains_key(secret) {
                versions.insert(secret.clone(), s.resource_version().unwrap_or_default());
            }
        }
        let problem = match read {
            Err(why) => Some(format!("listener {}: Secret {ns}/{secret} cannot be read: {why}", r.id)),
            Ok(None) => Some(format!(
                "listener {}: Secret {ns}/{secret} does not exist: create it, or point the listener's configRef at \
                 one that does",
                r.id
            )),
            Ok(Some(s)) if !s.data.as_ref().is_some_and(|d| d.contains_key(key)) => Some(format!(
                "listener {}: Secret {ns}/{secret} has no key {key:?}: add it, or point the listener's configRef at \
                 a key that exists",
                r.id
            )),
            Ok(Some(_)) => None,
        };
        if let Some(p) = &problem {
            if !r.suspended {
                problems.push(format!("{p}; it is not started until the Secret has it"));
            }
        }
        r.config_problem = problem;
    }
    let listeners: Vec<Resolved> = map.into_values().collect();
    let wanted = listeners
        .iter()
        .map(|l| Wanted {
            id: l.id.clone(),
            suspended: l.suspended,
            no_config: l.config_problem.is_some(),
        })
        .collect();
    versions.retain(|_, v| !v.is_empty());
    Desired {
        listeners,
        wanted,
        problems,
        keep_unknown,
        versions,
        number: super::facts::number(),
    }
}

impl Desired {
    /// Listener `id`, if the spec asks for it.
    fn find(&self, id: &str) -> Option<&Resolved> {
        let at = self.listeners.binary_search_by(|l| l.id.as_str().cmp(id)).ok()?;
        self.listeners.get(at)
    }

    /// Whether the spec asks for listener `id`.
    pub(super) fn wants(&self, id: &str) -> bool {
        self.find(id).is_some()
    }

    /// Where listener `id` takes its config from, as its Lease records it.
    pub(super) fn config_of(&self, id: &str) -> Option<String> {
        let (secret, key) = self.find(id)?.config.as_ref()?;
        Some(listenerset::lease::config_value(secret, key))
    }

    /// The `resourceVersion` of the Secret listener `id` takes its config from, as resolved.
    pub(super) fn config_version_of(&self, id: &str) -> Option<String> {
        let (secret, _) = self.find(id)?.config.as_ref()?;
        self.versions.get(secret).cloned()
    }
}

/// What a resolution read: the set (uid, generation) and each Secret it looked at, by name, with
/// its resourceVersion (None: missing) or why it cannot be read. Equal sources resolve alike.
#[derive(PartialEq, Eq)]
struct Source {
    uid: String,
    generation: i64,
    secrets: Vec<(String, Result<Option<String>, String>)>,
}

/// The source of `set`'s resolution now; None for a set without uid or generation (never kept).
fn source(set: &ListenerSet, ns: &str, secrets: &SecretStores) -> Option<Source> {
    let (uid, generation) = (set.uid()?, set.metadata.generation?);
    let version = |s: &Secret| s.resource_version().unwrap_or_default();
    let mut names: BTreeSet<&str> = set
        .spec
        .listeners
        .iter()
        .filter_map(|l| l.config_ref.as_ref())
        .map(|c| c.secret_key_ref.name.as_str())
        .collect();
    let mut read = Vec::new();
    if let Some(from) = &set.spec.listeners_from {
        match (&from.secret_ref, &from.secret_selector) {
            (Some(r), _) => {
                names.insert(r.name.as_str());
            }
            (None, Some(selector)) => match secrets.select(ns, selector) {
                Ok(found) => read.extend(found.iter().map(|s| (s.name_any(), Ok(Some(version(s)))))),
                Err(why) => read.push((String::new(), Err(why))),
            },
            (None, None) => {}
        }
    }
    for name in names {
        let state = secrets.get(ns, name).map(|s| s.map(|s| version(&s)));
        read.push((name.to_string(), state));
    }
    Some(Source {
        uid,
        generation,
        secrets: read,
    })
}

/// Each set's last resolution, with what it was read from.
#[derive(Default)]
pub(super) struct DesiredCache(Mutex<HashMap<SetKey, (Source, Arc<Desired>)>>);

impl DesiredCache {
    /// What `set` asks for now: the kept resolution while its source is unchanged, else a new
    /// one (kept in its place).
    pub(super) fn resolve(&self, set: &ListenerSet, ns: &str, secrets: &SecretStores) -> Arc<Desired> {
        let key = (ns.to_string(), set.name_any());
        // Read before resolving: a Secret that changes in between makes the next pass resolve again.
        let Some(now) = source(set, ns, secrets) else {
            return Arc::new(resolve(set, ns, secrets));
        };
        if let Some((kept, desired)) = self.lock().get(&key) {
            if *kept == now {
                return desired.clone();
            }
        }
        let desired = Arc::new(resolve(set, ns, secrets));
        self.lock().insert(key, (now, desired.clone()));
        desired
    }

    /// Forget a deleted set.
    pub(super) fn forget(&self, key: &SetKey) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SetKey, (Source, Arc<Desired>)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::super::SecretAccess;
    use super::*;
    use crate::api::listenerset::{ListenersFrom, SecretRef};
    use kube::runtime::reflector::{self, store::Writer};
    use kube::runtime::watcher;

    fn secret(name: &str, version: &str, keys: &[&str]) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some("apps".into());
        s.metadata.resource_version = Some(version.into());
        s.data = Some(keys.iter().map(|k| (k.to_string(), Default::default())).collect());
        s
    }

    fn set(generation: i64) -> ListenerSet {
        let mut s = ListenerSet::new("accounts", Default::default());
        s.metadata.namespace = Some("apps".into());
        s.metadata.uid = Some("u1".into());
        s.metadata.generation = Some(generation);
        s.spec.listeners_from = Some(ListenersFrom {
            secret_ref: Some(SecretRef { name: "ids".into() }),
            ..Default::default()
        });
        s
    }

    fn ids(d: &Desired) -> Vec<&str> {
        d.wanted.iter().map(|w| w.id.as_str()).collect()
    }

    #[test]
    fn a_resolution_is_kept_while_the_spec_and_its_secrets_are_unchanged() {
        let (store, mut writer): (_, Writer<Secret>) = reflector::store();
        let secrets = SecretStores::with(SecretAccess::All, vec![(None, store)]);
        writer.apply_watcher_event(&watcher::Event::Apply(secret("ids", "1", &["a", "b"])));
        let cache = DesiredCache::default();
        let first = cache.resolve(&set(1), "apps", &secrets);
        assert_eq!(ids(&first), ["a", "b"]);
        assert!(first.config_of("b").is_some());
        assert_eq!(first.config_of("c"), None);
        assert_eq!(first.config_version_of("b").as_deref(), Some("1"));
        assert_eq!(first.config_version_of("c"), None);
        assert!(
            Arc::ptr_eq(&first, &cache.resolve(&set(1), "apps", &secrets)),
            "unchanged: kept"
        );
        // A new version of the Secret: resolved again.
        writer.apply_watcher_event(&watcher::Event::Apply(secret("ids", "2", &["a", "b", "c"])));
        let second = cache.resolve(&set(1), "apps", &secrets);
        assert_eq!(ids(&second), ["a", "b", "c"]);
        assert_eq!(second.config_version_of("b").as_deref(), Some("2"));
        // A new generation of the spec: resolved again.
        let third = cache.resolve(&set(2), "apps", &secrets);
        assert!(!Arc::ptr_eq(&second, &third));
        assert!(Arc::ptr_eq(&third, &cache.resolve(&set(2), "apps", &secrets)));
        // The Secret gone: the problem is reported and unknown Leases kept.
        writer.apply_watcher_event(&watcher::Event::Delete(secret("ids", "2", &[])));
        let gone = cache.resolve(&set(2), "apps", &secrets);
        assert!(gone.keep_unknown && gone.wanted.is_empty(), "{:?}", gone.problems);
        // Forgotten with its set.
        cache.forget(&("apps".into(), "accounts".into()));
        assert!(!Arc::ptr_eq(&gone, &cache.resolve(&set(2), "apps", &secrets)));
    }
}
