//! Building responses: JSON bodies with `Warning` headers, stored bytes, API errors.

use bytes::Bytes;
use http::{header, Response};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::error::ApiError;

use super::Body;

pub(super) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub(super) fn json_response(code: u16, v: &Value, content_type: &str, warnings: &[String]) -> Response<Body> {
    let mut bytes = Vec::new();
    if crate::meta::write_object(&mut bytes, v).is_err() {
        bytes = serde_json::to_vec(v).unwrap_or_default();
    }
    let mut b = Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type);
    for w in warnings {
        b = b.header("Warning", format!("299 - {w:?}"));
    }
    b.body(full(bytes)).unwrap_or_else(|_| Response::new(full("")))
}

/// An error as its `Status`; a `details.retryAfterSeconds` is also sent as `Retry-After`, as
/// kube-apiserver's `responsewriters` do.
pub(super) fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status(), "application/json", &[]);
    let retry = e
        .details
        .as_ref()
        .and_then(|d| d.get("retryAfterSeconds"))
        .and_then(Value::as_u64);
    if let Some(s) = retry.filter(|s| *s > 0) {
        if let Ok(v) = http::HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// An injected fault's `Status`, without `Retry-After` (see docs/simulator.md).
pub(super) fn injected_error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), "application/json", &[])
}

/// A refusal of the authorization filter (`responsewriters.Forbidden`): the `Status`, with
/// `X-Content-Type-Options: nosniff`.
pub(super) fn forbidden_response(e: &ApiError) -> Response<Body> {
    let mut r = error_response(e);
    r.headers_mut()
        .insert("x-content-type-options", http::HeaderValue::from_static("nosniff"));
    r
}

/// Go's `http.NotFound`, what kube-apiserver's mux answers for a path no handler serves.
pub(super) fn page_not_found() -> Response<Body> {
    Response::builder()
        .status(404)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(full("404 page not found\n"))
        .unwrap_or_else(|_| Response::new(full("")))
}

pub(super) fn raw_response(code: u16, raw: Bytes) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(raw))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// An object in Kubernetes protobuf; JSON when its kind has no protobuf encoding.
pub(super) fn protobuf_response(
    code: u16,
    rt: &crate::resources::ResourceType,
    v: &Value,
    warnings: &[String],
) -> Response<Body> {
    let _ = rt;
    match crate::protobuf::encode(v) {
        Some(Ok(bytes)) => {
            let mut b = Response::builder()
                .status(code)
                .header(header::CONTENT_TYPE, crate::protobuf::MEDIA_TYPE);
            for w in warnings {
                b = b.header("Warning", format!("299 - {w:?}"));
            }
            b.body(full(bytes)).unwrap_or_else(|_| Response::new(full("")))
        }
        _ => json_response(code, v, "application/json", warnings),
    }
}

/// A list in Kubernetes protobuf; JSON when its kind has no protobuf encoding.
pub(super) fn protobuf_list_response(
    rt: &crate::resources::ResourceType,
    meta: &Value,
    items: Vec<Value>,
) -> Response<Body> {
    let list = serde_json::json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": meta, "items": items});
    protobuf_response(200, rt, &list, &[])
}
