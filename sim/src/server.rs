//! The HTTP front: routing of Kubernetes REST paths, content negotiation (JSON, YAML, Table),
//! list and watch, and the fault-injection gate every request passes.
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::api::{Core, DeleteOpts, FieldValidation, Opts, PatchType, Reply, Sub};
use crate::error::ApiError;
use crate::faults::{Faults, Verdict};
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, EventKind, Stored};
use crate::{openapi, table};

/// Largest request body accepted, as kube-apiserver's 3 MiB limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub type Body = BoxBody<Bytes, Infallible>;

pub struct Server {
    pub core: Arc<Core>,
    pub faults: Arc<Faults>,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const TABLE_CT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn json_response(code: u16, v: &Value, content_type: &str, warnings: &[String]) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let mut b = Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type);
    for w in warnings {
        b = b.header("Warning", format!("299 - {w:?}"));
    }
    b.body(full(bytes)).unwrap_or_else(|_| Response::new(full("")))
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), "application/json", &[])
}

fn raw_response(code: u16, raw: Bytes) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(raw))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Who is calling: bearer token or User-Agent (fault rules match either).
fn identity<B>(req: &Request<B>) -> String {
    let ua = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    format!("{ua} token={token}")
}

/// A parsed resource path.
struct Target {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

impl Server {
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let id = identity(&req);
        self.core.count_request(&id, req.method().as_str());
        if req.method() != Method::GET {
            self.core.log_write(&id, req.method().as_str(), req.uri().path());
        }
        // Fault gate: partitions and pauses hold the request; latency delays it; error rates fail it.
        if self.faults.is_held(&id) {
            self.faults.wait_released(&id).await;
        }
        match self.faults.verdict(&id) {
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
                return Ok(error_response(&e));
            }
        }
        let resp = match self.route(req, &id).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
        Ok(resp)
    }

    async fn route(self: &Arc<Self>, req: Request<Incoming>, id: &str) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().to_string();
        let query = parse_query(req.uri().query());
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let method = req.method().clone();
        let get_only = |r: Result<Response<Body>, ApiError>| {
            if method == Method::GET {
                r
            } else {
                Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ))
            }
        };
        match segs.as_slice() {
            ["version"] => get_only(Ok(json_response(
                200,
                &json!({
                    "major": "1", "minor": "32", "gitVersion": "v1.32.0-baton-sim", "gitCommit": "baton-sim",
                    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"
                }),
                "application/json",
                &[],
            ))),
            ["healthz"] | ["readyz"] | ["livez"] => get_only(Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(full("ok"))
                .unwrap_or_else(|_| Response::new(full("ok"))))),
            ["api"] => get_only(Ok(self.discovery(true, &accept))),
            ["apis"] => get_only(Ok(self.discovery(false, &accept))),
            ["api", "v1"] => get_only(
                self.core
                    .registry()
                    .api_resource_list("", "v1")
                    .map(|v| json_response(200, &v, "application/json", &[]))
                    .ok_or_else(ApiError::no_route),
            ),
            ["apis", g] => get_only(
                self.core
                    .registry()
                    .api_group(g)
                    .map(|v| json_response(200, &v, "application/json", &[]))
                    .ok_or_else(ApiError::no_route),
            ),
            ["apis", g, v] => get_only(
                self.core
                    .registry()
                    .api_resource_list(g, v)
                    .map(|v| json_response(200, &v, "application/json", &[]))
                    .ok_or_else(ApiError::no_route),
            ),
            ["openapi", "v2"] => Err(ApiError::no_route()),
            ["openapi", "v3"] => get_only(Ok(json_response(
                200,
                &openapi::index(&self.core.registry()),
                "application/json",
                &[],
            ))),
            ["openapi", "v3", rest @ ..] => {
                let gv = rest.join("/");
                get_only(
                    openapi::group_version(&self.core.registry(), &gv)
                        .map(|v| json_response(200, &v, "application/json", &[]))
                        .ok_or_else(ApiError::no_route),
                )
            }
            _ => {
                let target = self.resolve(&segs)?;
                self.resource_request(req, target, query, &accept, id).await
            }
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
        let t = match rest {
            // /api/v1/namespaces/{name}/status|finalize is the namespace object itself.
            ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => Target {
                rt: lookup("namespaces")?,
                namespace: None,
                name: Some(name.to_string()),
                sub: Some(sub.to_string()),
            },
            ["namespaces", ns, plural, tail @ ..] => {
                let rt = lookup(plural)?;
                if !rt.namespaced {
                    return Err(ApiError::no_route());
                }
                match tail {
                    [] => Target {
                        rt,
                        namespace: Some(ns.to_string()),
                        name: None,
                        sub: None,
                    },
                    [name] => Target {
                        rt,
                        namespace: Some(ns.to_string()),
                        name: Some(name.to_string()),
                        sub: None,
                    },
                    [name, sub] => Target {
                        rt,
                        namespace: Some(ns.to_string()),
                        name: Some(name.to_string()),
                        sub: Some(sub.to_string()),
                    },
                    _ => return Err(ApiError::no_route()),
                }
            }
            [plural] => Target {
                rt: lookup(plural)?,
                namespace: None,
                name: None,
                sub: None,
            },
            [plural, name] => {
                let rt = lookup(plural)?;
                if rt.namespaced {
                    return Err(ApiError::no_route());
                }
                Target {
                    rt,
                    namespace: None,
                    name: Some(name.to_string()),
                    sub: None,
                }
            }
            [plural, name, sub] => {
                let rt = lookup(plural)?;
                if rt.namespaced {
                    return Err(ApiError::no_route());
                }
                Target {
                    rt,
                    namespace: None,
                    name: Some(name.to_string()),
                    sub: Some(sub.to_string()),
                }
            }
            _ => return Err(ApiError::no_route()),
        };
        Ok(t)
    }

    async fn read_body(req: Request<Incoming>) -> Result<(Bytes, String), ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
        {
            if len > MAX_BODY {
                return Err(ApiError::too_large(
                    "the server has received a request that is too large",
                ));
            }
        }
        let body = Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    ApiError::too_large("the server has received a request that is too large")
                } else {
                    ApiError::bad_request(format!("reading request body: {e}"))
                }
            })?
            .to_bytes();
        Ok((body, ct))
    }

    fn decode(body: &[u8], ct: &str, yaml_ok: bool) -> Result<Value, ApiError> {
        let media = ct.split(';').next().unwrap_or("").trim();
        let v: Value = match media {
            "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the object provided is unrecognized: couldn't get version/kind; json parse error: {e}"
                ))
            })?,
            "application/yaml" | "application/apply-patch+yaml" if yaml_ok || media == "application/yaml" => {
                serde_saphyr::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
            }
            // client-go's typed clients (Helm's release storage among them) send protobuf.
            crate::protobuf::MEDIA_TYPE => crate::protobuf::decode(body)?,
            other => return Err(ApiError::unsupported_media_type(other)),
        };
        Ok(v)
    }

    fn write_opts(query: &HashMap<String, String>, id: &str, verb: &str) -> Result<Opts, ApiError> {
        let dry_run = match query.get("dryRun").map(String::as_str) {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                )))
            }
        };
        let validation = match query.get("fieldValidation").map(String::as_str) {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                )))
            }
        };
        let force = match query.get("force").map(String::as_str) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(ApiError::bad_request(format!("force: Invalid value: {other:?}"))),
        };
        if force && verb != "apply" {
            return Err(ApiError::bad_request(
                "force: Invalid value: true: may not be specified for non-apply patch",
            ));
        }
        let field_manager = match query.get("fieldManager") {
            Some(m) if !m.is_empty() => {
                if m.len() > 128 {
                    return Err(ApiError::bad_request(
                        "fieldManager: Too long: may not be more than 128 bytes",
                    ));
                }
                m.clone()
            }
            _ => {
                // As kube-apiserver: the manager defaults to the client's User-Agent program name.
                let ua = id.split_whitespace().next().unwrap_or("unknown");
                ua.split('/').next().unwrap_or("unknown").to_string()
            }
        };
        Ok(Opts {
            dry_run,
            field_manager,
            validation,
            force,
        })
    }

    async fn resource_request(
        self: &Arc<Self>,
        req: Request<Incoming>,
        t: Target,
        query: HashMap<String, String>,
        accept: &str,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let method = req.method().clone();
        let ns = t.namespace.clone().unwrap_or_default();
        let rt = t.rt.clone();
        let sub = match t.sub.as_deref() {
            None => Sub::Main,
            Some("status") if rt.status_subresource || (rt.plural == "namespaces" && rt.group.is_empty()) => {
                Sub::Status
            }
            Some("scale") if rt.scale.is_some() => Sub::Scale,
            Some("finalize") if rt.plural == "namespaces" => Sub::Main,
            Some(_) => return Err(ApiError::no_route()),
        };
        let wants_table = accept.contains("as=Table");
        match (method.clone(), t.name.clone()) {
            (Method::GET, None) => {
                let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
                if watch {
                    return self.watch(rt, t.namespace, &query, wants_table, id).await;
                }
                self.list(&rt, t.namespace.as_deref(), &query, wants_table)
            }
            (Method::GET, Some(name)) => {
                let obj = self.core.get(&rt, &ns, &name)?;
                match sub {
                    Sub::Scale => Ok(json_response(
                        200,
                        &self.core.scale_of(&rt, &obj.value())?,
                        "application/json",
                        &[],
                    )),
                    _ if wants_table => {
                        let v = obj.value();
                        let tbl = self.table_for(
                            &rt,
                            &[v],
                            &obj.rv.to_string(),
                            None,
                            query.get("includeObject").map(String::as_str).unwrap_or("Metadata"),
                        );
                        Ok(json_response(200, &tbl, TABLE_CT, &[]))
                    }
                    _ => Ok(raw_response(200, obj.raw.clone())),
                }
            }
            (Method::POST, None) => {
                let opts = Self::write_opts(&query, id, "create")?;
                let (body, ct) = Self::read_body(req).await?;
                let v = Self::decode(&body, &ct, true)?;
                let r = self
                    .core
                    .create(&rt, t.namespace.as_deref().or(Some("default")), v, &opts)?;
                Ok(reply(r))
            }
            (Method::PUT, Some(name)) => {
                let opts = Self::write_opts(&query, id, "update")?;
                let (body, ct) = Self::read_body(req).await?;
                let v = Self::decode(&body, &ct, true)?;
                if sub == Sub::Scale {
                    let cur = self.core.get(&rt, &ns, &name)?.value();
                    return Ok(reply(self.core.write_scale(&rt, &ns, &name, &cur, &v, &opts)?));
                }
                Ok(reply(self.core.update(&rt, &ns, &name, v, sub, &opts)?))
            }
            (Method::PATCH, Some(name)) => {
                let ct = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let pt = match ct.split(';').next().unwrap_or("").trim() {
                    "application/merge-patch+json" => PatchType::Merge,
                    "application/json-patch+json" => PatchType::Json,
                    "application/strategic-merge-patch+json" => PatchType::Strategic,
                    "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchType::Apply,
                    other => return Err(ApiError::unsupported_media_type(other)),
                };
                let opts = Self::write_opts(&query, id, if pt == PatchType::Apply { "apply" } else { "patch" })?;
                let (body, _) = Self::read_body(req).await?;
                let v: Value = if pt == PatchType::Apply {
                    serde_saphyr::from_slice(&body)
                        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
                } else {
                    serde_json::from_slice(&body)
                        .map_err(|e| ApiError::bad_request(format!("couldn't get patch: invalid JSON: {e}")))?
                };
                Ok(reply(self.core.patch(&rt, &ns, &name, pt, v, sub, &opts)?))
            }
            (Method::DELETE, Some(name)) => {
                if sub != Sub::Main {
                    return Err(ApiError::method_not_allowed(
                        "the server does not allow this method on the requested resource",
                    ));
                }
                let d = Self::delete_opts(req, &query).await?;
                Ok(reply(self.core.delete(&rt, &ns, &name, &d)?))
            }
            (Method::DELETE, None) => {
                let d = Self::delete_opts(req, &query).await?;
                let (items, _) = self.select(&rt, t.namespace.as_deref(), &query)?;
                let mut deleted = Vec::new();
                for obj in items {
                    if let Ok(r) = self.core.delete(&rt, &obj.namespace, &obj.name, &d) {
                        deleted.push(r.body);
                    }
                }
                let list = json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": self.core.store.current_rv().to_string()}, "items": deleted});
                Ok(json_response(200, &list, "application/json", &[]))
            }
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
    }

    async fn delete_opts(req: Request<Incoming>, query: &HashMap<String, String>) -> Result<DeleteOpts, ApiError> {
        let (body, ct) = Self::read_body(req).await?;
        let mut d = DeleteOpts::default();
        if !body.is_empty() {
            let v = Self::decode(&body, &ct, true)?;
            d.propagation = v.get("propagationPolicy").and_then(Value::as_str).map(str::to_string);
            d.grace_period_seconds = v.get("gracePeriodSeconds").and_then(Value::as_i64);
            d.precondition_uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            d.precondition_rv = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(Value::Array(dr)) = v.get("dryRun") {
                d.dry_run = dr.iter().any(|x| x.as_str() == Some("All"));
            }
        }
        if let Some(p) = query.get("propagationPolicy") {
            d.propagation = Some(p.clone());
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            d.grace_period_seconds = Some(
                g.parse()
                    .map_err(|_| ApiError::bad_request(format!("gracePeriodSeconds: invalid value {g:?}")))?,
            );
        }
        if query.get("dryRun").map(String::as_str) == Some("All") {
            d.dry_run = true;
        }
        match d.propagation.as_deref() {
            None | Some("Background" | "Foreground" | "Orphan") => Ok(d),
            Some(other) => Err(ApiError::bad_request(format!("propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""))),
        }
    }

    fn selectors(
        rt: &ResourceType,
        query: &HashMap<String, String>,
    ) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let ls = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fs = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        for f in fs.fields() {
            if !rt.supports_field(&f) {
                return Err(ApiError::bad_request(format!("field label not supported: {f}")));
            }
        }
        Ok((ls, fs))
    }

    fn select(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        query: &HashMap<String, String>,
    ) -> Result<(Vec<Arc<Stored>>, u64), ApiError> {
        let (ls, fs) = Self::selectors(rt, query)?;
        let (items, rv) = self.core.store.list(&rt.key(), ns);
        let items = items.into_iter().filter(|o| matches_sel(o, &ls, &fs)).collect();
        Ok((items, rv))
    }

    fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        query: &HashMap<String, String>,
        wants_table: bool,
    ) -> Result<Response<Body>, ApiError> {
        let (mut items, mut rv) = self.select(rt, ns, query)?;
        // Continue tokens carry the snapshot RV and the last key returned.
        if let Some(tok) = query.get("continue").filter(|c| !c.is_empty()) {
            let decoded = decode_continue(tok)
                .ok_or_else(|| ApiError::bad_request("continue key is not valid: illegal base64 data"))?;
            rv = decoded.0;
            items.retain(|o| (o.namespace.as_str(), o.name.as_str()) > (decoded.1.as_str(), decoded.2.as_str()));
        }
        let limit = match query.get("limit") {
            Some(l) if !l.is_empty() => l
                .parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("limit: invalid value {l:?}")))?,
            _ => 0,
        };
        let mut cont = None;
        let mut remaining = 0;
        if limit > 0 && items.len() > limit {
            remaining = items.len() - limit;
            items.truncate(limit);
            if let Some(last) = items.last() {
                cont = Some(encode_continue(rv, &last.namespace, &last.name));
            }
        }
        if wants_table {
            let values: Vec<Value> = items.iter().map(|o| o.value()).collect();
            let tbl = self.table_for(
                rt,
                &values,
                &rv.to_string(),
                cont.as_deref(),
                query.get("includeObject").map(String::as_str).unwrap_or("Metadata"),
            );
            return Ok(json_response(200, &tbl, TABLE_CT, &[]));
        }
        // Assemble the list from stored bytes: no re-serialisation of items.
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if let Some(c) = &cont {
            meta["continue"] = json!(c);
            meta["remainingItemCount"] = json!(remaining);
        }
        let head = format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
            rt.kind,
            rt.api_version(),
            meta
        );
        let mut out = Vec::with_capacity(head.len() + items.iter().map(|i| i.raw.len() + 1).sum::<usize>() + 2);
        out.extend_from_slice(head.as_bytes());
        for (i, o) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&o.raw);
        }
        out.extend_from_slice(b"]}");
        Ok(raw_response(200, Bytes::from(out)))
    }

    fn table_for(&self, rt: &ResourceType, objs: &[Value], rv: &str, cont: Option<&str>, include: &str) -> Value {
        let cols = match &rt.printer_columns {
            Some(pc) if rt.custom => table::crd_columns(pc),
            None if rt.custom => table::crd_columns(&json!([])),
            _ => table::builtin_columns(&rt.kind),
        };
        let now = jiff::Timestamp::now();
        let rows: Vec<(Vec<Value>, &Value)> = objs
            .iter()
            .map(|o| (table::cells(&rt.kind, &cols, o, now), o))
            .collect();
        table::table(&cols, &rows, rv, cont, include)
    }

    async fn watch(
        self: &Arc<Self>,
        rt: Arc<ResourceType>,
        ns: Option<String>,
        query: &HashMap<String, String>,
        wants_table: bool,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let (ls, fs) = Self::selectors(&rt, query)?;
        let timeout = match query.get("timeoutSeconds") {
            Some(t) if !t.is_empty() => {
                Some(Duration::from_secs(t.parse().map_err(|_| {
                    ApiError::bad_request(format!("timeoutSeconds: invalid value {t:?}"))
                })?))
            }
            _ => None,
        };
        let bookmarks = query.get("allowWatchBookmarks").is_some_and(|v| v == "true");
        let send_initial = query.get("sendInitialEvents").is_some_and(|v| v == "true");
        let rv_param = query.get("resourceVersion").cloned().unwrap_or_default();
        let key = rt.key();
        let (initial, start_rv, rx) = if rv_param.is_empty() || rv_param == "0" || send_initial {
            let (items, rv, rx) = self.core.store.snapshot_and_watch(&key);
            (Some(items), rv, rx)
        } else {
            let rv: u64 = rv_param
                .parse()
                .map_err(|_| ApiError::bad_request(format!("resourceVersion: Invalid value: {rv_param:?}")))?;
            match self.core.store.watch_from(rv) {
                Ok((past, rx)) => {
                    let (tx, body) = channel_body();
                    let me = self.clone();
                    let ctx = WatchCtx {
                        rt,
                        ns,
                        ls,
                        fs,
                        table: wants_table,
                        bookmarks,
                        timeout,
                        id: id.to_string(),
                        last_rv: rv,
                    };
                    tokio::spawn(async move { me.pump(ctx, past, None, false, rx, tx).await });
                    return Ok(watch_response(body, wants_table));
                }
                Err(oldest) => {
                    let e = ApiError::gone(format!("too old resource version: {rv} ({oldest})"));
                    let ev = json!({"type": "ERROR", "object": e.to_status()});
                    let mut line = serde_json::to_vec(&ev).unwrap_or_default();
                    line.push(b'\n');
                    return Ok(Response::builder()
                        .status(200)
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(full(line))
                        .unwrap_or_else(|_| Response::new(full(""))));
                }
            }
        };
        let (tx, body) = channel_body();
        let me = self.clone();
        let ctx = WatchCtx {
            rt,
            ns,
            ls,
            fs,
            table: wants_table,
            bookmarks,
            timeout,
            id: id.to_string(),
            last_rv: start_rv,
        };
        tokio::spawn(async move { me.pump(ctx, Vec::new(), initial, send_initial, rx, tx).await });
        Ok(watch_response(body, wants_table))
    }

    fn encode_event(&self, ctx: &WatchCtx, kind: &str, obj: &Stored) -> Bytes {
        let mut out = Vec::with_capacity(obj.raw.len() + 32);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        if ctx.table {
            let v = obj.value();
            let tbl = self.table_for(&ctx.rt, &[v], &obj.rv.to_string(), None, "Object");
            out.extend_from_slice(&serde_json::to_vec(&tbl).unwrap_or_default());
        } else {
            out.extend_from_slice(&obj.raw);
        }
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    fn bookmark(&self, ctx: &WatchCtx, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": ctx.last_rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let ev = json!({"type": "BOOKMARK", "object": {"kind": ctx.rt.kind, "apiVersion": ctx.rt.api_version(), "metadata": meta}});
        let mut v = serde_json::to_vec(&ev).unwrap_or_default();
        v.push(b'\n');
        Bytes::from(v)
    }

    /// Translate an event for one watcher: selectors turn entering/leaving into ADDED/DELETED.
    fn translate(ctx: &WatchCtx, ev: &Event) -> Option<&'static str> {
        if ev.key != ctx.rt.key() {
            return None;
        }
        if let Some(ns) = &ctx.ns {
            if &ev.obj.namespace != ns {
                return None;
            }
        }
        let now = matches_sel(&ev.obj, &ctx.ls, &ctx.fs);
        let before = ev.prev.as_ref().map(|p| matches_sel(p, &ctx.ls, &ctx.fs));
        match (ev.kind, before, now) {
            (EventKind::Added, _, true) => Some("ADDED"),
            (EventKind::Deleted, Some(true), _) | (EventKind::Deleted, None, true) => Some("DELETED"),
            (EventKind::Modified, Some(true), true) => Some("MODIFIED"),
            (EventKind::Modified, Some(false) | None, true) => Some("ADDED"),
            (EventKind::Modified, Some(true), false) => Some("DELETED"),
            _ => None,
        }
    }

    async fn pump(
        self: Arc<Self>,
        mut ctx: WatchCtx,
        past: Vec<Arc<Event>>,
        initial: Option<Vec<Arc<Stored>>>,
        initial_end_bookmark: bool,
        mut rx: broadcast::Receiver<Arc<Event>>,
        tx: mpsc::Sender<Bytes>,
    ) {
        self.core.open_watches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _guard = WatchGuard(self.core.clone());
        let deadline = ctx.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut drops = self.faults.watch_drops();
        drops.borrow_and_update();
        let mut shutdown = self.shutdown.clone();
        if let Some(items) = initial {
            for o in items {
                let ns_ok = ctx.ns.as_ref().is_none_or(|ns| &o.namespace == ns);
                if ns_ok
                    && matches_sel(&o, &ctx.ls, &ctx.fs)
                    && tx.send(self.encode_event(&ctx, "ADDED", &o)).await.is_err()
                {
                    return;
                }
            }
            if initial_end_bookmark && tx.send(self.bookmark(&ctx, true)).await.is_err() {
                return;
            }
        }
        for ev in past {
            ctx.last_rv = ev.rv;
            if let Some(kind) = Self::translate(&ctx, &ev) {
                if tx.send(self.encode_event(&ctx, kind, &ev.obj)).await.is_err() {
                    return;
                }
            }
        }
        let mut tick = tokio::time::interval(self.bookmark_interval);
        tick.tick().await;
        loop {
            let sleep_until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= ctx.last_rv {
                            continue;
                        }
                        if self.faults.is_held(&ctx.id) {
                            // Partitioned: the client hears nothing until released.
                            self.faults.wait_released(&ctx.id).await;
                        }
                        ctx.last_rv = ev.rv;
                        if let Some(kind) = Self::translate(&ctx, &ev) {
                            if tx.send(self.encode_event(&ctx, kind, &ev.obj)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // Too slow a reader: end the watch; the client resumes from its last RV.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if ctx.bookmarks => {
                    if !self.faults.is_held(&ctx.id) && tx.send(self.bookmark(&ctx, false)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(sleep_until) => {
                    if deadline.is_some() {
                        return;
                    }
                }
                r = drops.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let target = drops.borrow().1.clone();
                    if target.is_none_or(|c| ctx.id.contains(&c)) {
                        return;
                    }
                }
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
        }
    }
}

/// Counts a watch as open for as long as it streams.
struct WatchGuard(Arc<Core>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

struct WatchCtx {
    rt: Arc<ResourceType>,
    ns: Option<String>,
    ls: LabelSelector,
    fs: FieldSelector,
    table: bool,
    bookmarks: bool,
    timeout: Option<Duration>,
    id: String,
    last_rv: u64,
}

fn matches_sel(o: &Stored, ls: &LabelSelector, fs: &FieldSelector) -> bool {
    (ls.is_empty() || ls.matches(&o.label_map())) && (fs.is_empty() || fs.matches(&|f: &str| o.field(f)))
}

fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    (tx, StreamBody::new(stream).boxed())
}

fn watch_response(body: Body, table: bool) -> Response<Body> {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, if table { TABLE_CT } else { "application/json" })
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body)
        .unwrap_or_else(|_| Response::new(full("")))
}

fn reply(r: Reply) -> Response<Body> {
    let code = StatusCode::from_u16(r.code).map(|c| c.as_u16()).unwrap_or(200);
    if r.body.get("kind").and_then(Value::as_str) == Some("Status") {
        return json_response(code, &r.body, "application/json", &r.warnings);
    }
    json_response(code, &r.body, "application/json", &r.warnings)
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!([rv, ns, name])).unwrap_or_default())
}

fn decode_continue(tok: &str) -> Option<(u64, String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tok).ok()?;
    let v: (u64, String, String) = serde_json::from_slice(&raw).ok()?;
    Some(v)
}
