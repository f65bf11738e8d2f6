//! The HTTP client of checks and webhooks (http and https with the system's roots), one
//! request-and-answer exchange with its timeout, and why an exchange failed ([`HttpError`]).
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::warn;

/// The HTTP client of checks and notifications (http and https with the system's roots).
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for checks and notifications; None without TLS roots (said in the log).
pub fn http_client() -> Option<HttpClient> {
    match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(b) => Some(Client::builder(TokioExecutor::new()).build(b.https_or_http().enable_http1().build())),
        Err(e) => {
            warn!(error = %e, "no TLS roots: HTTP checks and notifications cannot run");
            None
        }
    }
}

/// An error with its causes ("client error (Connect): tcp connect error: Connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Why a request of a check or a notification got no usable answer (any answer's status is the
/// caller's to judge).
#[derive(Clone, Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no TLS roots on the controller")]
    NoTlsRoots,
    #[error("bad request: {0}")]
    BadRequest(#[source] Arc<http::Error>),
    /// The request did not complete: the client's error with its causes ([`error_chain`]).
    #[error("{0}")]
    Transport(String),
    #[error("HTTP {status}, reading the body: {source}")]
    Body {
        status: u16,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    #[error("no answer within {}s", .0.as_secs())]
    Timeout(Duration),
}

/// Send `req` (built by the caller; a build error is [`HttpError::BadRequest`]) with `client`
/// and wait at most `timeout` for the status and, up to `body_limit` bytes, the body (`None`:
/// the body is not read).
pub async fn exchange(
    client: Option<&HttpClient>,
    req: Result<http::Request<Full<Bytes>>, http::Error>,
    timeout: Duration,
    body_limit: Option<usize>,
) -> Result<(u16, Bytes), HttpError> {
    let client = client.ok_or(HttpError::NoTlsRoots)?;
    let req = req.map_err(|e| HttpError::BadRequest(Arc::new(e)))?;
    let answer = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| HttpError::Transport(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let Some(limit) = body_limit else {
            return Ok((status, Bytes::new()));
        };
        let body = Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|source| HttpError::Body {
                status,
                source: Arc::from(source),
            })?;
        Ok((status, body.to_bytes()))
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}
