//! Answers rendered as the client negotiated them: the stored JSON, a view's shape, a Table,
//! PartialObjectMetadata or protobuf.

use http::Response;
use serde_json::Value;

use crate::handlers::Reply;
use crate::resources::ResourceType;

use super::negotiate::{partial, Output, Shape};
use super::response::json_response;
use super::{Body, Server, TABLE_CT};

impl Server {
    /// One object (already in the resource's own shape, views converted) as `out` asks.
    pub(super) fn render_object(
        &self,
        rt: &ResourceType,
        v: Value,
        out: Output,
        include: &str,
        code: u16,
        warnings: &[String],
    ) -> Response<Body> {
        // Status answers (a finished delete) are not transformed.
        if v.get("kind").and_then(Value::as_str) == Some("Status") {
            return json_response(code, &v, "application/json", warnings);
        }
        match out {
            Output::Json => json_response(code, &v, "application/json", warnings),
            Output::Table => {
                let rv = v
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let tbl = self.table_for(rt, &[v], &rv, None, include);
                json_response(code, &tbl, TABLE_CT, warnings)
            }
            Output::Meta(version) => {
                json_response(code, &partial(&v, version), &out.content_type(Shape::Object), warnings)
            }
            Output::Protobuf => super::response::protobuf_response(code, rt, &v, warnings),
        }
    }

    /// The answer to a write.
    pub(super) fn render_reply(&self, rt: &ResourceType, r: Reply, out: Output) -> Response<Body> {
        self.render_object(rt, r.body, out, "Object", r.code, &r.warnings)
    }
}
