//! A listener's config follows its Secret: each assignment names the version of the Secret the
//! controller resolved the listener from, and an agent whose copy of the Secret is another
//! version reads it again, however recently it read it.
use std::collections::BTreeMap;
use std::time::Duration;

use baton::api::listenerset::lease::config_version_of;
use baton::api::listenerset::lease_name;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize;
use serde_json::json;

use crate::harness::{process::http, wait_for, Ns, R};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(60);
const SET: &str = "cfg";
const SECRET: &str = "cfg-tokens";

/// One entry of the sidecar's document, with its config.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Served {
    listener_set: String,
    id: String,
    config: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Document {
    listeners: Vec<Served>,
}

/// Listener id → config, of set [`SET`], as pod `pod`'s sidecar serves them to its app now.
async fn served(ns: &Ns, pod: &str) -> R<BTreeMap<String, Option<String>>> {
    let port = ns.pod(pod)?.port;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (code, body) = http(addr, "GET", "/listeners", Duration::from_secs(5))
        .await
        .ok_or_else(|| format!("{pod}'s sidecar did not answer"))?;
    if code != 200 {
        return Err(format!("{pod}'s sidecar answered {code}: {body}"));
    }
    let doc: Document = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    Ok(doc
        .listeners
        .into_iter()
        .filter(|l| l.listener_set == SET)
        .map(|l| (l.id, l.config))
        .collect())
}

/// Two pods run four listeners whose configs come from one Secret; every value changes and one
/// key goes, and once the controller has acted on that (the listener gone), one pod is drained.
/// Its listeners start on the other pod, whose agent read the Secret moments before, with the
/// new values: it used to keep its copy for 10 s and start them with the old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_moved_after_its_secret_changed_starts_with_the_new_config() {
    let ns = Ns::plain("configs").await;
    ok(ns.start_controller().await);
    for p in ["cf-a", "cf-b"] {
        ok(ns.create_pod(p).await);
    }
    let old: BTreeMap<String, String> = (1..=4).map(|i| (format!("l{i}"), format!("old-{i}"))).collect();
    ok(ns.create_set_from_secret(SET, SECRET, &old, 5).await);
    let held = ok(ns.settled(SET, 4, "four listeners running", LONG).await);
    for pod in ["cf-a", "cf-b"] {
        let configs = ok(served(&ns, pod).await);
        assert!(!configs.is_empty(), "both pods run listeners: {held:?}");
        for (id, config) in &configs {
            assert_eq!(config.as_ref(), old.get(id), "{pod} {id}");
        }
    }
    let patch = json!({
        "data": {"l4": null},
        "stringData": {"l1": "new-1", "l2": "new-2", "l3": "new-3"},
    });
    let secrets = Api::<Secret>::namespaced(ns.client.clone(), &ns.name);
    let changed = ok(secrets
        .patch(SECRET, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("patching the Secret: {e}")));
    let version = changed.metadata.resource_version.clone().unwrap_or_default();
    ok(wait_for("l4 gone: the controller read the new Secret", LONG, || async {
        let h = ns.holders(SET).await.ok()?;
        (h.len() == 3 && !ns.running_on().contains_key(&format!("{SET}/l4"))).then_some(())
    })
    .await);
    let on = ns.running_on();
    let drained = if on.values().any(|p| p == "cf-a") {
        "cf-a"
    } else {
        "cf-b"
    };
    let other = if drained == "cf-a" { "cf-b" } else { "cf-a" };
    let moving: Vec<String> = on
        .iter()
        .filter(|(_, p)| *p == drained)
        .map(|(k, _)| k.trim_start_matches(&format!("{SET}/")).to_string())
        .collect();
    assert!(!moving.is_empty(), "{drained} runs listeners: {on:?}");
    ok(ns.drain(drained, true).await);
    let keys: Vec<String> = (1..=3).map(|i| format!("{SET}/l{i}")).collect();
    ok(ns
        .wait_running("every listener off the drained pod", &keys, LONG, |p| p == other)
        .await);
    let configs = ok(served(&ns, other).await);
    for id in &moving {
        let lease = ok(ns.leases().get(&lease_name(SET, id)).await.map_err(|e| e.to_string()));
        assert_eq!(
            config_version_of(&lease),
            Some(version.as_str()),
            "{id}: the assignment names the Secret's new version"
        );
        let want = format!("new-{}", id.trim_start_matches('l'));
        assert_eq!(
            configs.get(id).cloned().flatten().as_deref(),
            Some(want.as_str()),
            "{id} moved from {drained} to {other} after the Secret changed: {configs:?}"
        );
    }
    assert_clean(&ns, true);
}
