//! Content negotiation of responses (`Accept`), as kube-apiserver's `negotiation` package and
//! `handlers/response.go` do it: the first acceptable media type wins; `as=Table` and
//! `as=PartialObjectMetadata[List]` (group `meta.k8s.io`, `v1` or `v1beta1`) transform the
//! answer; nothing acceptable is 406 `NotAcceptable`.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::resources::ResourceType;

/// What an answer is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    Json,
    /// `meta.k8s.io` Table.
    Table,
    /// `meta.k8s.io` PartialObjectMetadata (a list: PartialObjectMetadataList), in this version.
    Meta(&'static str),
    /// Kubernetes protobuf.
    Protobuf,
}

/// What the request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Object,
    List,
    Watch,
}

const ACCEPTED: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";
const ACCEPTED_WATCH: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf, application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch";

pub(super) fn not_acceptable(message: impl Into<String>) -> ApiError {
    ApiError {
        code: 406,
        reason: "NotAcceptable",
        message: message.into(),
        details: None,
    }
}

/// The output for an `Accept` header; `protobuf`: whether this resource has a protobuf encoding
/// (built-in kinds; custom resources have none, as on kube-apiserver).
pub(super) fn negotiate(accept: &str, shape: Shape, protobuf: bool) -> Result<Output, ApiError> {
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    let mut acceptable_media = false;
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_kind = None;
        let mut group = None;
        let mut version = None;
        for p in parts {
            match p.split_once('=') {
                Some(("as", v)) => as_kind = Some(v.to_string()),
                Some(("g", v)) => group = Some(v.to_string()),
                Some(("v", v)) => version = Some(v.to_string()),
                _ => {}
            }
        }
        let json_like = matches!(
            media.as_str(),
            "application/json" | "application/yaml" | "*/*" | "application/*"
        );
        acceptable_media |= json_like || media == crate::protobuf::MEDIA_TYPE;
        if media == crate::protobuf::MEDIA_TYPE {
            // Protobuf of objects only; transforms (Table, metadata) are answered in JSON by
            // the clauses that ask for them in JSON.
            if as_kind.is_none() && protobuf && shape != Shape::Watch {
                return Ok(Output::Protobuf);
            }
            continue;
        }
        if !json_like {
            continue;
        }
        let Some(kind) = as_kind else { return Ok(Output::Json) };
        let meta_version = match (group.as_deref(), version.as_deref()) {
            (Some("meta.k8s.io"), Some("v1")) => "v1",
            (Some("meta.k8s.io"), Some("v1beta1")) => "v1beta1",
            _ => continue,
        };
        match kind.as_str() {
            "Table" if media != crate::protobuf::MEDIA_TYPE => return Ok(Output::Table),
            "PartialObjectMetadata" => {
                if shape == Shape::List {
                    return Err(not_acceptable(
                        "you requested PartialObjectMetadata, but the requested object is a list (*unstructured.UnstructuredList)",
                    ));
                }
                return Ok(Output::Meta(meta_version));
            }
            "PartialObjectMetadataList" => {
                if shape != Shape::List {
                    return Err(not_acceptable(
                        "you requested PartialObjectMetadataList, but the requested object is not a list (*unstructured.Unstructured)",
                    ));
                }
                return Ok(Output::Meta(meta_version));
            }
            _ => continue,
        }
    }
    if !acceptable_media {
        // No media type the server encodes at all: the generic 406 of the handler's
        // negotiation, listing what it could have answered.
        let mut e = not_acceptable(format!(
            "406: Not Acceptable\n\nAvailable representations: {}",
            if shape == Shape::Object {
                ACCEPTED
            } else {
                ACCEPTED_WATCH
            }
        ));
        e.details = Some(json!({}));
        return Err(e);
    }
    Err(not_acceptable(format!(
        "only the following media types are accepted: {}",
        if shape == Shape::Watch {
            ACCEPTED_WATCH
        } else {
            ACCEPTED
        }
    )))
}

impl Output {
    /// The Content-Type of an answer in this output.
    /// The answer's `Content-Type`: the serializer's media type, as kube-apiserver names it
    /// (a Table or metadata answer is `application/json`, without the `as=` parameters).
    pub(super) fn content_type(self, _shape: Shape) -> String {
        match self {
            Output::Json | Output::Table | Output::Meta(_) => "application/json".into(),
            Output::Protobuf => crate::protobuf::MEDIA_TYPE.into(),
        }
    }
}

/// An object as PartialObjectMetadata.
pub(super) fn partial(v: &Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": v.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Whether the answer should be rendered for this resource (views and transforms) rather than
/// sent as stored bytes.
pub(super) fn needs_render(rt: &ResourceType, out: Output) -> bool {
    rt.view.is_some() || out != Output::Json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_acceptable_type_wins() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(kubectl, Shape::List, false).ok(), Some(Output::Table));
        let meta = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
        assert_eq!(negotiate(meta, Shape::Object, false).ok(), Some(Output::Meta("v1")));
        let list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert_eq!(negotiate(list, Shape::List, false).ok(), Some(Output::Meta("v1")));
        assert_eq!(negotiate("", Shape::Object, false).ok(), Some(Output::Json));
        assert_eq!(negotiate("*/*", Shape::Object, false).ok(), Some(Output::Json));
        assert_eq!(
            negotiate(
                "application/json;as=Foo;g=meta.k8s.io;v=v1,application/json",
                Shape::Object,
                false
            )
            .ok(),
            Some(Output::Json)
        );
    }

    #[test]
    fn unsupported_transforms_are_406() {
        let e = negotiate("application/json;as=Foo;g=meta.k8s.io;v=v1", Shape::Object, false).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(406));
        assert_eq!(
            e.map(|e| e.message),
            Some("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf".into())
        );
        let e = negotiate(
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            Shape::List,
            false,
        )
        .err();
        assert_eq!(e.map(|e| e.reason), Some("NotAcceptable"));
        assert_eq!(
            negotiate("text/plain", Shape::Object, false).err().map(|e| e.code),
            Some(406)
        );
    }
}
