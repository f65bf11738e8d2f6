//! The API server `lint` asks: the simulator (`baton-sim`), started in this process with
//! baton's CRDs, so that what it refuses is what kube-apiserver refuses (the schema, its CEL
//! rules, list uniqueness, metadata), worded as kube-apiserver words it. Every object is a
//! server-side dry-run create: nothing is stored, and the answer is the object with the
//! schema's defaults, which the controllers' own validation then reads.
use std::collections::BTreeMap;

use baton_sim::auth::AuthorizationMode;
use baton_sim::{Sim, SimConfig};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value};

use super::controller::{self, Made};
use super::Finding;
use crate::api::listenerset::ListenerSet;
use crate::api::rollout::Rollout;
use crate::api::{API_VERSION, LISTENERSET_PLURAL, ROLLOUT_PLURAL};
use crate::rollout::planner::undecodable;
use crate::session::CliError;

/// What kube-apiserver says before the unknown fields of a strict create (after the kind and
/// version it could not decode).
const STRICT_DECODING: &str = "strict decoding error: ";

/// The kinds `lint` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Linted {
    Rollout,
    ListenerSet,
}

/// The embedded API server and the namespaces made in it so far (with what was wrong with a
/// name that could not be one).
pub struct Validator {
    // Kept for its lifetime: dropping it stops the server.
    _sim: Sim,
    client: kube::Client,
    namespaces: BTreeMap<String, Vec<Finding>>,
}

impl Validator {
    /// The simulator on a loopback port of its own, with baton's CRDs installed. It serves
    /// this process only: every request is allowed.
    pub async fn start() -> Result<Validator, CliError> {
        let config = SimConfig {
            authorization: AuthorizationMode::AlwaysAllow,
            ..SimConfig::default()
        };
        let why = |e: &dyn std::fmt::Display| CliError::msg(format!("starting the embedded API server: {e}"));
        let sim = Sim::start(config).await.map_err(|e| why(&e))?;
        let client = sim.client().await.map_err(|e| why(&e))?;
        crate::demo::install_crds(&client).await.map_err(|e| why(&e))?;
        Ok(Validator {
            _sim: sim,
            client,
            namespaces: BTreeMap::new(),
        })
    }

    /// Everything wrong with `object` (of group `baton.dev`), in namespace `namespace` unless
    /// it names its own.
    pub async fn lint(&mut self, object: &Map<String, Value>, namespace: &str) -> Vec<Finding> {
        let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("");
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        let kind = match (api_version == API_VERSION, kind) {
            (true, k) if k == Rollout::kind(&()) => Linted::Rollout,
            (true, k) if k == ListenerSet::kind(&()) => Linted::ListenerSet,
            _ => {
                return vec![Finding::plain(format!(
                    "no matches for kind {kind:?} in version {api_version:?}"
                ))]
            }
        };
        let namespace = object
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .unwrap_or(namespace);
        let problems = self.namespace(namespace).await;
        if !problems.is_empty() {
            return problems;
        }
        let plural = match kind {
            Linted::Rollout => ROLLOUT_PLURAL,
            Linted::ListenerSet => LISTENERSET_PLURAL,
        };
        let path = format!("/apis/{API_VERSION}/namespaces/{namespace}/{plural}");
        let (accepted, mut findings) = self.dry_run(&path, &manifest(object)).await;
        if let Some(accepted) = accepted {
            findings.extend(match kind {
                Linted::Rollout => self.rollout(accepted, namespace).await,
                Linted::ListenerSet => listenerset(accepted),
            });
        }
        findings
    }

    /// Namespace `name` made (once), or what is wrong with its name, at `metadata.namespace`.
    async fn namespace(&mut self, name: &str) -> Vec<Finding> {
        if let Some(problems) = self.namespaces.get(name) {
            return problems.clone();
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        let problems = match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Vec::new(),
            Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => Vec::new(),
            Err(e) => refusal(&e)
                .into_iter()
                .map(|f| Finding {
                    field: Some("metadata.namespace".into()),
                    message: f.message,
                })
                .collect(),
        };
        self.namespaces.insert(name.to_string(), problems.clone());
        problems
    }

    /// A strict dry-run create of `body` at `path`: the object as the API server would store
    /// it, and what it refuses. Unknown fields refuse a strict create before anything else is
    /// checked, so they are reported and the create is made again without them, for the rest.
    async fn dry_run(&self, path: &str, body: &Value) -> (Option<Value>, Vec<Finding>) {
        let e = match self.create(path, body, Some("Strict")).await {
            Ok(accepted) => return (Some(accepted), Vec::new()),
            Err(e) => e,
        };
        let Some(mut unknown) = unknown_fields(&e) else {
            return (None, refusal(&e));
        };
        match self.create(path, body, Some("Ignore")).await {
            Ok(accepted) => (Some(accepted), unknown),
            Err(e) => {
                unknown.extend(refusal(&e));
                (None, unknown)
            }
        }
    }

