//! What a ListenerSet's spec asks for: its listeners after merging `listeners` and
//! `listenersFrom`, each with where its config lives, and the problems found on the way.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::SecretStores;
use crate::api::listenerset::{self, ListenerSet};

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
pub(super) struct Desired {
    pub(super) listeners: Vec<Resolved>,
    pub(super) problems: Vec<String>,
    /// The listenersFrom Secret is missing: Leases of unknown listeners must not be removed.
    pub(super) keep_unknown: bool,
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
    for r in map.values_mut() {
        let Some((secret, key)) = &r.config else { continue };
        let problem = match secrets.get(ns, secret) {
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
    Desired {
        listeners: map.into_values().collect(),
        problems,
        keep_unknown,
    }
}
