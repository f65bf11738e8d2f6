//! Phase 4, one object's write cost by its size: status writes of a custom resource whose spec
//! holds a list map (`x-kubernetes-list-type: map`, keyed by `id`) of [`SMALL`] and of [`LARGE`]
//! items, as a ListenerSet of that many listeners is. Every write of such an object is
//! validated (the list map's keys must be unique) and compared with the stored one for its
//! managed fields, so its cost should grow with the object's size, no faster: 10 × the items,
//! about 10 × the time.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use baton_sim::Sim;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{json, Value};

/// Items of the smaller object.
pub(crate) const SMALL: usize = 1_000;
/// Items of the larger object.
pub(crate) const LARGE: usize = 10_000;
/// Status writes timed per object (the median is reported).
const WRITES: usize = 7;

/// The median status write of each object: a server-side apply and a merge patch alternately.
pub(crate) struct SizeCost {
    pub(crate) small: Duration,
    pub(crate) large: Duration,
}

fn crd() -> Value {
    let item = json!({"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}, "port": {"type": "integer"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}
    }});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "fleets.bench.baton.dev"},
        "spec": {
            "group": "bench.baton.dev",
            "scope": "Namespaced",
            "names": {"plural": "fleets", "singular": "fleet", "kind": "Fleet", "listKind": "FleetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": {"type": "object", "properties": {"items": {
                        "type": "array", "items": item,
                        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]
                    }}},
                    "status": {"type": "object", "properties": {"running": {"type": "integer"}}}
                }}}
            }]
        }
    })
}

fn fleet(name: &str, items: usize) -> Value {
    let items: Vec<Value> = (0..items)
        .map(|i| json!({"id": format!("account-{i:06}"), "port": 8000 + i % 1000, "labels": {"tier": "gold"}}))
        .collect();
    json!({
        "apiVersion": "bench.baton.dev/v1", "kind": "Fleet",
        "metadata": {"name": name},
        "spec": {"items": items}
    })
}

async fn median_write(api: &Api<DynamicObject>, name: &str) -> Result<Duration> {
    let mut took = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let t = Instant::now();
        if i % 2 == 0 {
            let body = json!({"apiVersion": "bench.baton.dev/v1", "kind": "Fleet", "status": {"running": i}});
            let params = PatchParams::apply("sim-bench").force();
            api.patch_status(name, &params, &Patch::Apply(&body)).await
        } else {
            let body = json!({"status": {"running": i}});
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
                .await
        }
        .with_context(|| format!("status write {i} of {name}"))?;
        took.push(t.elapsed());
    }
    took.sort();
    Ok(took[WRITES / 2])
}

pub(crate) async fn object_size(sim: &Sim, ns: &str) -> Result<SizeCost> {
    let client = sim
        .client_as("sim-bench-size")
        .await
        .context("building a kube client")?;
    let crd: CustomResourceDefinition = serde_json::from_value(crd()).context("the bench CRD")?;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .context("creating the bench CRD")?;
    let gvk = GroupVersionKind::gvk("bench.baton.dev", "v1", "Fleet");
    let api: Api<DynamicObject> = Api::namespaced_with(client, ns, &ApiResource::from_gvk(&gvk));
    let mut cost = Vec::new();
    for (name, items) in [("small", SMALL), ("large", LARGE)] {
        let obj: DynamicObject = serde_json::from_value(fleet(name, items)).context("a fleet")?;
        api.create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("creating {name}"))?;
        cost.push(median_write(&api, name).await?);
    }
    Ok(SizeCost {
        small: cost[0],
        large: cost[1],
    })
}
