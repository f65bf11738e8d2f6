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
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fs = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for f in fs.fields() {
            if !rt.supports_field(&f) {
                return Err(ApiError::bad_request(unknown_field_label(rt, &f)));
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
        // A field selector that names the object in a namespace reads that one key, as
        // kube-apiserver's registry does (`SelectionPredicate.MatchesSingle`), not every object
        // of the resource under the store's lock.
        let (items, rv) = match (ns, fs.requires_exact_match("metadata.name")) {
            (Some(ns), Some(name)) => {
                let (found, rv) = self.core.store.get_at(&rt.key(), ns, &name);
                (found.into_iter().collect(), rv)
            }
            _ => self.core.store.list(&rt.key(), ns),
        };
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
        let options = list_options(query, self.core.store.current_rv())?;
        let (mut items, mut rv) = self.select(rt, ns, query)?;
        // Continue tokens carry the snapshot RV and the last key returned.
        if let Some(tok) = query.get("continue").filter(|c| !c.is_empty()) {
            let decoded = decode_continue(tok).map_err(|e| {
                ApiError::bad_request(format!("invalid continue token: continue key is not valid: {e}"))
            })?;
            rv = decoded.0;
            items.retain(|o| (o.namespace.as_str(), o.name.as_str()) > (decoded.1.as_str(), decoded.2.as_str()));
        }
        let limit = options.limit;
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
            // Only a list without selectors knows how many items are left (etcd3's store).
            if !options.selected {
                meta["remainingItemCount"] = json!(remaining);
            }
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
                    .map(|o| without_type_meta(crate::resources::views::to_view(rt, o.value())))
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
        // kube-apiserver's items of a built-in kind carry no kind and apiVersion (typed objects
        // from storage); a custom resource's do.
        let type_meta = format!("{{\"kind\":\"{}\",\"apiVersion\":\"{}\",", rt.kind, rt.api_version());
        for (i, o) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match o.raw.strip_prefix(type_meta.as_bytes()).filter(|_| !rt.custom) {
                Some(rest) => {
                    out.push(b'{');
                    out.extend_from_slice(rest);
                }
                None => out.extend_from_slice(&o.raw),
            }
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

/// A list item of a built-in kind as kube-apiserver writes it: without `kind` and `apiVersion`.
fn without_type_meta(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("kind");
        o.remove("apiVersion");
    }
    v
}

/// What a list request asks beyond its selectors.
struct ListOptions {
    /// 0: all.
    limit: usize,
    /// A label or field selector was given.
    selected: bool,
}

/// A list's `limit`, `resourceVersion` and `resourceVersionMatch`, checked as kube-apiserver
/// checks them against its current resourceVersion `current`: a negative limit is none; a
/// resourceVersion that is not a number is 400; a match without a resourceVersion or of an
/// unknown kind is 422; a resourceVersion newer than any is 504 (kube-apiserver answers so
/// after waiting 3 s for its cache to catch up; the simulator knows at once).
fn list_options(query: &HashMap<String, String>, current: u64) -> Result<ListOptions, ApiError> {
    let limit = match query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("strconv.ParseInt: parsing {l:?}: invalid syntax")))?,
        None => 0,
    };
    let rv = query.get("resourceVersion").map(String::as_str).unwrap_or("");
    let rv_match = query.get("resourceVersionMatch").map(String::as_str).unwrap_or("");
    let invalid = |reason: &str, message: String| {
        super::request::invalid_options("ListOptions", "resourceVersionMatch", reason, &message)
    };
    match rv_match {
        "" | "Exact" | "NotOlderThan" if !rv_match.is_empty() && rv.is_empty() => {
            return Err(invalid(
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
            ))
        }
        "" | "Exact" | "NotOlderThan" => {}
        other => {
            return Err(invalid(
                "FieldValueNotSupported",
                format!("Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""),
            ))
        }
    }
    if !rv.is_empty() {
        let n: u64 = rv.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resource version: resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: invalid syntax"
            ))
        })?;
        if n > current {
            let mut e = ApiError::timeout(format!("Timeout: Too large resource version: {n}, current: {current}"));
            e.details = Some(
                json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
            );
            return Err(e);
        }
    }
    let given = |k: &str| query.get(k).is_some_and(|v| !v.is_empty());
    Ok(ListOptions {
        limit: usize::try_from(limit).unwrap_or(0),
        selected: given("labelSelector") || given("fieldSelector"),
    })
}

/// The refusal of a field selector on a field `rt` does not index, in the words of the
/// registry that refuses it: kinds with their own field label conversion (core Pods, Nodes,
/// Namespaces, Services, Secrets, Events, ReplicationControllers; custom resources) name the
/// label; Jobs name the kind; the others list what they support.
fn unknown_field_label(rt: &ResourceType, field: &str) -> String {
    let converted = rt.custom
        || rt.plural == "events"
        || (rt.group.is_empty()
            && matches!(
                rt.plural.as_str(),
                "pods" | "nodes" | "namespaces" | "services" | "secrets" | "replicationcontrollers"
            ));
    if converted {
        format!("field label not supported: {field}")
    } else if rt.group == "batch" && rt.plural == "jobs" {
        format!("field label {field:?} not supported for Job")
    } else {
        format!("{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
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

/// A continue token's snapshot resourceVersion and last key; Err says why it is not one.
fn decode_continue(tok: &str) -> Result<(u64, String, String), String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    // Go's base64.RawURLEncoding: no padding, and trailing bits are not checked.
    const RAW_URL: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let raw = RAW_URL.decode(tok).map_err(|e| match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            format!("illegal base64 data at input byte {at}")
        }
        other => other.to_string(),
    })?;
    serde_json::from_slice(&raw).map_err(|e| json_error(&raw, &e))
}

/// Go's encoding/json message for a value that does not start as JSON does (its first
/// complaint about a token), else serde's.
fn json_error(raw: &[u8], e: &serde_json::Error) -> String {
    let first = raw.iter().copied().find(|b| !b" \t\r\n".contains(b));
    match first {
        Some(b) if !b"{[\"-0123456789tfn".contains(&b) => {
            let shown = match b {
                b'\'' => "\\'".to_string(),
                0x20..=0x7e => (b as char).to_string(),
                0x07 => "\\a".into(),
                0x08 => "\\b".into(),
                0x09 => "\\t".into(),
                0x0a => "\\n".into(),
                0x0b => "\\v".into(),
                0x0c => "\\f".into(),
                0x0d => "\\r".into(),
                0x00..=0x1f | 0x7f => format!("\\x{b:02x}"),
                0x80..=0xa0 | 0xad => format!("\\u{:04x}", b as u32),
                _ => (b as char).to_string(),
            };
            format!("invalid character '{shown}' looking for beginning of value")
        }
        _ => e.to_string(),
    }
}
