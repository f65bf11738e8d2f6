//! The HTTP endpoint of `baton controller`: `/metrics` (Prometheus), `/healthz` (the process
//! runs) and `/readyz` (its caches are synced — a standby is ready too).
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::metrics::Metrics;

fn text(code: u16, body: impl Into<Bytes>, content_type: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("Content-Type", content_type)
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Bind `addr` and serve until the task is dropped. Returns the bound address.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    info!(%bound, "serving /metrics, /healthz and /readyz");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (metrics, ready) = (metrics.clone(), ready.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (metrics, ready) = (metrics.clone(), ready.clone());
                    async move {
                        Ok::<_, Infallible>(match req.uri().path() {
                            "/metrics" => text(
                                200,
                                metrics.render(),
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            ),
                            "/healthz" | "/livez" => text(200, "ok", "text/plain"),
                            "/readyz" if ready.load(Ordering::Relaxed) => text(200, "ok", "text/plain"),
                            "/readyz" => text(503, "caches not synced", "text/plain"),
                            _ => text(404, "not found", "text/plain"),
                        })
                    }
                });
                let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(e) = conn.serve_connection(TokioIo::new(stream), svc).await {
                    warn!(error = %e, "probe connection");
                }
            });
        }
    });
    Ok(bound)
}
