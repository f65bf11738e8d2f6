//! The Kubernetes API requests the operator makes, by verb and code: a tower layer on the
//! client.
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::future::BoxFuture;

use super::runtime::RestLabels;
use super::{Metrics, RequestLabels};

/// A tower layer counting the client's requests by verb and response code (and, as client-go's
/// `rest_client_requests_total`, by code, method and `host`, the API server's host:port).
#[derive(Clone)]
pub struct CountRequests(pub Arc<Metrics>, pub String);

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
            host: self.1.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
    host: String,
}

fn verb<B>(req: &http::Request<B>) -> &'static str {
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    match *req.method() {
        http::Method::GET if watch => "watch",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let verb = verb(&req);
        let method = req.method().as_str().to_string();
        let host = req
            .uri()
            .authority()
            .map_or_else(|| self.host.clone(), |a| a.to_string());
        let metrics = self.metrics.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            let code = match &r {
                Ok(resp) => resp.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            metrics
                .runtime
                .rest_requests
                .get_or_create(&RestLabels {
                    code: code.clone(),
                    method,
                    host,
                })
                .inc();
            metrics
                .api_requests
                .get_or_create(&RequestLabels {
                    verb: verb.to_string(),
                    code,
                })
                .inc();
            r
        })
    }
}
