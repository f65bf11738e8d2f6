//! Requests on a resource path, dispatched by HTTP method: get, list and watch, create,
//! update, patch, delete and delete-collection.

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::api::{PatchType, Sub};
use crate::auth::RequestContext;
use crate::error::ApiError;

use super::negotiate::{needs_render, negotiate, Shape};
use super::response::{json_response, raw_response};
use super::routes::Target;
use super::{Body, Server};

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
        let ns = t.namespace.clone().unwrap_or_default();
        let rt = t.rt.clone();
        if rt.create_only || (rt.is_service_accounts() && t.sub.as_deref() == Some("token")) {
            return self.create_only(req, &t, accept, ctx).await;
        }
        let sub = match t.sub.as_deref() {
            None => Sub::Main,
            Some("status") if rt.status_subresource || (rt.plural == "namespaces" && rt.group.is_empty()) => {
                Sub::Status
            }
            Some("scale") if rt.scale.is_some() => Sub::Scale,
            Some("finalize") if rt.plural == "namespaces" => Sub::Main,
            Some("ephemeralcontainers") if rt.plural == "pods" && rt.group.is_empty() => Sub::EphemeralContainers,
            Some(_) => return Err(ApiError::no_route()),
        };
        let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        let shape = match (&method, &t.name) {
            (&Method::GET, None) if watch => Shape::Watch,
            (&Method::GET, None) | (&Method::DELETE, None) => Shape::List,
            _ => Shape::Object,
        };
        let out = negotiate(accept, shape, crate::protobuf::encodable(&rt))?;
        let include = query
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata")
            .to_string();
        match (method.clone(), t.name.clone()) {
            (Method::GET, None) => {
                if watch {
                    return self.watch(rt, t.namespace, &query, out, id).await;
                }
                self.list(&rt, t.namespace.as_deref(), &query, out)
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
                    _ if needs_render(&rt, out) => {
                        let v = crate::views::to_view(&rt, obj.value());
                        Ok(self.render_object(&rt, v, out, &include, 200, &[]))
                    }
                    _ => Ok(raw_response(200, obj.raw.clone())),
                }
            }
            (Method::POST, None) => {
                let opts = Self::write_opts(&query, id, "create", ctx)?;
                let (body, ct) = Self::read_body(req).await?;
                let v = Self::decode(&body, &ct, true)?;
                let r = self
                    .core
                    .create(&rt, t.namespace.as_deref().or(Some("default")), v, &opts)?;
                Ok(self.render_reply(&rt, r, out))
            }
            (Method::PUT, Some(name)) => {
                let opts = Self::write_opts(&query, id, "update", ctx)?;
                let (body, ct) = Self::read_body(req).await?;
                let v = Self::decode(&body, &ct, true)?;
                if sub == Sub::Scale {
                    let cur = self.core.get(&rt, &ns, &name)?.value();
                    return Ok(self.render_reply(
                        &rt,
                        self.core.write_scale(&rt, &ns, &name, &cur, &v, &opts)?,
                        super::negotiate::Output::Json,
                    ));
                }
                Ok(self.render_reply(&rt, self.core.update(&rt, &ns, &name, v, sub, &opts)?, out))
            }
            (Method::PATCH, Some(name)) => {
                let ct = super::request::header_str(&req, header::CONTENT_TYPE).to_string();
                let pt = match ct.split(';').next().unwrap_or("").trim() {
                    "application/merge-patch+json" => PatchType::Merge,
                    "application/json-patch+json" => PatchType::Json,
                    "application/strategic-merge-patch+json" => PatchType::Strategic,
                    "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchType::Apply,
                    other => return Err(ApiError::unsupported_media_type(other)),
                };
                let opts = Self::write_opts(&query, id, if pt == PatchType::Apply { "apply" } else { "patch" }, ctx)?;
                let (body, _) = Self::read_body(req).await?;
                let v: Value = if pt == PatchType::Apply {
                    Self::parse_yaml(&body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
                } else {
                    serde_json::from_slice(&body)
                        .map_err(|e| ApiError::bad_request(format!("couldn't get patch: invalid JSON: {e}")))?
                };
                let r = self.core.patch(&rt, &ns, &name, pt, v, sub, &opts)?;
                if sub == Sub::Scale {
                    return Ok(self.render_reply(&rt, r, super::negotiate::Output::Json));
                }
                Ok(self.render_reply(&rt, r, out))
            }
            (Method::DELETE, Some(name)) => {
                if sub != Sub::Main {
                    return Err(ApiError::method_not_allowed(
                        "the server does not allow this method on the requested resource",
                    ));
                }
                let d = Self::delete_opts(req, &query, ctx).await?;
                Ok(self.render_reply(&rt, self.core.delete(&rt, &ns, &name, &d)?, out))
            }
            (Method::DELETE, None) => {
                let d = Self::delete_opts(req, &query, ctx).await?;
                let (items, _) = self.select(&rt, t.namespace.as_deref(), &query)?;
                let mut deleted = Vec::new();
                for obj in items {
                    if let Ok(w) = self.core.delete_written(&rt, &obj.namespace, &obj.name, &d) {
                        deleted.push(crate::views::to_view(&rt, w.obj.value()));
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
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        let (body, ct) = Self::read_body(req).await?;
        let v = Self::decode(&body, &ct, true)?;
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
