//! Prometheus checks: one attempt is an instant query (`GET <address>/api/v1/query`) whose every
//! sample must meet the check's condition. Credentials come from a Secret in the Rollout's
//! namespace, read once per run (again after a failed read), never cached across runs.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::{exchange, HttpClient, HttpError, MAX_BODY};
use crate::api::rollout::{PrometheusCheck, Threshold};

/// The `Authorization` header a check's Secret gives.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth(String);

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(<redacted>)")
    }
}

/// Secret keys of a Prometheus check's credentials.
pub mod keys {
    pub const TOKEN: &str = "token";
    pub const USERNAME: &str = "username";
    pub const PASSWORD: &str = "password";
}

/// Why a Prometheus check attempt failed; its text is the attempt's result for people.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The check's `condition` does not parse (`condition` and the words of [`Threshold::parse`]).
    #[error("condition {0}")]
    Condition(crate::api::invalid::BadValue),
    #[error("cannot read Secret {ns}/{name}: {}", secret_reason(.source))]
    SecretUnreadable {
        ns: String,
        name: String,
        source: kube::Error,
    },
    #[error(
        "Secret {ns}/{name} has neither `{}` nor `{}` and `{}`",
        keys::TOKEN,
        keys::USERNAME,
        keys::PASSWORD
    )]
    NoCredentials { ns: String, name: String },
    /// No answer (see [`HttpError`]).
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("HTTP {status}, not a Prometheus API answer")]
    NotPrometheus { status: u16, source: serde_json::Error },
    /// Prometheus refused the query: its `errorType` and `error`.
    #[error("query error ({kind}): {message}")]
    Refused { kind: String, message: String },
    #[error("HTTP {0} from Prometheus")]
    Status(u16),
    #[error("the query returned a {0}; use one that returns an instant vector or a scalar")]
    ResultType(String),
    #[error("HTTP 200, but no data.resultType in the answer")]
    NoResultType,
    #[error("no data: the query returned no samples")]
    NoData,
    /// `series` is the sample's labels (`{a="1"} = `), empty for a scalar.
    #[error("{series}value {value} is not a number")]
    NotANumber { series: String, value: serde_json::Value },
    #[error("{series}{value} (expected {condition})")]
    Unmet {
        series: String,
        value: f64,
        condition: Threshold,
    },
}

/// What a failed read of a check's Secret says: the API server's message, else the client's.
fn secret_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

/// The credentials in Secret `ns/name`: `token` (bearer) or `username` and `password` (basic).
pub async fn read_auth(client: &kube::Client, ns: &str, name: &str) -> Result<Auth, QueryError> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .map_err(|source| QueryError::SecretUnreadable {
            ns: ns.to_string(),
            name: name.to_string(),
            source,
        })?;
    auth_from(ns, name, &secret)
}

/// The header the data of Secret `ns/name` gives, or what it lacks.
pub fn auth_from(ns: &str, name: &str, secret: &Secret) -> Result<Auth, QueryError> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).trim_end_matches('\n').to_string())
    };
    match (text(keys::TOKEN), text(keys::USERNAME), text(keys::PASSWORD)) {
        (Some(token), _, _) => Ok(Auth(format!("Bearer {token}"))),
        (None, Some(user), Some(password)) => Ok(Auth(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ))),
        _ => Err(QueryError::NoCredentials {
            ns: ns.to_string(),
            name: name.to_string(),
        }),
    }
}

/// The query URL for `query` against `address`.
pub fn query_url(address: &str, query: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .finish();
    format!("{}/api/v1/query?{q}", address.trim_end_matches('/'))
}

/// One attempt: the result for people, `Ok` when every sample met the condition.
pub async fn attempt(
    client: Option<&HttpClient>,
    check: &PrometheusCheck,
    query: &str,
    auth: Option<&Auth>,
) -> Result<String, QueryError> {
    let condition = Threshold::parse(&check.condition).map_err(QueryError::Condition)?;
    let url = query_url(&check.address, query);
    let mut req = http::Request::builder()
        .method("GET")
        .uri(&url)
        .header(http::header::USER_AGENT, "baton-check")
        .header(http::header::ACCEPT, "application/json");
    if let Some(Auth(header)) = auth {
        req = req.header(http::header::AUTHORIZATION, header);
    }
    let timeout = Duration::from_secs(u64::try_from(check.timeout_seconds.max(1)).unwrap_or(1));
    let req = req.body(Full::new(Bytes::new()));
    let (status, body) = exchange(client, req, timeout, Some(MAX_BODY)).await?;
    judge(&condition, status, &body)
}

