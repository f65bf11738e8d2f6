//! Least privilege, measured: the whole demo scenario runs with the chart's
//! RBAC; the simulator's audit lists every (verb, API group, resource, subresource) the
//! controller and the agents actually used, and the test fails when the chart grants either
//! of them anything beyond that set plus the grants docs/operating.md documents as intended
//! (the table under "Permissions beyond the demo scenario", which this test reads).
use std::collections::BTreeSet;

use serde_json::Value;

use super::harness::{Cluster, APPS, APP_SA};
use super::scenario::{self, Listeners};

/// One permission: (verb, API group, resource[/subresource]).
type Perm = (String, String, String);
/// A permission where it is granted or used: (permission, namespace; "*" = cluster-wide).
type Scoped = (Perm, String);

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Every (verb, group, resource) the rendered roles bound to ServiceAccount `ns/sa` grant, and
/// where (a ClusterRoleBinding: everywhere; a RoleBinding: its namespace).
fn granted(manifest: &[Value], ns: &str, sa: &str) -> BTreeSet<Scoped> {
    let mut out = BTreeSet::new();
    for b in manifest
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("RoleBinding" | "ClusterRoleBinding")))
    {
        let bound = b["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == sa && s["namespace"] == ns);
        if !bound {
            continue;
        }
        let scope = if b["kind"] == "ClusterRoleBinding" {
            "*".to_string()
        } else {
            b["metadata"]["namespace"].as_str().unwrap_or_default().to_string()
        };
        let role = manifest
            .iter()
            .find(|o| o["kind"] == b["roleRef"]["kind"] && o["metadata"]["name"] == b["roleRef"]["name"])
            .unwrap_or_else(|| panic!("the role of {} is not in the chart", b["metadata"]["name"]));
        for rule in role["rules"].as_array().into_iter().flatten() {
            for verb in strs(&rule["verbs"]) {
                for group in strs(&rule["apiGroups"]) {
                    for resource in strs(&rule["resources"]) {
                        out.insert(((verb.clone(), group.clone(), resource), scope.clone()));
                    }
                }
            }
        }
    }
    out
}

/// What `user` did (allowed requests) and in which namespace, from the audit.
fn used(c: &Cluster, user: &str) -> BTreeSet<Scoped> {
    c.w.sim()
        .core
        .auth
        .audit
        .counts()
        .into_keys()
        .filter(|k| k.user == user && k.allowed && !k.resource.is_empty())
        .map(|k| {
            let r = if k.subresource.is_empty() {
                k.resource
            } else {
                format!("{}/{}", k.resource, k.subresource)
            };
            ((k.verb, k.api_group, r), k.namespace)
        })
        .collect()
}

/// The intended grants beyond the scenario, per component, from docs/operating.md: the rows
/// `| controller | verb | group | resource | why |` of the table after the heading
/// "Permissions beyond the demo scenario".
fn documented(component: &str) -> BTreeSet<Perm> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operating.md")).expect("docs/operating.md");
    let section = doc
        .split_once("Permissions beyond the demo scenario")
        .map(|(_, rest)| rest)
        .expect("docs/operating.md has the table 'Permissions beyond the demo scenario'");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect();
            (cells.len() >= 5 && cells[0] == component).then(|| {
                let group = if cells[2] == "core" {
                    String::new()
                } else {
                    cells[2].clone()
                };
                (cells[1].clone(), group, cells[3].clone())
            })
        })
        .collect()
}

fn show<'a>(set: impl IntoIterator<Item = (&'a Perm, &'a str)>) -> String {
    set.into_iter()
        .map(|((v, g, r), ns)| format!("  {v:<8} {:<22} {r:<24} {ns}", if g.is_empty() { "core" } else { g }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every grant must be used where it is granted (a cluster-wide grant: anywhere) or be
/// documented; every documented grant must exist. Prints the sets.
fn check(component: &str, granted: &BTreeSet<Scoped>, used: &BTreeSet<Scoped>) {
    let doc = documented(component);
    println!(
        "{component}: granted\n{}\n{component}: used in the scenario\n{}\n{component}: documented beyond it\n{}",
        show(granted.iter().map(|(p, n)| (p, n.as_str()))),
        show(used.iter().map(|(p, n)| (p, n.as_str()))),
        show(doc.iter().map(|p| (p, "")))
    );
    let justified =
        |(p, scope): &&Scoped| doc.contains(p) || used.iter().any(|(u, ns)| u == p && (scope == "*" || scope == ns));
    let excess: Vec<&Scoped> = granted.iter().filter(|g| !justified(g)).collect();
    assert!(
        excess.is_empty(),
        "the chart grants the {component} more than it uses or docs/operating.md documents:\n{}",
        show(excess.iter().map(|(p, n)| (p, n.as_str())))
    );
    let stale: Vec<&Perm> = doc.iter().filter(|d| !granted.iter().any(|(p, _)| p == *d)).collect();
    assert!(
        stale.is_empty(),
        "docs/operating.md documents {component} grants the chart does not make:\n{}",
        show(stale.into_iter().map(|p| (p, "")))
    );
}

/// baton-sim only: the measure is every request (reads included) per identity, which baton-sim's
/// audit keeps; the real control plane's audit policy records writes only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sim_only_the_chart_grants_what_the_scenario_uses_and_what_is_documented() {
    if !super::harness::helm_available().await {
        return;
    }
    // Secrets where the scenario's set lives, as its users would list them.
    let values = super::values(serde_json::json!({"rbac": {"secrets": {"namespaces": [APPS]}}}), true);
    let mut c = Cluster::install(values, true).await;
    c.start_controller(0).await;
    c.start_controller(1).await;
    scenario::run(&mut c, Listeners::FromSecret).await;
    super::assert_no_denials(&c);
    // The revision history shrinks to what is in use: the controller prunes the rest.
    let rollouts: kube::Api<baton::api::rollout::Rollout> = kube::Api::namespaced(c.admin.clone(), &c.apps);
    let limit = serde_json::json!({"spec": {"revisionHistoryLimit": 0}});
    rollouts
        .patch(
            scenario::NAME,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&limit),
        )
        .await
        .expect("lowering revisionHistoryLimit");
    crate::support::wait_for("a revision pruned", crate::support::LONG, || async {
        let pruned = used(&c, &c.controller_user())
            .into_iter()
            .any(|((verb, _, resource), _)| verb == "delete" && resource == "controllerrevisions");
        pruned.then_some(())
    })
    .await;
    // The set is deleted: its Leases go with it (what the controller does on deletion).
    let sets: kube::Api<baton::api::listenerset::ListenerSet> = kube::Api::namespaced(c.admin.clone(), &c.apps);
    sets.delete(scenario::SET, &Default::default())
        .await
        .expect("deleting the set");
    crate::support::wait_for("the set gone", crate::support::LONG, || async {
        sets.get_opt(scenario::SET).await.ok().flatten().is_none().then_some(())
    })
    .await;
    super::assert_no_denials(&c);
    let manifest = &c.release.manifest;
    check(
        "controller",
        &granted(manifest, c.release_ns(), c.fullname()),
        &used(&c, &c.controller_user()),
    );
    check("agent", &granted(manifest, &c.apps, APP_SA), &used(&c, &c.agent_user()));
}
