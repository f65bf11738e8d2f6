//! The HTTP client of checks and webhooks: http and https with the system's roots.
use bytes::Bytes;
use http_body_util::Full;
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
