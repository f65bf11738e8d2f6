//! The CustomResourceDefinitions of the controllers' kinds, watched while leading: one being
//! deleted (`deletionTimestamp`: the API server is deleting every object of the kind) or gone
//! is noted in [`Crds`](crate::metrics::crds::Crds), which logs it and sets
//! `baton_crd_installed`. Reading CRDs takes a cluster-wide grant (`list` and `watch` on the
//! two CRDs by name), which is asked for first (a SelfSubjectAccessReview, as `kubectl auth
//! can-i`): without it nothing is read, and a CRD that goes is still seen, from the 404s of
//! the watches of its objects.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::{watcher, WatchStreamExt};
use tracing::{debug, info};

use crate::metrics::crds::{CrdState, LISTENERSETS, ROLLOUTS};
use crate::metrics::Metrics;

/// The state a CRD object says its kind is in.
fn state_of(crd: &CustomResourceDefinition) -> CrdState {
    match crd.metadata.deletion_timestamp {
        Some(_) => CrdState::Terminating,
        None => CrdState::Installed,
    }
}

/// Watch both CRDs until `shutdown`.
pub async fn watch(client: kube::Client, metrics: Arc<Metrics>, shutdown: impl Future<Output = ()>) {
    let both = futures::future::join(
        watch_one(client.clone(), metrics.clone(), ROLLOUTS),
        watch_one(client, metrics, LISTENERSETS),
    );
    tokio::select! {
        _ = both => {}
        _ = shutdown => {}
    }
}

/// Whether this controller may watch CRD `name`, as the API server answers a
/// SelfSubjectAccessReview; asked again (1 s doubling to 30 s) until it answers.
async fn may_watch(client: &kube::Client, name: &str) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("apiextensions.k8s.io".into()),
                resource: Some("customresourcedefinitions".into()),
                verb: Some("watch".into()),
                name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: kube::Api<SelfSubjectAccessReview> = kube::Api::all(client.clone());
    let mut delay = Duration::from_secs(1);
    loop {
        match api.create(&Default::default(), &review).await {
            Ok(r) => return r.status.is_some_and(|s| s.allowed),
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => return false,
            Err(e) => debug!(crd = name, error = %e, retry_in = ?delay, "asking whether the CRD may be read"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Watch CRD `name`, noting each state it is seen in; nothing if reading it is not allowed.
async fn watch_one(client: kube::Client, metrics: Arc<Metrics>, name: &'static str) {
    if !may_watch(&client, name).await {
        info!(
            crd = name,
            "not allowed to read the CustomResourceDefinition {name}: its deletion is reported once it is gone"
        );
        return;
    }
    metrics.crds.read_directly(name);
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, cfg).default_backoff().boxed();
    // Whether the list being received has the CRD (a list without it: not installed).
    let mut listed = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed = false,
            Ok(watcher::Event::InitApply(crd)) => {
                listed = true;
                metrics.crds.note(name, state_of(&crd));
            }
            Ok(watcher::Event::InitDone) if !listed => metrics.crds.note(name, CrdState::Missing),
            Ok(watcher::Event::InitDone) => {}
            Ok(watcher::Event::Apply(crd)) => metrics.crds.note(name, state_of(&crd)),
            Ok(watcher::Event::Delete(_)) => metrics.crds.note(name, CrdState::Missing),
            // Retried with backoff; a failing watch of the objects themselves is logged there.
            Err(e) => debug!(crd = name, error = %e, "watching the CRD"),
        }
    }
}