/// The verdict on Prometheus's answer: every sample of an instant vector (or the scalar) meets
/// `condition`; no sample at all is a failure (a query that matches nothing proves nothing).
pub fn judge(condition: &Threshold, status: u16, body: &[u8]) -> Result<String, QueryError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|source| QueryError::NotPrometheus { status, source })?;
    if v["status"] == "error" {
        return Err(QueryError::Refused {
            kind: v["errorType"].as_str().unwrap_or("unknown").to_string(),
            message: v["error"].as_str().unwrap_or("no message").to_string(),
        });
    }
    if status != 200 {
        return Err(QueryError::Status(status));
    }
    let data = &v["data"];
    let samples: Vec<(String, &serde_json::Value)> = match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .map(|a| a.iter().map(|s| (labels(&s["metric"]), &s["value"][1])).collect())
            .unwrap_or_default(),
        Some("scalar") => vec![(String::new(), &data["result"][1])],
        Some(other) => return Err(QueryError::ResultType(other.to_string())),
        None => return Err(QueryError::NoResultType),
    };
    if samples.is_empty() {
        return Err(QueryError::NoData);
    }
    let count = samples.len();
    let mut last = String::new();
    for (series, value) in samples {
        let text = value.as_str().unwrap_or("");
        let Ok(x) = text.parse::<f64>() else {
            let value = value.clone();
            return Err(QueryError::NotANumber { series, value });
        };
        last = format!("{series}{x}");
        if !condition.holds(x) {
            return Err(QueryError::Unmet {
                series,
                value: x,
                condition: *condition,
            });
        }
    }
    Ok(if count == 1 {
        last
    } else {
        format!("{count} samples, all {condition}")
    })
}

/// `{a="1", b="2"} = ` for a series with labels, nothing for one without.
fn labels(metric: &serde_json::Value) -> String {
    let Some(m) = metric.as_object().filter(|m| !m.is_empty()) else {
        return String::new();
    };
    let pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    format!("{{{}}} = ", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn cond(s: &str) -> Threshold {
        Threshold::parse(s).expect("a valid condition")
    }

    fn vector(samples: &[(&str, &str)]) -> Vec<u8> {
        let result: Vec<serde_json::Value> = samples
            .iter()
            .map(|(version, v)| serde_json::json!({"metric": {"version": version}, "value": [1700000000.0, v]}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "status": "success", "data": {"resultType": "vector", "result": result}
        }))
        .expect("json")
    }

    /// The verdict as the status says it.
    fn judged(condition: &Threshold, status: u16, body: &[u8]) -> Result<String, String> {
        judge(condition, status, body).map_err(|e| e.to_string())
    }

    #[test]
    fn conditions_parse_and_hold() {
        assert_eq!(cond("< 0.05").to_string(), "< 0.05");
        assert_eq!(cond(" >=0.99 ").to_string(), ">= 0.99");
        assert!(cond("== 0").holds(0.0) && !cond("== 0").holds(0.1));
        assert!(cond("!= 1").holds(f64::NAN) && !cond("< 1").holds(f64::NAN));
        assert!(cond("<= 1e-3").holds(0.001) && cond("> -2").holds(-1.0));
        for bad in ["0.05", "< abc", "=< 1", "< inf", "<"] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_sample_must_meet_the_condition_and_no_data_fails() {
        let lt = cond("< 0.05");
        assert_eq!(
            judged(&lt, 200, &vector(&[("v2", "0.01")])),
            Ok("{version=\"v2\"} = 0.01".into())
        );
        assert_eq!(
            judged(&lt, 200, &vector(&[("v1", "0.01"), ("v2", "0.5")])),
            Err("{version=\"v2\"} = 0.5 (expected < 0.05)".into())
        );
        assert_eq!(
            judged(&lt, 200, &vector(&[("v1", "0"), ("v2", "0.02")])),
            Ok("2 samples, all < 0.05".into())
        );
        assert_eq!(
            judged(&lt, 200, &vector(&[])),
            Err("no data: the query returned no samples".into())
        );
        assert_eq!(
            judged(&lt, 200, &vector(&[("v2", "NaN")])),
            Err("{version=\"v2\"} = NaN (expected < 0.05)".into())
        );
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.2"]}}"#;
        assert_eq!(judged(&lt, 200, scalar), Err("0.2 (expected < 0.05)".into()));
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(judged(&lt, 200, matrix).unwrap_err().contains("returned a matrix"));
    }

    #[test]
    fn prometheus_errors_are_reported_with_their_message() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#;
        assert_eq!(
            judged(&cond("< 1"), 400, body),
            Err("query error (bad_data): 1:5: parse error: unexpected end of input".into())
        );
        assert_eq!(
            judged(&cond("< 1"), 502, b"<html>bad gateway</html>"),
            Err("HTTP 502, not a Prometheus API answer".into())
        );
    }

    #[test]
    fn the_query_is_url_encoded_and_credentials_come_from_the_secret() {
        assert_eq!(
            query_url("http://prom:9090/", r#"max(errors{version="v2"}) > 0"#),
            "http://prom:9090/api/v1/query?query=max%28errors%7Bversion%3D%22v2%22%7D%29+%3E+0"
        );
        let secret = |pairs: &[(&str, &str)]| Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        let auth = |pairs: &[(&str, &str)]| auth_from("ns", "creds", &secret(pairs));
        assert_eq!(auth(&[("token", "abc\n")]).ok(), Some(Auth("Bearer abc".into())));
        assert_eq!(
            auth(&[("username", "u"), ("password", "p")]).ok(),
            Some(Auth("Basic dTpw".into()))
        );
        assert_eq!(
            auth(&[("username", "u")]).map_err(|e| e.to_string()),
            Err("Secret ns/creds has neither `token` nor `username` and `password`".into())
        );
    }
}
