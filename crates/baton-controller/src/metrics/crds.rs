//! Whether the CustomResourceDefinitions the controllers serve are installed, as the
//! controller last saw them (`baton_crd_installed`): from the CRDs themselves where it may read
//! them, and from the watches of their objects (a 404 means the CRD is gone). Each change is
//! logged once, with what it means for the objects and what to do.
use std::collections::HashMap;
use std::sync::Mutex;

use kube::runtime::watcher;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tracing::{error, info};

/// The CRD of Rollouts.
pub const ROLLOUTS: &str = "rollouts.baton.dev";
/// The CRD of ListenerSets.
pub const LISTENERSETS: &str = "listenersets.baton.dev";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CrdLabel {
    pub crd: String,
}

/// What the controller knows of one CRD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrdState {
    /// Installed, not being deleted.
    Installed,
    /// Being deleted: the API server deletes every object of the kind and refuses new ones.
    Terminating,
    /// Not installed: the kind is not served.
    Missing,
}

/// The state of each CRD, and its gauge.
#[derive(Default)]
pub struct Crds {
    pub(super) installed: Family<CrdLabel, Gauge>,
    states: Mutex<HashMap<String, CrdState>>,
    /// The CRDs read themselves: what the watches of their objects say is not needed.
    read: Mutex<std::collections::HashSet<String>>,
}

/// The kind a CRD of [`ROLLOUTS`] or [`LISTENERSETS`] defines, and what deleting its objects
/// does besides.
fn kind_of(crd: &str) -> (&'static str, &'static str) {
    match crd {
        ROLLOUTS => ("Rollout", "their pods and revisions go with them"),
        _ => (
            "ListenerSet",
            "this controller stops each one's listeners and deletes its Leases before it goes",
        ),
    }
}

impl Crds {
    /// CRD `crd` is now in `state`: the gauge follows; a change from what was known is logged.
    pub fn note(&self, crd: &str, state: CrdState) {
        self.installed
            .get_or_create(&CrdLabel { crd: crd.to_string() })
            .set(i64::from(state == CrdState::Installed));
        let before = {
            let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
            states.insert(crd.to_string(), state)
        };
        if before == Some(state) {
            return;
        }
        let (kind, besides) = kind_of(crd);
        match (before, state) {
            (None, CrdState::Installed) => {}
            (Some(_), CrdState::Installed) => info!(
                crd,
                kind, "the CustomResourceDefinition {crd} is installed again: {kind}s are read and reconciled again"
            ),
            (_, CrdState::Terminating) => error!(
                crd,
                kind,
                "the CustomResourceDefinition {crd} is being deleted: the API server deletes every {kind} ({besides}) \
                 and refuses new ones. Keep this controller running until the CRD is gone; if the deletion was not \
                 intended, install the CRD again once it is gone (`kubectl apply -f crds/`, or the Helm chart) and \
                 re-create the {kind}s"
            ),
            (_, CrdState::Missing) => error!(
                crd,
                kind,
                "the CustomResourceDefinition {crd} is not installed: no {kind} can be read or reconciled until it is \
                 installed again (`kubectl apply -f crds/`, or the Helm chart)"
            ),
        }
    }

    /// What CRD `crd` is known to be in (None: not seen yet).
    pub fn state(&self, crd: &str) -> Option<CrdState> {
        self.states.lock().unwrap_or_else(|p| p.into_inner()).get(crd).copied()
    }

    /// CRD `crd` itself is watched from now on: its state comes from there only (a watch of
    /// its objects may still answer 404 for a moment after the CRD is back).
    pub fn read_directly(&self, crd: &str) {
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(crd.to_string());
    }

    /// Read one event of a watch of the objects CRD `crd` defines, unless the CRD is read
    /// directly: a list answered 404 means the CRD is gone; a complete list after that means it
    /// is back.
    pub fn note_watch<K>(&self, crd: &str, event: &Result<watcher::Event<K>, watcher::Error>) {
        if event.is_ok() && !matches!(event, Ok(watcher::Event::InitDone)) {
            return;
        }
        if self.read.lock().unwrap_or_else(|p| p.into_inner()).contains(crd) {
            return;
        }
        match event {
            Err(
                watcher::Error::InitialListFailed(kube::Error::Api(s))
                | watcher::Error::WatchStartFailed(kube::Error::Api(s))
                | watcher::Error::WatchFailed(kube::Error::Api(s)),
            ) if s.code == 404 => self.note(crd, CrdState::Missing),
            Ok(watcher::Event::InitDone) if self.state(crd) == Some(CrdState::Missing) => {
                self.note(crd, CrdState::Installed)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_follows_the_state() {
        let m = super::super::Metrics::default();
        m.crds.note(LISTENERSETS, CrdState::Installed);
        assert!(m
            .render()
            .contains("baton_crd_installed{crd=\"listenersets.baton.dev\"} 1"));
        m.crds.note(LISTENERSETS, CrdState::Terminating);
        assert!(m
            .render()
            .contains("baton_crd_installed{crd=\"listenersets.baton.dev\"} 0"));
        assert_eq!(m.crds.state(LISTENERSETS), Some(CrdState::Terminating));
    }

    #[test]
    fn a_404_list_means_missing_and_a_later_list_means_installed() {
        let crds = Crds::default();
        let gone: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 404, "reason": "NotFound",
            "message": "the server could not find the requested resource",
        }))
        .unwrap();
        let failed: Result<watcher::Event<()>, watcher::Error> =
            Err(watcher::Error::InitialListFailed(kube::Error::Api(Box::new(gone))));
        crds.note_watch(ROLLOUTS, &failed);
        assert_eq!(crds.state(ROLLOUTS), Some(CrdState::Missing));
        crds.note_watch::<()>(ROLLOUTS, &Ok(watcher::Event::InitDone));
        assert_eq!(crds.state(ROLLOUTS), Some(CrdState::Installed));
        // Once the CRD is read directly, its objects' watches are not listened to.
        crds.read_directly(ROLLOUTS);
        crds.note_watch(ROLLOUTS, &failed);
        assert_eq!(crds.state(ROLLOUTS), Some(CrdState::Installed));
    }
}
