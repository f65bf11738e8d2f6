//! Building responses: JSON bodies with `Warning` headers, stored bytes, API errors.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::api::Reply;
use crate::error::ApiError;

use super::Body;

pub(super) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub(super) fn json_response(code: u16, v: &Value, content_type: &str, warnings: &[String]) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let mut b = Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type);
    for w in warnings {
        b = b.header("Warning", format!("299 - {w:?}"));
    }
    b.body(full(bytes)).unwrap_or_else(|_| Response::new(full("")))
}

pub(super) fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), "application/json", &[])
}

pub(super) fn raw_response(code: u16, raw: Bytes) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(raw))
        .unwrap_or_else(|_| Response::new(full("")))
}

pub(super) fn reply(r: Reply) -> Response<Body> {
    let code = StatusCode::from_u16(r.code).map(|c| c.as_u16()).unwrap_or(200);
    if r.body.get("kind").and_then(Value::as_str) == Some("Status") {
        return json_response(code, &r.body, "application/json", &r.warnings);
    }
    json_response(code, &r.body, "application/json", &r.warnings)
}
