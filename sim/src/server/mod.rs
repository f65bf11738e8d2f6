//! The HTTP front: routing of Kubernetes REST paths, content negotiation (JSON, YAML, Table),
//! list and watch, and the fault-injection gate every request passes.
//!
//! A request passes the fault gate here, is routed by path (`routes`), dispatched by verb
//! (`resource`), and served as a list (`list`), a watch stream (`watch`) or a single reply.
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;

use crate::admission::escalation::Escalation;
use crate::admission::policy::{self, Admission};
use crate::admission::{Check, RequestContext};
use crate::auth::{RequestInfo, UserInfo};
use crate::error::ApiError;
use crate::faults::{Faults, Verdict};
use crate::handlers::Core;

mod fairness;
mod list;
mod negotiate;
mod render;
mod request;
mod resource;
mod response;
mod routes;
mod watch;

pub use fairness::{Fairness, FlowLimit};
use request::identity;
use response::error_response;

/// Largest request body accepted, as kube-apiserver's 3 MiB limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub type Body = BoxBody<Bytes, Infallible>;

pub struct Server {
    pub core: Arc<Core>,
    pub faults: Arc<Faults>,
    /// For the simulator's own admin endpoints (`/baton-sim/...`).
    pub kubelet: Arc<crate::controllers::kubelet::Kubelet>,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// API Priority and Fairness: the per-user rate above which requests get 429.
    pub fairness: Arc<Fairness>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The compiled ValidatingAdmissionPolicies, kept until one of them changes.
    pub policies: policy::Cache,
}

fn namespaces_key() -> crate::resources::ResKey {
    crate::resources::ResKey {
        group: String::new(),
        plural: "namespaces".into(),
    }
}

/// The `Content-Type` of a Table answer: kube-apiserver names the serializer's media type,
/// without the `as=Table` parameters the client asked with.
const TABLE_CT: &str = "application/json";

impl Server {
    /// Answer one request. Every answer carries, as kube-apiserver's filters set them, an
    /// `Audit-Id` (one per request) and `Cache-Control: no-cache, private`.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let mut resp = self.answer(req).await?;
        let headers = resp.headers_mut();
        if let Ok(id) = http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            headers.insert("audit-id", id);
        }
        headers
            .entry(http::header::CACHE_CONTROL)
            .or_insert(http::HeaderValue::from_static("no-cache, private"));
        Ok(resp)
    }

    async fn answer(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let id = identity(&req);
        self.core.count_request(&id, req.method().as_str());
        if req.method() != Method::GET {
            self.core.log_write(&id, req.method().as_str(), req.uri().path());
        }
        // Fault gate: partitions and pauses hold the request; latency delays it; error rates fail it.
        if self.faults.is_held(&id) {
            self.faults.wait_released(&id).await;
        }
        match self.faults.verdict(&id, req.uri().path()) {
            Verdict::Pass { latency } => {
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
            }
            Verdict::Fail { latency, code } => {
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                let e = match code {
                    409 => ApiError::conflict_message("Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected)", vec![]),
                    429 => ApiError::too_many_requests("Too many requests, please try again later (injected)"),
                    503 => ApiError::unavailable("The server is currently unable to handle the request (injected)"),
                    _ => ApiError::internal("Internal error occurred: injected fault"),
                };
                return Ok(response::injected_error_response(&e));
            }
        }
        // Authentication, then authorization of what the path asks (kube-apiserver's filters).
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let query = request::parse_query(req.uri().query());
        let info = RequestInfo::new(req.method().as_str(), req.uri().path(), &query);
        let user = match self.core.authenticate(authorization) {
            Ok(u) => u,
            Err(e) => {
                self.core
                    .auth
                    .audit
                    .record(&UserInfo::default(), &info, false, e.code, &e.message);
                return Ok(error_response(&e));
            }
        };
        // `kubectl --as`: act as another user if this one may impersonate them.
        let user = if crate::handlers::impersonation::requested(req.headers()) {
            match self.core.impersonate(user.clone(), req.headers()) {
                Ok(u) => u,
                Err(e) => {
                    self.core.auth.audit.record(&user, &info, false, e.code, &e.message);
                    return Ok(error_response(&e));
                }
            }
        } else {
            user
        };
        // API Priority and Fairness sits between impersonation and authorization.
        let flow = self.fairness.admit(&user, &info, std::time::Instant::now());
        if let fairness::Verdict::Reject(class, retry_after) = &flow {
            let allowed = self.core.authorize(&user, &info).allowed;
            self.core
                .auth
                .audit
                .record(&user, &info, allowed, 429, fairness::MESSAGE);
            return Ok(fairness::too_many_requests(class, *retry_after));
        }
        let decision = self.core.authorize(&user, &info);
        if !decision.allowed {
            let e = crate::auth::forbidden(&user, &info, &decision.reason);
            self.core.auth.audit.record(&user, &info, false, e.code, &e.message);
            return Ok(response::forbidden_response(&e));
        }
        let ctx = Arc::new(self.request_context(user, &info, req.method()));
        let mut resp = match self.route(req, &id, &ctx).await {
            Ok(r) => {
                self.core
                    .auth
                    .audit
                    .record(&ctx.user, &info, true, r.status().as_u16(), "");
                r
            }
            Err(e) => {
                self.core.auth.audit.record(&ctx.user, &info, true, e.code, &e.message);
                error_response(&e)
            }
        };
        if let fairness::Verdict::Admit(class) = &flow {
            fairness::set_headers(&mut resp, class);
        }
        Ok(resp)
    }

    /// What a write needs to know about its request: the user and the admission checks it
    /// gets — escalation prevention for writes of RBAC objects by users RBAC restricts (against
    /// the RBAC state the request was authorized with), and the admission policies with the
    /// namespace they may select on. Both are read here, before the write (which runs with the
    /// store locked).
    fn request_context(&self, user: UserInfo, info: &RequestInfo, method: &Method) -> RequestContext {
        let write = method != Method::GET && method != Method::HEAD;
        let mut checks: Vec<Arc<dyn Check>> = Vec::new();
        if write && info.api_group == crate::auth::rbac::GROUP && !user.in_group(crate::auth::MASTERS) {
            checks.push(Arc::new(Escalation { rbac: self.core.rbac() }));
        }
        let policies = (write && info.resource_request)
            .then(|| self.policies.snapshot(&self.core.store))
            .filter(|p| !p.is_empty());
        if let Some(snapshot) = policies {
            let namespace_object = (!info.namespace.is_empty())
                .then(|| self.core.store.get(&namespaces_key(), "", &info.namespace))
                .flatten()
                .map(|n| {
                    let mut v = n.value();
                    if let Some(m) = v.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
                        m.remove("managedFields");
                    }
                    v
                });
            checks.push(Arc::new(Admission {
                snapshot,
                namespace_object,
            }));
        }
        let create_refused = (info.resource_request && info.verb == "patch")
            .then(|| {
                let create = RequestInfo {
                    verb: "create".into(),
                    ..info.clone()
                };
                let d = self.core.authorize(&user, &create);
                // `withAuthorization` in kube-apiserver's patch handler: the RBAC authorizer's
                // refusal of `create`, with the object's name.
                (!d.allowed).then(|| crate::auth::forbidden(&user, &create, &d.reason))
            })
            .flatten();
        RequestContext {
            user,
            checks,
            create_refused,
        }
    }
}
