//! Requests on a resource path, dispatched by HTTP method: get, list and watch, create,
//! update, patch, delete and delete-collection.

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::admission::RequestContext;
use crate::error::ApiError;
use crate::handlers::{PatchType, Sub};
use crate::resources::ResourceType;

use super::negotiate::{needs_render, negotiate, Output, Shape};
use super::response::{json_response, raw_response};
use super::routes::Target;
use super::{Body, Server};

/// A request on a resource path, resolved: what each method's handler works from.
struct Call<'a> {
    rt: &'a ResourceType,
    /// The namespace in the path, if any.
    namespace: Option<&'a str>,
    /// The namespace in the path, or "".
    ns: &'a str,
    sub: Sub,
    query: &'a HashMap<String, String>,
    out: Output,
    id: &'a str,
    ctx: &'a Arc<RequestContext>,
}

const METHOD_NOT_ALLOWED: &str = "the server does not allow this method on the requested resource";

/// The endpoint `sub` names on `rt`; a subresource `rt` lacks has no route.
fn subresource(rt: &ResourceType, sub: Option<&str>) -> Result<Sub, ApiError> {
    Ok(match sub {
        None => Sub::Main,
        Some("status") if rt.status_subresource || (rt.plural == "namespaces" && rt.group.is_empty()) => Sub::Status,
        Some("scale") if rt.scale.is_some() => Sub::Scale,
        Some("finalize") if rt.plural == "namespaces" => Sub::Main,
        Some("ephemeralcontainers") if rt.plural == "pods" && rt.group.is_empty() => Sub::EphemeralContainers,
        Some(_) => return Err(ApiError::no_route()),
    })
}

/// The patch type a PATCH's Content-Type names.
fn patch_type(content_type: &str) -> Result<PatchType, ApiError> {
    match content_type.split(';').next().unwrap_or("").trim() {
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
        _ => Err(ApiError::unsupported_patch_type()),
    }
}

impl Server {
    pub(super) async fn resource_request(
        self: &Arc<Self>,
        req: Request<Incoming>,
        t: Target,
        query: HashMap<String, String>,
        accept: &str,
        id: &str,
        ctx: &Arc<RequestContext>,
    ) -> Result<Response<Body>, ApiError> {
        let method = req.method().clone();
        let rt = t.rt.clone();
        if rt.create_only || (rt.is_service_accounts() && t.sub.as_deref() == Some("token")) {
            return self.create_only(req, &t, accept, ctx).await;
        }
        let sub = subresource(&rt, t.sub.as_deref())?;
        let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        let shape = match (&method, &t.name) {
            (&Method::GET, None) if watch => Shape::Watch,
            (&Method::GET, None) | (&Method::DELETE, None) => Shape::List,
            _ => Shape::Object,
        };
        let out = negotiate(accept, shape, crate::protobuf::encodable(&rt))?;
        if shape == Shape::Watch {
            return self.watch(rt, t.namespace, &query, out, id).await;
        }
        let c = Call {
            rt: &rt,
            namespace: t.namespace.as_deref(),
            ns: t.namespace.as_deref().unwrap_or_default(),
            sub,
            query: &query,
            out,
            id,
            ctx,
        };
        match (method, t.name.as_deref()) {
            (Method::GET, None) => self.list(&rt, c.namespace, &query, out),
            (Method::GET, Some(name)) => self.get_object(&c, name),
            (Method::POST, None) => self.create_object(req, &c).await,
            (Method::PUT, Some(name)) => self.update_object(req, &c, name).await,
            (Method::PATCH, Some(name)) => self.patch_object(req, &c, name).await,
            (Method::DELETE, Some(name)) => {
                if sub != Sub::Main {
                    return Err(ApiError::method_not_allowed(METHOD_NOT_ALLOWED));
                }
                let d = Self::delete_opts(req, &query, ctx).await?;
                Ok(self.render_reply(&rt, self.core.delete(&rt, c.ns, name, &d)?, out))
            }
            (Method::DELETE, None) => self.delete_collection(req, &c).await,
            _ => Err(ApiError::method_not_allowed(METHOD_NOT_ALLOWED)),
        }
    }

    /// GET of one object (or its scale): stored bytes as they are unless the answer needs
    /// rendering (another view, a Table, protobuf).
    fn get_object(&self, c: &Call<'_>, name: &str) -> Result<Response<Body>, ApiError> {
        let rt = c.rt;
        let obj = self.core.get(rt, c.ns, name)?;
        match c.sub {
            Sub::Scale => Ok(json_response(
                200,
                &self.core.scale_of(rt, &obj.value())?,
                "application/json",
                &[],
            )),
            _ if needs_render(rt, c.out) => {
                let include = c.query.get("includeObject").map(String::as_str).unwrap_or("Metadata");
                let v = crate::resources::views::to_view(rt, obj.value());
                Ok(self.render_object(rt, v, c.out, include, 200, &[]))
            }
            _ => Ok(raw_response(200, obj.raw.clone())),
        }
    }

