//! Discovery (`/api`, `/apis`, group versions, aggregated discovery) and `/version`. The
//! simulator serves a subset of kube-apiserver's groups and resources: what both serve is
//! compared field by field; what only kube-apiserver serves is one documented fact per list;
//! anything only the simulator serves is a difference. `/version` differs by design (the
//! simulator reports 1.32): its shape is compared.

use serde_json::{json, Value};

use crate::diff::shape;
use crate::harness::{Both, Pair, Req, Resp};
use crate::setup::install_baton_crds;

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `list` split by `key` into the entries whose key is in `common`, and the keys only in it.
fn split(list: &[Value], key: &dyn Fn(&Value) -> String, common: &[String]) -> (Vec<Value>, Vec<String>) {
    let mut kept = Vec::new();
    let mut only = Vec::new();
    for v in list {
        let k = key(v);
        if common.contains(&k) {
            kept.push(v.clone());
        } else {
            only.push(k);
        }
    }
    (kept, only)
}

/// Two lists of named entries, split: the common ones (per server), the names only the
/// simulator has, the names only kube-apiserver has.
struct Split {
    common: Both<Vec<Value>>,
    only_sim: Vec<String>,
    only_real: Vec<String>,
}

fn split_lists(lists: Both<Vec<Value>>, key: &dyn Fn(&Value) -> String) -> Split {
    let sim_keys: Vec<String> = lists.sim.iter().map(key).collect();
    let common: Vec<String> = lists.real.iter().map(key).filter(|k| sim_keys.contains(k)).collect();
    let (sim, only_sim) = split(&lists.sim, key, &common);
    let (real, only_real) = split(&lists.real, key, &common);
    Split {
        common: Both { sim, real },
        only_sim,
        only_real,
    }
}

/// Compare split lists keyed by `what` (e.g. per group) as `kind`: the common entries, and
/// the names only one server has as `kind.only-in-sim` (must be empty) and
/// `kind.only-in-real`.
fn compare_splits(p: &Pair, kind: &str, splits: Vec<(String, Split)>) {
    let mut common = Both {
        sim: serde_json::Map::new(),
        real: serde_json::Map::new(),
    };
    let mut only_sim = serde_json::Map::new();
    let mut only_real = serde_json::Map::new();
    for (what, s) in splits {
        common.sim.insert(what.clone(), json!(s.common.sim));
        common.real.insert(what.clone(), json!(s.common.real));
        if !s.only_sim.is_empty() {
            only_sim.insert(what.clone(), json!(s.only_sim));
        }
        if !s.only_real.is_empty() {
            only_real.insert(what, json!(s.only_real));
        }
    }
    p.compare_values(
        kind,
        Both {
            sim: Value::Object(common.sim),
            real: Value::Object(common.real),
        },
    );
    p.compare_values(
        &format!("{kind}.only-in-sim"),
        Both {
            sim: Value::Object(only_sim),
            real: json!({}),
        },
    );
    p.compare_values(
        &format!("{kind}.only-in-real"),
        Both {
            sim: json!({}),
            real: Value::Object(only_real),
        },
    );
}

fn items(r: &Resp, field: &str) -> Vec<Value> {
    r.body[field].as_array().cloned().unwrap_or_default()
}

fn name_of(v: &Value) -> String {
    v["name"]
        .as_str()
        .or(v["metadata"]["name"].as_str())
        .unwrap_or("")
        .to_string()
}

