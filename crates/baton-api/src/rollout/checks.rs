//! Checks per batch (`spec.checks`): what, besides pod readiness, a batch (and the bake window)
//! must pass. A check has exactly one kind (`http`, `job`, `prometheus`); a check without one is
//! refused (CEL), so no spec silently loses a gate it asked for. The semantics are in
//! docs/rollouts.md ("Checks").

use crate::invalid::BadValue;
use crate::Invalid;
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
#[x_kube(validation = Rule::new("(has(self.http) ? 1 : 0) + (has(self.job) ? 1 : 0) + (has(self.prometheus) ? 1 : 0) == 1").message("a check needs exactly one kind: http, job or prometheus"))]
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
    pub job: Option<Box<super::JobTemplate>>,
    /// A Prometheus query whose result must satisfy a condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusCheck>,
    /// Most attempts of one run (http, prometheus).
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

/// A Prometheus check: an instant query, and a condition every sample of its result must meet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusCheck {
    /// Base URL of the Prometheus HTTP API (`http://prometheus.monitoring:9090`); the query goes
    /// to `<address>/api/v1/query`.
    #[schemars(length(min = 1, max = 2048))]
    pub address: String,
    /// PromQL instant query; may use the placeholders of `http.url` (`{{instance}}`, `{{pod}}`
    /// or `{{podIP}}` make it run once per pod).
    #[schemars(length(min = 1, max = 8192))]
    pub query: String,
    /// What every sample must satisfy: a comparison and a number (`< 0.05`, `>= 0.99`, `== 0`).
    /// An empty result fails the attempt.
    #[schemars(
        length(min = 2, max = 64),
        regex(pattern = r"^\s*(<=|>=|==|!=|<|>)\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$")
    )]
    pub condition: String,
    /// A Secret in the Rollout's namespace with `token` (sent as a bearer token) or `username`
    /// and `password` (basic auth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<crate::listenerset::SecretRef>,
    /// Seconds an attempt may take.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: i32,
}

/// The comparison of a Prometheus check's condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// A parsed `condition`: the comparison and the number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    pub op: Comparison,
    pub value: f64,
}

impl Threshold {
    /// `< 0.05`, `>=0.99`, `== 0`, … (what the schema's pattern admits).
    pub fn parse(s: &str) -> Result<Self, BadValue> {
        let t = s.trim();
        let (op, rest) = [
            ("<=", Comparison::Le),
            (">=", Comparison::Ge),
            ("==", Comparison::Eq),
            ("!=", Comparison::Ne),
            ("<", Comparison::Lt),
            (">", Comparison::Gt),
        ]
        .into_iter()
        .find_map(|(sym, op)| t.strip_prefix(sym).map(|rest| (op, rest)))
        .ok_or_else(|| BadValue::NoComparison(s.to_string()))?;
        let value = rest
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| BadValue::NotANumber(s.to_string()))?;
        Ok(Self { op, value })
    }

    /// Does `v` meet the condition? NaN meets none but `!=`.
    pub fn holds(&self, v: f64) -> bool {
        match self.op {
            Comparison::Lt => v < self.value,
            Comparison::Le => v <= self.value,
            Comparison::Gt => v > self.value,
            Comparison::Ge => v >= self.value,
            Comparison::Eq => v == self.value,
            Comparison::Ne => v != self.value,
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Eq => "==",
            Comparison::Ne => "!=",
        };
        write!(f, "{op} {}", self.value)
    }
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
    /// The text whose placeholders are filled in per run: the URL of an `http` check, the query
    /// of a `prometheus` one.
    pub fn template(&self) -> Option<&str> {
        match (&self.http, &self.prometheus) {
            (Some(h), _) => Some(&h.url),
            (None, Some(p)) => Some(&p.query),
            (None, None) => None,
        }
    }

    /// Does the check run once per pod (its URL or query names a pod)?
    pub fn per_pod(&self) -> bool {
        self.template()
            .is_some_and(|t| placeholders::PER_POD.iter().any(|p| t.contains(p)))
    }
}

/// CEL (on the spec): check names are unique.
pub const CHECK_NAMES_UNIQUE_RULE: &str =
    "!has(self.checks) || self.checks.all(c, self.checks.exists_one(d, d.name == c.name))";