    /// POST: create in the path's namespace (`default` for a namespaced kind without one).
    async fn create_object(&self, req: Request<Incoming>, c: &Call<'_>) -> Result<Response<Body>, ApiError> {
        self.core.refuse_create(c.rt)?;
        let opts = Self::write_opts(c.query, c.id, "create", c.ctx)?;
        let (body, ct) = Self::read_body(req).await?;
        let v = Self::decode(&body, &ct, true, &c.rt.kind)?;
        let r = self.core.create(c.rt, c.namespace.or(Some("default")), v, &opts)?;
        Ok(self.render_reply(c.rt, r, c.out))
    }

    /// PUT of an object, its status or its scale (answered as JSON).
    async fn update_object(
        &self,
        req: Request<Incoming>,
        c: &Call<'_>,
        name: &str,
    ) -> Result<Response<Body>, ApiError> {
        let (rt, ns) = (c.rt, c.ns);
        let opts = Self::write_opts(c.query, c.id, "update", c.ctx)?;
        let (body, ct) = Self::read_body(req).await?;
        let kind = if c.sub == Sub::Scale {
            "Scale"
        } else {
            c.rt.kind.as_str()
        };
        let v = Self::decode(&body, &ct, true, kind)?;
        if c.sub == Sub::Scale {
            let cur = self.core.get(rt, ns, name)?.value();
            let r = self.core.write_scale(rt, ns, name, &cur, &v, &opts)?;
            return Ok(self.render_reply(rt, r, Output::Json));
        }
        Ok(self.render_reply(rt, self.core.update(rt, ns, name, v, c.sub, &opts)?, c.out))
    }

    /// PATCH in any of the four patch types; apply bodies may be YAML.
    async fn patch_object(&self, req: Request<Incoming>, c: &Call<'_>, name: &str) -> Result<Response<Body>, ApiError> {
        let pt = patch_type(super::request::header_str(&req, header::CONTENT_TYPE))?;
        let verb = if pt == PatchType::Apply { "apply" } else { "patch" };
        let opts = Self::write_opts(c.query, c.id, verb, c.ctx)?;
        let (body, _) = Self::read_body(req).await?;
        let v: Value = if pt == PatchType::Apply {
            Self::parse_yaml(&body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                // Go's encoding/json names a truncated document so; other syntax errors
                // keep serde_json's words.
                let what = if e.is_eof() {
                    "unexpected end of JSON input".to_string()
                } else {
                    e.to_string()
                };
                ApiError::bad_request(format!("error decoding patch: {what}"))
            })?
        };
        let r = self.core.patch(c.rt, c.ns, name, pt, v, c.sub, &opts)?;
        if c.sub == Sub::Scale {
            return Ok(self.render_reply(c.rt, r, Output::Json));
        }
        Ok(self.render_reply(c.rt, r, c.out))
    }

    /// DELETE of a collection: every selected object that could be deleted, as a list.
    async fn delete_collection(&self, req: Request<Incoming>, c: &Call<'_>) -> Result<Response<Body>, ApiError> {
        let rt = c.rt;
        let d = Self::delete_opts(req, c.query, c.ctx).await?;
        let (items, _) = self.select(rt, c.namespace, c.query)?;
        let mut deleted = Vec::new();
        for obj in items {
            if let Ok(w) = self.core.delete_written(rt, &obj.namespace, &obj.name, &d) {
                deleted.push(crate::resources::views::to_view(rt, w.obj.value()));
            }
        }
        let list = json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": self.core.store.current_rv().to_string()}, "items": deleted});
        Ok(json_response(200, &list, "application/json", &[]))
    }

    /// The create-only APIs: the reviews and `serviceaccounts/{name}/token` (TokenRequest).
    async fn create_only(
        &self,
        req: Request<Incoming>,
        t: &Target,
        accept: &str,
        ctx: &Arc<RequestContext>,
    ) -> Result<Response<Body>, ApiError> {
        let named = t.name.is_some();
        let token = t.sub.as_deref() == Some("token");
        if req.method() != Method::POST || named != token {
            return Err(ApiError::method_not_allowed(METHOD_NOT_ALLOWED));
        }
        let (body, ct) = Self::read_body(req).await?;
        let v = Self::decode(&body, &ct, true, &t.rt.kind)?;
        let ns = t.namespace.as_deref().unwrap_or("");
        let reply = match &t.name {
            Some(name) => self.core.token_request(ns, name, &v)?,
            None => self.core.review(&t.rt.plural, ns, v, &ctx.user)?,
        };
        // Protobuf when asked first (kubectl's typed clients), else JSON.
        let protobuf = accept
            .split(',')
            .next()
            .is_some_and(|c| c.trim().starts_with(crate::protobuf::MEDIA_TYPE));
        Ok(if protobuf {
            super::response::protobuf_response(reply.code, &t.rt, &reply.body, &[])
        } else {
            json_response(reply.code, &reply.body, "application/json", &[])
        })
    }
}
