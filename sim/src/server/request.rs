//! Reading requests: query strings, caller identity, bodies (JSON, YAML, protobuf) and the
//! write and delete options they carry.

use std::collections::HashMap;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use std::sync::Arc;

use crate::admission::RequestContext;
use crate::error::ApiError;
use crate::handlers::{DeleteOpts, FieldValidation, Opts};

use super::{Server, MAX_BODY};

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

pub(super) fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// kube-apiserver's answer to a body over its limit (`MaxRequestBodyBytes`, 3 MiB).
const TOO_LARGE: &str = "Request entity too large: limit is 3145728";

/// A request header as text; "" when it is absent or not visible ASCII.
pub(super) fn header_str<B>(req: &Request<B>, name: header::HeaderName) -> &str {
    req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Who is calling: bearer token or User-Agent (fault rules match either). Never stored: the
/// default field manager comes from the User-Agent alone ([`user_agent_of`]).
pub(super) fn identity<B>(req: &Request<B>) -> String {
    let ua = header_str(req, header::USER_AGENT);
    let token = header_str(req, header::AUTHORIZATION);
    let token = token.strip_prefix("Bearer ").unwrap_or("");
    format!("{ua} token={token}")
}

/// The User-Agent part of an [`identity`].
fn user_agent_of(id: &str) -> &str {
    id.rsplit_once(" token=").map_or(id, |(ua, _)| ua)
}

/// kube-apiserver's `prefixFromUserAgent`: what precedes the first `/`, without unprintable
/// characters, cut at the field manager's 128 bytes. No User-Agent: the empty manager.
pub(super) fn default_field_manager(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

impl Server {
    pub(super) async fn read_body(req: Request<Incoming>) -> Result<(Bytes, String), ApiError> {
        let ct = header_str(&req, header::CONTENT_TYPE).to_string();
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
        {
            if len > MAX_BODY {
                return Err(ApiError::too_large(TOO_LARGE));
            }
        }
        let body = Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    ApiError::too_large(TOO_LARGE)
                } else {
                    ApiError::bad_request(format!("reading request body: {e}"))
                }
            })?
            .to_bytes();
        Ok((body, ct))
    }

    /// A YAML body. Clients send JSON (a subset of YAML) nearly always; parsing it as JSON first
    /// is many times faster than the YAML parser on large objects.
    pub(super) fn parse_yaml(body: &[u8]) -> Result<Value, serde_saphyr::Error> {
        serde_json::from_slice(body).or_else(|_| serde_saphyr::from_slice(body))
    }

    /// Decode a request body of media type `ct`; `kind` is the kind the request expects (named
    /// in a refusal, as kube-apiserver names it).
    pub(super) fn decode(body: &[u8], ct: &str, yaml_ok: bool, kind: &str) -> Result<Value, ApiError> {
        let media = ct.split(';').next().unwrap_or("").trim();
        let v: Value = match media {
            "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: {e}"
                ))
            })?,
            "application/yaml" | "application/apply-patch+yaml" if yaml_ok || media == "application/yaml" => {
                Self::parse_yaml(body)
                    .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
            }
            // client-go's typed clients (Helm's release storage among them) send protobuf.
            crate::protobuf::MEDIA_TYPE => crate::protobuf::decode(body)?,
            _ => return Err(ApiError::unsupported_media_type(crate::error::BODY_MEDIA_TYPES)),
        };
        Ok(v)
    }

    pub(super) fn write_opts(
        query: &HashMap<String, String>,
        id: &str,
        verb: &str,
        ctx: &Arc<RequestContext>,
    ) -> Result<Opts, ApiError> {
        let options = match verb {
            "create" => "CreateOptions",
            "update" => "UpdateOptions",
            _ => "PatchOptions",
        };
        let dry_run = dry_run_option(query.get("dryRun").map(String::as_str), options)?;
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
        if force && verb == "patch" {
            return Err(invalid_options(
                options,
                "force",
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
            ));
        }
        let force = force && verb == "apply";
        let field_manager = match query.get("fieldManager") {
            Some(m) if !m.is_empty() => {
                if m.len() > 128 {
                    return Err(invalid_options(
                        options,
                        "fieldManager",
                        "FieldValueTooLong",
                        "Too long: may not be more than 128 bytes",
                    ));
                }
                m.clone()
            }
            // An apply names its manager: kubectl defaults it, controllers must set it.
            _ if verb == "apply" => {
                return Err(ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    vec![crate::error::StatusCause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: is required for apply patch".into(),
                        field: "fieldManager".into(),
                    }],
                ))
            }
            // As kube-apiserver: the manager defaults to the User-Agent's program name (never to
            // anything of the credentials).
            _ => default_field_manager(user_agent_of(id)),
        };
        Ok(Opts {
            dry_run,
            field_manager,
            validation,
            force,
            unrecorded: false,
            request: Some(ctx.clone()),
        })
    }

    pub(super) async fn delete_opts(
        req: Request<Incoming>,
        query: &HashMap<String, String>,
        ctx: &Arc<RequestContext>,
    ) -> Result<DeleteOpts, ApiError> {
        let (body, ct) = Self::read_body(req).await?;
        let mut d = DeleteOpts {
            request: Some(ctx.clone()),
            ..DeleteOpts::default()
        };
        let mut orphan = None;
        if !body.is_empty() {
            let v = Self::decode(&body, &ct, true, "DeleteOptions")?;
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
            orphan = v.get("orphanDependents").and_then(Value::as_bool);
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
        if dry_run_option(query.get("dryRun").map(String::as_str), "DeleteOptions")? {
            d.dry_run = true;
        }
        if let Some(o) = query.get("orphanDependents") {
            orphan = orphan.or(Some(o == "true"));
        }
        match (d.propagation.as_deref(), orphan) {
            (None | Some("Background" | "Foreground" | "Orphan"), None) => Ok(d),
            (None, Some(o)) => {
                // The deprecated flag, as kube-apiserver reads it.
                d.propagation = Some(if o { "Orphan" } else { "Background" }.to_string());
                Ok(d)
            }
            (Some(p @ ("Background" | "Foreground" | "Orphan")), Some(_)) => Err(invalid_options(
                "DeleteOptions",
                "propagationPolicy",
                "FieldValueInvalid",
                &format!("Invalid value: {p:?}: orphanDependents and deletionPropagation cannot be both set"),
            )),
            (Some(other), _) => Err(invalid_options(
                "DeleteOptions",
                "propagationPolicy",
                "FieldValueNotSupported",
                &format!("Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
            )),
        }
    }
}

/// A `dryRun` query value: `All` or nothing; anything else is 422 on `options` (the
/// `CreateOptions`, `UpdateOptions`, `PatchOptions` or `DeleteOptions` of the request).
fn dry_run_option(value: Option<&str>, options: &str) -> Result<bool, ApiError> {
    match value {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(invalid_options(
            options,
            "dryRun",
            "FieldValueNotSupported",
            &format!("Unsupported value: []string{{{other:?}}}: supported values: \"All\""),
        )),
    }
}

/// 422 for a request's options (`meta.k8s.io` `DeleteOptions`, `ListOptions`, …), as
/// kube-apiserver's handlers refuse them: `<Kind>.meta.k8s.io "" is invalid: <field>: …`.
pub(super) fn invalid_options(kind: &str, field: &str, reason: &str, message: &str) -> ApiError {
    ApiError::invalid(
        kind,
        "meta.k8s.io",
        "",
        vec![crate::error::StatusCause {
            reason: reason.into(),
            message: message.into(),
            field: field.into(),
        }],
    )
}
