//! What the robustness tests read besides the controller process (`support::controller`): its
//! objects' raw JSON, which the Rust types may not decode, and their Events.

use baton::api::listenerset::ListenerSet;
use baton::api::rollout::Rollout;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;

pub use crate::support::controller::{spawn, start, temp_dir, ControllerProc as Proc, NO_ELECTION};
use crate::support::{wait_for, LONG, NS};

/// Raw access to Rollouts and ListenerSets, for objects `Rollout` cannot decode.
pub fn raw<K: kube::Resource<DynamicType = ()>>(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &ApiResource::erase::<K>(&()))
}

pub fn raw_rollouts(client: &kube::Client) -> Api<DynamicObject> {
    raw::<Rollout>(client)
}

pub fn raw_listenersets(client: &kube::Client) -> Api<DynamicObject> {
    raw::<ListenerSet>(client)
}

/// Create an object from JSON as is (the API server decides what it stores).
pub async fn create_raw(api: &Api<DynamicObject>, obj: Value) -> Result<DynamicObject, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(obj).expect("a JSON object");
    api.create(&PostParams::default(), &obj).await
}

/// A condition of a raw object's status: (status, reason, message, observedGeneration).
pub fn raw_condition(obj: &DynamicObject, type_: &str) -> Option<(String, String, String, Option<i64>)> {
    let conds = obj.data["status"]["conditions"].as_array()?;
    let c = conds.iter().find(|c| c["type"] == type_)?;
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message"), c["observedGeneration"].as_i64()))
}

/// `status.observedGeneration == metadata.generation` of a raw object.
pub fn observed_current(obj: &DynamicObject) -> bool {
    obj.metadata.generation.is_some() && obj.data["status"]["observedGeneration"].as_i64() == obj.metadata.generation
}

/// Wait until every named object of `api` has been reconciled at its current generation.
pub async fn wait_observed(api: &Api<DynamicObject>, names: &[String], what: &str) {
    wait_for(what, LONG, || async {
        for n in names {
            let o = api.get(n).await.ok()?;
            if !observed_current(&o) {
                return None;
            }
        }
        Some(())
    })
    .await
}

/// A ListenerSet selecting pods labelled `app=<name>` with listeners `a`, `b`.
pub fn listenerset(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "ListenerSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "listeners": [{"id": "a"}, {"id": "b"}],
        },
    })
}

/// `value` without any `minimum`/`maximum` (an older baton's schema, before integers were
/// bounded).
fn strip_bounds(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.remove("minimum");
            m.remove("maximum");
            m.values_mut().for_each(strip_bounds);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_bounds),
        _ => {}
    }
}

/// Swap the schema of the CRD `crd_name` for `schema`; returns the one it had.
async fn swap_schema(client: &kube::Client, crd_name: &str, schema: Option<Value>) -> Value {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get(crd_name).await.expect("the CRD");
    let mut v = serde_json::to_value(&crd).expect("json");
    let path = "/spec/versions/0/schema/openAPIV3Schema";
    let old = v.pointer(path).cloned().expect("a schema");
    let new = schema.unwrap_or_else(|| {
        let mut s = old.clone();
        strip_bounds(&mut s);
        s
    });
    if let Some(slot) = v.pointer_mut(path) {
        *slot = new;
    }
    let crd: CustomResourceDefinition = serde_json::from_value(v).expect("a CRD");
    crds.replace(crd_name, &PostParams::default(), &crd)
        .await
        .expect("replacing the CRD");
    old
}

/// Store `objects` as an API server would have under an older baton's CRDs, whose schema did
/// not bound integers (kube-apiserver does not enforce `format: int32` on custom resources):
/// the bounds are lifted for the creates and restored at once. Such objects stay stored
/// after an upgrade, and every controller start, failover or relist meets them.
pub async fn create_under_unbounded_schema(
    client: &kube::Client,
    crd_name: &str,
    api: &Api<DynamicObject>,
    objects: Vec<Value>,
) -> Vec<Result<DynamicObject, kube::Error>> {
    let schema = swap_schema(client, crd_name, None).await;
    let mut out = Vec::new();
    for obj in objects {
        out.push(create_raw(api, obj).await);
    }
    swap_schema(client, crd_name, Some(schema)).await;
    out
}

/// Each create of [`create_under_unbounded_schema`] succeeded.
pub fn all_stored(created: Vec<Result<DynamicObject, kube::Error>>) {
    for r in created {
        if let Err(e) = r {
            panic!("storing under the unbounded schema: {e}");
        }
    }
}

pub const ROLLOUTS_CRD: &str = "rollouts.baton.dev";
pub const LISTENERSETS_CRD: &str = "listenersets.baton.dev";

pub use crate::support::events_of;

/// Wait for a Warning Event with `reason` regarding `kind`/`name`; its note.
pub async fn wait_warning(client: &kube::Client, kind: &str, name: &str, reason: &str) -> String {
    wait_for(&format!("a {reason} Warning on {kind} {name}"), LONG, || async {
        events_of(client, kind, name)
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some("Warning"))
            .map(|e| e.note.unwrap_or_default())
    })
    .await
}
