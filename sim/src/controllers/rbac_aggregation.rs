//! The cluster-role aggregation controller (kube-controller-manager's
//! `clusterrole-aggregation-controller`): a ClusterRole with an `aggregationRule` gets as
//! `rules` the union of the rules of the ClusterRoles its selectors match (itself excluded),
//! in name order, without duplicates. It runs after every ClusterRole write (synchronously,
//! where kube-controller-manager is eventually consistent) until nothing changes: writes made
//! while a pass runs (its own included) mark the roles dirty and the pass is repeated.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::auth::rbac::{rkey, rules_of, PolicyRule, GROUP};
use crate::handlers::{AfterWrite, Core, Opts, Sub};
use crate::resources::ResourceType;
use crate::selector::from_label_selector_json;
use crate::store::Written;

/// Bound on passes: aggregated roles feeding aggregated roles settle in a few.
const MAX_PASSES: usize = 8;

/// The controller: the pass in progress, and writes that call for another.
#[derive(Default)]
pub struct Aggregation {
    running: Mutex<()>,
    dirty: AtomicU64,
}

impl AfterWrite for Aggregation {
    fn after_write(&self, core: &Core, rt: &ResourceType, _: &Written) {
        if rt.group == GROUP && rt.plural == "clusterroles" {
            self.run(core);
        }
    }
}

impl Aggregation {
    /// Aggregate now, or leave it to the pass already running (which will repeat).
    fn run(&self, core: &Core) {
        self.dirty.fetch_add(1, Ordering::SeqCst);
        for _ in 0..MAX_PASSES {
            let Ok(guard) = self.running.try_lock() else {
                return;
            };
            let seen = self.dirty.load(Ordering::SeqCst);
            pass(core);
            drop(guard);
            if self.dirty.load(Ordering::SeqCst) == seen {
                return;
            }
        }
    }
}

fn pass(core: &Core) {
    let Some(rt) = core.resource(GROUP, "clusterroles") else {
        return;
    };
    let opts = Opts {
        field_manager: "clusterrole-aggregation-controller".into(),
        ..Opts::default()
    };
    let roles = core.store.list(&rkey("clusterroles"), None).0;
    for r in &roles {
        let v = r.value();
        let Some(selectors) = v
            .pointer("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let mut matched: Vec<_> = roles
            .iter()
            .filter(|o| o.name != r.name)
            .filter(|o| {
                let labels = o.label_map();
                selectors
                    .iter()
                    .any(|s| from_label_selector_json(s).is_ok_and(|sel| !sel.is_nothing() && sel.matches(&labels)))
            })
            .collect();
        matched.sort_by(|a, b| a.name.cmp(&b.name));
        let mut rules: Vec<PolicyRule> = Vec::new();
        for m in matched {
            for rule in rules_of(&m.value()) {
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
            }
        }
        if rules == rules_of(&v) && v.get("rules").is_some_and(|r| !r.is_null() || rules.is_empty()) {
            continue;
        }
        let mut new = v.clone();
        if let Some(o) = new.as_object_mut() {
            o.insert("rules".into(), json!(rules));
        }
        let _ = core.update(&rt, "", &r.name, new, Sub::Main, &opts);
    }
}
