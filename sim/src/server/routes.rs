//! Routing of Kubernetes REST paths: version and health, discovery, OpenAPI, and resource
//! paths resolved to their resource type, namespace, name and subresource.

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, Method, Request, Response};
use hyper::body::Incoming;
use serde_json::json;

use crate::admission::RequestContext;
use crate::error::ApiError;
use crate::openapi;
use crate::resources::ResourceType;

use super::request::parse_query;
use super::response::{full, json_response};
use super::{Body, Server};

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The `/version` answer.
fn version() -> serde_json::Value {
    json!({
        "major": "1", "minor": "32", "emulationMajor": "1", "emulationMinor": "32",
        "minCompatibilityMajor": "1", "minCompatibilityMinor": "31", "gitVersion": "v1.32.0-baton-sim", "gitCommit": "baton-sim",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"
    })
}

/// A parsed resource path.
pub(super) struct Target {
    pub(super) rt: Arc<ResourceType>,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) sub: Option<String>,
}

impl Server {
    pub(super) async fn route(
        self: &Arc<Self>,
        req: Request<Incoming>,
        id: &str,
        ctx: &Arc<RequestContext>,
    ) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().to_string();
        let query = parse_query(req.uri().query());
        let accept = super::request::header_str(&req, header::ACCEPT).to_string();
        let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let method = req.method().clone();
        if self.unknown_path(&segs) {
            return Ok(super::response::page_not_found());
        }
        if let Some(r) = self.read_only_route(&segs, &accept) {
            return if method == Method::GET {
                r
            } else {
                Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ))
            };
        }
        match segs.as_slice() {
            // The simulator's own admin endpoint (not a Kubernetes API): attach an OS process to
            // a pod, as `baton-sim attach` does.
            ["baton-sim", "attach"] if method == Method::POST => self.attach(&query),
            ["openapi", "v2"] => Err(ApiError::no_route()),
            _ => {
                let target = self.resolve(&segs)?;
                self.resource_request(req, target, query, &accept, id, ctx).await
            }
        }
    }

    /// A path no API handler of kube-apiserver's serves — outside `/api`, `/apis` and the
    /// server's own endpoints, or under `/apis/<group>` of a group nobody serves: its
    /// mux's `NotFound`, a plain-text 404 rather than a `Status`.
    fn unknown_path(&self, segs: &[&str]) -> bool {
        match segs {
            [] => false,
            ["api", ..] | ["version"] | ["healthz", ..] | ["readyz", ..] | ["livez", ..] | ["openapi", ..] => false,
            ["baton-sim", ..] | ["apis"] => false,
            ["apis", group, ..] => self.core.registry().api_group(group).is_none(),
            _ => true,
        }
    }

    /// The paths only GET may read: version, health, discovery and OpenAPI v3. None for any
    /// other path.
    fn read_only_route(&self, segs: &[&str], accept: &str) -> Option<Result<Response<Body>, ApiError>> {
        let found = |v: Option<serde_json::Value>| {
            v.map(|v| json_response(200, &v, "application/json", &[]))
                .ok_or_else(ApiError::no_route)
        };
        Some(match segs {
            ["version"] => Ok(json_response(200, &version(), "application/json", &[])),
            ["healthz"] | ["readyz"] | ["livez"] => Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header("x-content-type-options", "nosniff")
                .body(full("ok"))
                .unwrap_or_else(|_| Response::new(full("ok")))),
            ["api"] => Ok(self.discovery(true, accept)),
            ["apis"] => Ok(self.discovery(false, accept)),
            ["api", "v1"] => found(self.core.registry().api_resource_list("", "v1")),
            ["apis", g] => found(self.core.registry().api_group(g)),
            ["apis", g, v] => found(self.core.registry().api_resource_list(g, v)),
            ["openapi", "v3"] => Ok(json_response(
                200,
                &openapi::index(&self.core.registry()),
                "application/json",
                &[],
            )),
            ["openapi", "v3", rest @ ..] => found(openapi::group_version(&self.core.registry(), &rest.join("/"))),
            _ => return None,
        })
    }

    /// `POST /baton-sim/attach?namespace=&pod=&pid=`: the kubelet runs pod `pod` as process `pid`.
    fn attach(&self, query: &HashMap<String, String>) -> Result<Response<Body>, ApiError> {
        let ns = query.get("namespace").map(String::as_str).unwrap_or("default");
        let pod = query
            .get("pod")
            .ok_or_else(|| ApiError::bad_request("pod: Required value"))?;
        let pid: u32 = query
            .get("pid")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| ApiError::bad_request("pid: Required value: a process id"))?;
        match self.kubelet.attach_pid(ns, pod, pid) {
            Ok(()) => Ok(json_response(
                200,
                &json!({"namespace": ns, "pod": pod, "pid": pid}),
                "application/json",
                &[],
            )),
            Err(crate::controllers::kubelet::AttachError::NoPod(_)) => Err(ApiError::not_found("pods", pod)),
            Err(e) => Err(ApiError::bad_request(e.to_string())),
        }
    }

    fn discovery(&self, core: bool, accept: &str) -> Response<Body> {
        let reg = self.core.registry();
        if accept.contains("apidiscovery.k8s.io") && accept.contains("v=v2;")
            || accept.contains("v=v2,")
            || accept.ends_with("v=v2")
        {
            return json_response(200, &reg.aggregated(core), AGGREGATED, &[]);
        }
        let v = if core { reg.api_versions() } else { reg.api_group_list() };
        json_response(200, &v, "application/json", &[])
    }

    fn resolve(&self, segs: &[&str]) -> Result<Target, ApiError> {
        let (group, version, rest) = match segs {
            ["api", "v1", rest @ ..] => ("", "v1", rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return Err(ApiError::no_route()),
        };
        let reg = self.core.registry();
        let lookup = |plural: &str| reg.get(group, version, plural).ok_or_else(ApiError::no_route);
        // The resource and namespace, and what follows: [], [name] or [name, sub].
        let (rt, namespace, tail) = match rest {
            // /api/v1/namespaces/{name}/status|finalize is the namespace object itself.
            ["namespaces", _, "status" | "finalize"] if group.is_empty() => (lookup("namespaces")?, None, &rest[1..]),
            ["namespaces", ns, plural, tail @ ..] => {
                let rt = lookup(plural)?;
                if !rt.namespaced {
                    return Err(ApiError::no_route());
                }
                (rt, Some(ns.to_string()), tail)
            }
            [plural, tail @ ..] => {
                let rt = lookup(plural)?;
                // A namespaced resource is listed across namespaces, never named without one.
                if rt.namespaced && !tail.is_empty() {
                    return Err(ApiError::no_route());
                }
                (rt, None, tail)
            }
            [] => return Err(ApiError::no_route()),
        };
        let (name, sub) = match tail {
            [] => (None, None),
            [name] => (Some(name.to_string()), None),
            [name, sub] => (Some(name.to_string()), Some(sub.to_string())),
            _ => return Err(ApiError::no_route()),
        };
        Ok(Target {
            rt,
            namespace,
            name,
            sub,
        })
    }
}