    /// `POST path?dryRun=All[&fieldValidation=…]` with `body` as JSON.
    async fn create(&self, path: &str, body: &Value, validation: Option<&str>) -> Result<Value, kube::Error> {
        let mut uri = format!("{path}?dryRun=All");
        if let Some(v) = validation {
            uri.push_str("&fieldValidation=");
            uri.push_str(v);
        }
        let bytes = serde_json::to_vec(body).map_err(kube::Error::SerdeError)?;
        let request = http::Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(bytes)
            .map_err(kube::Error::HttpError)?;
        self.client.request::<Value>(request).await
    }

    /// The Rollout controller's verdict on what the API server accepted: its validation, and
    /// the API server's on the objects it would make from the spec.
    async fn rollout(&self, accepted: Value, namespace: &str) -> Vec<Finding> {
        let rollout: Rollout = match serde_json::from_value(accepted) {
            Ok(r) => r,
            // The controller's words for a stored Rollout it cannot read.
            Err(e) => return vec![Finding::plain(undecodable(&e.to_string()).to_string())],
        };
        let mut findings: Vec<Finding> = controller::rollout_problems(&rollout.name_any(), &rollout.spec)
            .iter()
            .map(|p| Finding::plain(p.to_string()))
            .collect();
        for made in controller::made_objects(&rollout, namespace) {
            findings.extend(self.made(&made).await);
        }
        findings
    }

    /// The API server's refusal of an object the controller would make.
    async fn made(&self, made: &Made) -> Vec<Finding> {
        match self.create(&made.path, &made.body, None).await {
            Ok(_) => Vec::new(),
            Err(e) => made.refusal(refusal(&e)),
        }
    }
}

/// `object` without what the API server writes itself: a manifest saved with `kubectl get -o
/// yaml` has them, and a create would be refused for them alone.
fn manifest(object: &Map<String, Value>) -> Value {
    const SERVER_SET: &[&str] = &[
        "resourceVersion",
        "uid",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ];
    let mut object = object.clone();
    object.remove("status");
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.retain(|k, _| !SERVER_SET.contains(&k.as_str()));
    }
    Value::Object(object)
}

/// The ListenerSet reconciler's verdict on what the API server accepted.
fn listenerset(accepted: Value) -> Vec<Finding> {
    match serde_json::from_value::<ListenerSet>(accepted) {
        Ok(set) => controller::listenerset_problems(&set.name_any(), &set.spec)
            .iter()
            .map(|p| Finding::plain(p.to_string()))
            .collect(),
        Err(e) => vec![Finding::plain(format!("the stored ListenerSet does not decode ({e})"))],
    }
}

/// The API server's refusal as findings: one per cause of an invalid object, else its message.
fn refusal(e: &kube::Error) -> Vec<Finding> {
    let kube::Error::Api(status) = e else {
        return vec![Finding::plain(format!("the embedded API server failed: {e}"))];
    };
    let causes = status.details.as_ref().map(|d| d.causes.as_slice()).unwrap_or_default();
    if status.reason != "Invalid" || causes.is_empty() {
        return vec![Finding::plain(status.message.clone())];
    }
    causes
        .iter()
        .map(|c| Finding {
            field: Some(c.field.clone()).filter(|f| !f.is_empty()),
            message: c.message.clone(),
        })
        .collect()
}

/// The unknown fields of a strict create's refusal, one finding each, in kube-apiserver's
/// words (`unknown field "spec.replica"`); None for any other answer.
fn unknown_fields(e: &kube::Error) -> Option<Vec<Finding>> {
    let kube::Error::Api(status) = e else { return None };
    // kube-apiserver: `Rollout in version "v1alpha1" cannot be handled as a Rollout: strict
    // decoding error: unknown field "spec.replica", unknown field …`.
    let (_, list) = status.message.split_once(STRICT_DECODING)?;
    const SEPARATOR: &str = ", unknown field ";
    let mut out = Vec::new();
    for (i, part) in list.split(SEPARATOR).enumerate() {
        let message = if i == 0 {
            part.to_string()
        } else {
            format!("unknown field {part}")
        };
        out.push(Finding::plain(message));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::api_error;

    #[test]
    fn a_strict_refusal_is_a_finding_per_unknown_field() {
        let e = api_error(
            400,
            "BadRequest",
            "Rollout in version \"v1alpha1\" cannot be handled as a Rollout: strict decoding error: \
             unknown field \"spec.replica\", unknown field \"spec.foo\"",
        );
        let found: Vec<String> = unknown_fields(&e).unwrap().iter().map(|f| f.to_string()).collect();
        assert_eq!(found, ["unknown field \"spec.replica\"", "unknown field \"spec.foo\""]);
        assert!(unknown_fields(&api_error(400, "BadRequest", "something else")).is_none());
    }
}