/// What the schema and CEL check, plus the URL's scheme and placeholders.
pub fn validate_checks(checks: &[Check], errors: &mut Vec<Invalid>) {
    if checks.len() > MAX_CHECKS {
        errors.push(Invalid::new(
            "spec.checks",
            format!("has {} checks; at most {MAX_CHECKS}", checks.len()),
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, c) in checks.iter().enumerate() {
        let at = format!("spec.checks[{i}]");
        if !names.insert(c.name.as_str()) {
            errors.push(Invalid::at(
                at.to_string(),
                format!("another check is named {:?}; give each check its own name", c.name),
            ));
        }
        if !(1..=100).contains(&c.count) {
            errors.push(Invalid::new(
                format!("{at}.count"),
                format!("is {}; use 1..100", c.count),
            ));
        }
        if c.failure_limit < 0 || c.failure_limit >= c.count {
            errors.push(Invalid::new(
                format!("{at}.failureLimit"),
                format!("is {}; use 0..{} (below count)", c.failure_limit, (c.count - 1).max(0)),
            ));
        }
        if !(0..=3600).contains(&c.interval_seconds) {
            errors.push(Invalid::new(
                format!("{at}.intervalSeconds"),
                format!("is {}; use 0..3600", c.interval_seconds),
            ));
        }
        match (&c.http, &c.job, &c.prometheus) {
            (None, None, None) => errors.push(Invalid::new(
                at.to_string(),
                format!("({}) has no kind; give it http, job or prometheus", c.name),
            )),
            (Some(h), None, None) => validate_http(&at, h, errors),
            (None, Some(j), None) => super::hooks::validate_job(&format!("{at}.job"), j, errors),
            (None, None, Some(p)) => validate_prometheus(&at, p, errors),
            _ => errors.push(Invalid::new(
                at.to_string(),
                format!(
                    "({}) has more than one kind; give it one of http, job and prometheus",
                    c.name
                ),
            )),
        }
    }
}

/// `url` is http(s) (`field` names it in messages).
fn validate_scheme(field: &str, url: &str, errors: &mut Vec<Invalid>) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        errors.push(Invalid::new(
            field.to_string(),
            format!("{url:?} must start with http:// or https://"),
        ));
    }
}

/// Every `{{…}}` in `text` is a known placeholder (`field` names it in messages).
fn validate_placeholders(field: &str, text: &str, errors: &mut Vec<Invalid>) {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let tail = &rest[start..];
        let end = tail.find("}}").map_or(tail.len(), |e| e + 2);
        let word = &tail[..end];
        if !placeholders::ALL.contains(&word) {
            errors.push(Invalid::new(
                field.to_string(),
                format!("uses {word:?}; the placeholders are {}", placeholders::ALL.join(", ")),
            ));
        }
        rest = &tail[end..];
    }
}

fn validate_prometheus(at: &str, p: &PrometheusCheck, errors: &mut Vec<Invalid>) {
    validate_scheme(&format!("{at}.prometheus.address"), &p.address, errors);
    validate_placeholders(&format!("{at}.prometheus.query"), &p.query, errors);
    if let Err(e) = Threshold::parse(&p.condition) {
        errors.push(Invalid::new(format!("{at}.prometheus.condition"), e.to_string()));
    }
    if !(1..=300).contains(&p.timeout_seconds) {
        errors.push(Invalid::new(
            format!("{at}.prometheus.timeoutSeconds"),
            format!("is {}; use 1..300", p.timeout_seconds),
        ));
    }
    if p.secret_ref.as_ref().is_some_and(|s| s.name.is_empty()) {
        errors.push(Invalid::new(
            format!("{at}.prometheus.secretRef.name"),
            "is empty; name a Secret",
        ));
    }
}

fn validate_http(at: &str, h: &HttpCheck, errors: &mut Vec<Invalid>) {
    validate_scheme(&format!("{at}.http.url"), &h.url, errors);
    validate_placeholders(&format!("{at}.http.url"), &h.url, errors);
    if !(1..=300).contains(&h.timeout_seconds) {
        errors.push(Invalid::new(
            format!("{at}.http.timeoutSeconds"),
            format!("is {}; use 1..300", h.timeout_seconds),
        ));
    }
    for s in &h.expected_status {
        if !(100..=599).contains(s) {
            errors.push(Invalid::new(
                format!("{at}.http.expectedStatus"),
                format!("has {s}; use HTTP status codes 100..599"),
            ));
        }
    }
}
