//! Lists: label and field selectors, `limit`/`continue` paging, and Table output.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Stored;
use crate::table;

use super::negotiate::{partial, Output, Shape};
use super::response::{json_response, raw_response};
use super::{Body, Server, TABLE_CT};

impl Server {
    pub(super) fn selectors(
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

    pub(super) fn select(
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

    pub(super) fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        query: &HashMap<String, String>,
        out: Output,
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
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if let Some(c) = &cont {
            meta["continue"] = json!(c);
            meta["remainingItemCount"] = json!(remaining);
        }
        match out {
            Output::Table => {
                let values: Vec<Value> = items
                    .iter()
                    .map(|o| crate::resources::views::to_view(rt, o.value()))
                    .collect();
                let tbl = self.table_for(
                    rt,
                    &values,
                    &rv.to_string(),
                    cont.as_deref(),
                    query.get("includeObject").map(String::as_str).unwrap_or("Metadata"),
                );
                return Ok(json_response(200, &tbl, TABLE_CT, &[]));
            }
            Output::Meta(version) => {
                let values: Vec<Value> = items.iter().map(|o| partial(&o.value(), version)).collect();
                let list = json!({"kind": "PartialObjectMetadataList", "apiVersion": format!("meta.k8s.io/{version}"), "metadata": meta, "items": values});
                return Ok(json_response(200, &list, &out.content_type(Shape::List), &[]));
            }
            Output::Protobuf => {
                let values: Vec<Value> = items
                    .iter()
                    .map(|o| crate::resources::views::to_view(rt, o.value()))
                    .collect();
                return Ok(super::response::protobuf_list_response(rt, &meta, values));
            }
            Output::Json if rt.view.is_some() => {
                let values: Vec<Value> = items
                    .iter()
                    .map(|o| crate::resources::views::to_view(rt, o.value()))
                    .collect();
                let list = json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": meta, "items": values});
                return Ok(json_response(200, &list, "application/json", &[]));
            }
            Output::Json => {}
        }
        // Assemble the list from stored bytes: no re-serialisation of items.
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

    pub(super) fn table_for(
        &self,
        rt: &ResourceType,
        objs: &[Value],
        rv: &str,
        cont: Option<&str>,
        include: &str,
    ) -> Value {
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
}

pub(super) fn matches_sel(o: &Stored, ls: &LabelSelector, fs: &FieldSelector) -> bool {
    (ls.is_empty() || ls.matches(&o.label_map())) && (fs.is_empty() || fs.matches(&|f: &str| o.field(f)))
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
