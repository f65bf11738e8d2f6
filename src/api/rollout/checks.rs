//! Checks per batch (`spec.checks`): what, besides pod readiness, a batch (and the bake window)
//! must pass. The `http` and `job` kinds exist so far; a check with neither is refused (CEL), so
//! no spec silently loses a gate it asked for. The semantics are in docs/rollouts.md ("Checks").

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most checks a Rollout may have.
pub const MAX_CHECKS: usize = 8;

/// URL placeholders, replaced per pod (or per batch when none of the per-pod ones is used).
pub mod placeholders {
    /// The pod's IP (`status.podIP`).
    pub const POD_IP: &str = "{{podIP}}";
    /// The pod's name.
    pub const POD: &str = "{{pod}}";
    /// The instance, `<rollout>-<ordinal>`.
    pub const INSTANCE: &str = "{{instance}}";
    /// The version being rolled out.
    pub const VERSION: &str = "{{version}}";
    /// The Rollout's namespace.
    pub const NAMESPACE: &str = "{{namespace}}";
    /// The Rollout's name.
    pub const ROLLOUT: &str = "{{rollout}}";
    /// Placeholders that make a check run once per pod.
    pub const PER_POD: &[&str] = &[POD_IP, POD, INSTANCE];
    /// Every placeholder.
    pub const ALL: &[&str] = &[POD_IP, POD, INSTANCE, VERSION, NAMESPACE, ROLLOUT];
}

/// One check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.http) != has(self.job)").message("a check needs exactly one kind: http or job (prometheus checks are not implemented yet)"))]
#[x_kube(validation = Rule::new("(has(self.failureLimit) ? self.failureLimit : 0) < (has(self.count) ? self.count : 1)").message("failureLimit must be below count"))]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Names the check in status, messages and Events; unique in the Rollout.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// An HTTP request that must answer as expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// A Job that must succeed (one per batch, and one for the bake window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<super::JobTemplate>,
    /// Most attempts of one run (http).
    #[serde(default = "default_count")]
    #[schemars(range(min = 1, max = 100))]
    pub count: i32,
    /// Failed attempts tolerated: a run passes once `count - failureLimit` attempts succeeded and
    /// fails once more than `failureLimit` failed.
    #[serde(default)]
    #[schemars(range(min = 0, max = 99))]
    pub failure_limit: i32,
    /// Seconds from the start of one attempt to the start of the next.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 0, max = 3600))]
    pub interval_seconds: i32,
}

/// HTTP method of a check.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum HttpMethod {
    #[default]
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
    #[serde(rename = "POST")]
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
        }
    }
}

/// An HTTP check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheck {
    /// `http://` or `https://` URL; may use `{{podIP}}`, `{{pod}}`, `{{instance}}` (one run per
    /// pod), `{{version}}`, `{{namespace}}`, `{{rollout}}`.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// `GET` (default), `HEAD` or `POST`.
    #[serde(default)]
    pub method: HttpMethod,
    /// Body of a `POST` (sent as `application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub body: Option<String>,
    /// Status codes that pass; empty: any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(range(min = 100, max = 599)))]
    pub expected_status: Vec<i32>,
    /// A field of the JSON body that must have a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonMatch>,
    /// Seconds an attempt may take.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: i32,
}

/// A JSON field and the value it must have.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JsonMatch {
    /// Dot path into the body (`status`, `checks.db`; array items by index, `items.0.state`).
    #[schemars(length(min = 1, max = 256))]
    pub path: String,
    /// The value as a string (`ok`, `true`, `3`).
    #[schemars(length(max = 256))]
    pub equals: String,
}

fn default_count() -> i32 {
    1
}
fn default_interval() -> i32 {
    2
}
fn default_timeout() -> i32 {
    5
}

impl Check {
    /// Does the check run once per pod (its URL names a pod)?
    pub fn per_pod(&self) -> bool {
        self.http
            .as_ref()
            .is_some_and(|h| placeholders::PER_POD.iter().any(|p| h.url.contains(p)))
    }
}

/// CEL (on the spec): check names are unique.
pub const CHECK_NAMES_UNIQUE_RULE: &str =
    "!has(self.checks) || self.checks.all(c, self.checks.exists_one(d, d.name == c.name))";

/// What the schema and CEL check, plus the URL's scheme and placeholders.
pub fn validate_checks(checks: &[Check], errors: &mut Vec<String>) {
    if checks.len() > MAX_CHECKS {
        errors.push(format!("spec.checks has {} checks; at most {MAX_CHECKS}", checks.len()));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, c) in checks.iter().enumerate() {
        let at = format!("spec.checks[{i}]");
        if !names.insert(c.name.as_str()) {
            errors.push(format!(
                "{at}: another check is named {:?}; give each check its own name",
                c.name
            ));
        }
        if !(1..=100).contains(&c.count) {
            errors.push(format!("{at}.count is {}; use 1..100", c.count));
        }
        if c.failure_limit < 0 || c.failure_limit >= c.count {
            errors.push(format!(
                "{at}.failureLimit is {}; use 0..{} (below count)",
                c.failure_limit,
                (c.count - 1).max(0)
            ));
        }
        if !(0..=3600).contains(&c.interval_seconds) {
            errors.push(format!("{at}.intervalSeconds is {}; use 0..3600", c.interval_seconds));
        }
        match (&c.http, &c.job) {
            (None, None) => errors.push(format!(
                "{at} ({}) has no kind; give it http or job (prometheus checks are not implemented yet)",
                c.name
            )),
            (Some(_), Some(_)) => errors.push(format!("{at} ({}) has two kinds; give it either http or job", c.name)),
            (Some(h), None) => validate_http(&at, h, errors),
            (None, Some(j)) => super::hooks::validate_job(&format!("{at}.job"), j, errors),
        }
    }
}

fn validate_http(at: &str, h: &HttpCheck, errors: &mut Vec<String>) {
    if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
        errors.push(format!("{at}.http.url {:?} must start with http:// or https://", h.url));
    }
    let mut rest = h.url.as_str();
    while let Some(start) = rest.find("{{") {
        let tail = &rest[start..];
        let end = tail.find("}}").map_or(tail.len(), |e| e + 2);
        let word = &tail[..end];
        if !placeholders::ALL.contains(&word) {
            errors.push(format!(
                "{at}.http.url uses {word:?}; the placeholders are {}",
                placeholders::ALL.join(", ")
            ));
        }
        rest = &tail[end..];
    }
    if !(1..=300).contains(&h.timeout_seconds) {
        errors.push(format!("{at}.http.timeoutSeconds is {}; use 1..300", h.timeout_seconds));
    }
    for s in &h.expected_status {
        if !(100..=599).contains(s) {
            errors.push(format!(
                "{at}.http.expectedStatus has {s}; use HTTP status codes 100..599"
            ));
        }
    }
}