fn resource_of(v: &Value) -> String {
    v["name"].as_str().or(v["resource"].as_str()).unwrap_or("").to_string()
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn discovery_and_version() {
    let p = Pair::start("discovery_and_version").await;
    install_baton_crds(&p).await;
    p.same("discovery.api", Req::get("/api")).await;
    let core = p.both(Req::get("/api/v1")).await;
    let core = split_lists(core.map(|_, r| items(r, "resources")), &resource_of);
    compare_splits(&p, "discovery.core-v1", vec![("v1".into(), core)]);
    let groups = p.both(Req::get("/apis")).await;
    let split = split_lists(groups.map(|_, r| items(r, "groups")), &name_of);
    let preferred: Vec<String> = split
        .common
        .sim
        .iter()
        .map(|g| {
            g["preferredVersion"]["groupVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    compare_splits(&p, "discovery.apis", vec![("groups".into(), split)]);
    let mut versions = Vec::new();
    for gv in preferred {
        let list = p.both(Req::get(format!("/apis/{gv}"))).await;
        let codes = list.map(|_, r| json!(r.code));
        p.compare_values("discovery.group-version.code", codes);
        // apiextensions-apiserver lists a custom group's resources in the order of its cache.
        let custom = gv.starts_with("baton.dev/");
        let resources = list.map(|_, r| {
            let mut v = items(r, "resources");
            if custom {
                v.sort_by_key(resource_of);
            }
            v
        });
        versions.push((gv, split_lists(resources, &resource_of)));
    }
    compare_splits(&p, "discovery.group-versions", versions);
    aggregated(&p).await;
    let version = p.both(Req::get("/version")).await;
    p.compare_values("version.shape", version.map(|_, r| shape(&r.body)));
    p.compare_values("version.code", version.map(|_, r| json!(r.code)));
    p.same("healthz", Req::get("/healthz")).await;
    p.same("livez", Req::get("/livez")).await;
    p.same("readyz", Req::get("/readyz")).await;
    let openapi = p.both(Req::get("/openapi/v2")).await;
    p.compare_values("openapi.v2.code", openapi.map(|_, r| json!(r.code)));
    p.finish().await;
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2`): per common group, its versions' resources.
async fn aggregated(p: &Pair) {
    for (kind, path) in [
        ("discovery.aggregated.api", "/api"),
        ("discovery.aggregated.apis", "/apis"),
    ] {
        let list = p.both(Req::get(path).header("Accept", AGGREGATED)).await;
        p.compare_values(
            &format!("{kind}.envelope"),
            list.map(|_, r| {
                let mut v = r.body.clone();
                v["items"] = json!("…");
                json!({"code": r.code, "content-type": r.headers.get("content-type").and_then(|h| h.to_str().ok()), "body": v})
            }),
        );
        let groups = list.map(|_, r| items(r, "items"));
        let split = split_lists(groups.clone(), &name_of);
        let common: Vec<String> = split.common.sim.iter().map(name_of).collect();
        let names = Split {
            common: Both {
                sim: vec![],
                real: vec![],
            },
            only_sim: split.only_sim,
            only_real: split.only_real,
        };
        compare_splits(p, &format!("{kind}.groups"), vec![("groups".into(), names)]);
        let mut resources = Vec::new();
        let mut freshness = Both {
            sim: serde_json::Map::new(),
            real: serde_json::Map::new(),
        };
        for group in common {
            let pick = |g: &[Value]| g.iter().find(|x| name_of(x) == group).cloned().unwrap_or(Value::Null);
            let versions = groups.map(|_, g| pick(g)["versions"].as_array().cloned().unwrap_or_default());
            let listed = versions.map(|_, v| {
                v.iter()
                    .flat_map(|v| v["resources"].as_array().cloned().unwrap_or_default())
                    .collect::<Vec<_>>()
            });
            resources.push((group.clone(), split_lists(listed, &resource_of)));
            let summary = |v: &Vec<Value>| {
                json!(v
                    .iter()
                    .map(|v| json!({"version": v["version"], "freshness": v["freshness"]}))
                    .collect::<Vec<_>>())
            };
            freshness.sim.insert(group.clone(), summary(&versions.sim));
            freshness.real.insert(group, summary(&versions.real));
        }
        compare_splits(p, &format!("{kind}.resources"), resources);
        p.compare_values(
            &format!("{kind}.versions"),
            Both {
                sim: Value::Object(freshness.sim),
                real: Value::Object(freshness.real),
            },
        );
    }
}
