//! Watches: initial events or a resume from a resourceVersion, selector-aware event
//! translation, bookmarks, timeouts, and the fault hooks (partitions, dropped watches).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::error::ApiError;
use crate::handlers::Core;
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, EventKind, Stored};

use super::list::matches_sel;
use super::negotiate::{partial, Output, Shape};
use super::response::full;
use super::{Body, Server};

impl Server {
    pub(super) async fn watch(
        self: &Arc<Self>,
        rt: Arc<ResourceType>,
        ns: Option<String>,
        query: &HashMap<String, String>,
        out: Output,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let (ls, fs) = Self::selectors(&rt, query)?;
        let timeout = match query.get("timeoutSeconds") {
            Some(t) if !t.is_empty() => {
                Some(Duration::from_secs(t.parse().map_err(|_| {
                    ApiError::bad_request(format!("timeoutSeconds: invalid value {t:?}"))
                })?))
            }
            _ => None,
        };
        let bookmarks = query.get("allowWatchBookmarks").is_some_and(|v| v == "true");
        watch_options(query)?;
        let send_initial = query.get("sendInitialEvents").is_some_and(|v| v == "true");
        let rv_param = query.get("resourceVersion").cloned().unwrap_or_default();
        let key = rt.key();
        let mut ctx = WatchCtx {
            rt,
            ns,
            ls,
            fs,
            out,
            bookmarks,
            timeout,
            id: id.to_string(),
            last_rv: 0,
        };
        // From now (with the current objects first), or from a resourceVersion still in the
        // history (the events since then first).
        let (past, initial, rx) = if rv_param.is_empty() || rv_param == "0" || send_initial {
            let (items, rv, rx) = self.core.store.snapshot_and_watch(&key);
            ctx.last_rv = rv;
            (Vec::new(), Some(items), rx)
        } else {
            let rv: u64 = rv_param
                .parse()
                // kube-apiserver does not classify this error: a 500 without a reason.
                .map_err(|_| {
                    ApiError::unclassified(format!(
                        "resourceVersion: Invalid value: {rv_param:?}: strconv.ParseUint: parsing {rv_param:?}: invalid syntax"
                    ))
                })?;
            match self.core.store.watch_from(&key, rv) {
                Ok((past, rx)) => {
                    ctx.last_rv = rv;
                    (past, None, rx)
                }
                Err(oldest) => return Ok(too_old(rv, oldest)),
            }
        };
        let (tx, body) = channel_body();
        let me = self.clone();
        tokio::spawn(async move { me.pump(ctx, past, initial, send_initial, rx, tx).await });
        Ok(watch_response(body, out))
    }

    fn encode_event(&self, ctx: &WatchCtx, kind: &str, obj: &Stored) -> Bytes {
        let mut out = Vec::with_capacity(obj.raw.len() + 32);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match ctx.out {
            Output::Table => {
                let v = crate::resources::views::to_view(&ctx.rt, obj.value());
                let tbl = self.table_for(&ctx.rt, &[v], &obj.rv.to_string(), None, "Object");
                out.extend_from_slice(&serde_json::to_vec(&tbl).unwrap_or_default());
            }
            Output::Meta(version) => {
                out.extend_from_slice(&serde_json::to_vec(&partial(&obj.value(), version)).unwrap_or_default());
            }
            _ if ctx.rt.view.is_some() => {
                let v = crate::resources::views::to_view(&ctx.rt, obj.value());
                out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
            }
            _ => out.extend_from_slice(&obj.raw),
        }
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    fn bookmark(&self, ctx: &WatchCtx, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": ctx.last_rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let ev = json!({"type": "BOOKMARK", "object": {"kind": ctx.rt.kind, "apiVersion": ctx.rt.api_version(), "metadata": meta}});
        let mut v = serde_json::to_vec(&ev).unwrap_or_default();
        v.push(b'\n');
        Bytes::from(v)
    }

    /// Translate an event for one watcher: selectors turn entering/leaving into ADDED/DELETED.
    fn translate(ctx: &WatchCtx, ev: &Event) -> Option<&'static str> {
        if ev.key != ctx.rt.key() {
            return None;
        }
        if let Some(ns) = &ctx.ns {
            if &ev.obj.namespace != ns {
                return None;
            }
        }
        let now = matches_sel(&ev.obj, &ctx.ls, &ctx.fs);
        let before = ev.prev.as_ref().map(|p| matches_sel(p, &ctx.ls, &ctx.fs));
        match (ev.kind, before, now) {
            (EventKind::Added, _, true) => Some("ADDED"),
            (EventKind::Deleted, Some(true), _) | (EventKind::Deleted, None, true) => Some("DELETED"),
            (EventKind::Modified, Some(true), true) => Some("MODIFIED"),
            (EventKind::Modified, Some(false) | None, true) => Some("ADDED"),
            (EventKind::Modified, Some(true), false) => Some("DELETED"),
            _ => None,
        }
    }

    async fn pump(
        self: Arc<Self>,
        mut ctx: WatchCtx,
        past: Vec<Arc<Event>>,
        initial: Option<Vec<Arc<Stored>>>,
        initial_end_bookmark: bool,
        mut rx: broadcast::Receiver<Arc<Event>>,
        tx: mpsc::Sender<Bytes>,
    ) {
        self.core.open_watches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _guard = WatchGuard(self.core.clone());
        let deadline = ctx.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut drops = self.faults.watch_drops();
        drops.borrow_and_update();
        let mut shutdown = self.shutdown.clone();
        if let Some(items) = initial {
            for o in items {
                let ns_ok = ctx.ns.as_ref().is_none_or(|ns| &o.namespace == ns);
                if ns_ok
                    && matches_sel(&o, &ctx.ls, &ctx.fs)
                    && tx.send(self.encode_event(&ctx, "ADDED", &o)).await.is_err()
                {
                    return;
                }
            }
            if initial_end_bookmark && tx.send(self.bookmark(&ctx, true)).await.is_err() {
                return;
            }
        }
        for ev in past {
            ctx.last_rv = ev.rv;
            if let Some(kind) = Self::translate(&ctx, &ev) {
                if tx.send(self.encode_event(&ctx, kind, &ev.obj)).await.is_err() {
                    return;
                }
            }
        }
        let mut tick = tokio::time::interval(self.bookmark_interval);
        tick.tick().await;
        loop {
            let sleep_until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= ctx.last_rv {
                            continue;
                        }
                        let delay = loop {
                            match self.faults.watch_delay(&ctx.id, &ctx.rt.plural) {
                                Some(delay) => break delay,
                                // Partitioned: the client hears nothing until released.
                                None => self.faults.wait_released(&ctx.id).await,
                            }
                        };
                        if !delay.is_zero() {
                            // A lagging watch: each event a fixed time after its write, in order.
                            tokio::time::sleep_until((ev.at + delay).into()).await;
                        }
                        ctx.last_rv = ev.rv;
                        if let Some(kind) = Self::translate(&ctx, &ev) {
                            if tx.send(self.encode_event(&ctx, kind, &ev.obj)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // Too slow a reader: end the watch; the client resumes from its last RV.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if ctx.bookmarks => {
                    // As the watch cache's bookmarks, which follow etcd's progress: once every
                    // event of this resource up to the store's version has been sent, the
                    // bookmark says that version (read first: an event at or below it is then
                    // already in the channel), so an idle watch resumes from a recent one.
                    let now = self.core.store.current_rv();
                    if rx.is_empty() {
                        ctx.last_rv = ctx.last_rv.max(now);
                    }
                    if !self.faults.is_held(&ctx.id) && tx.send(self.bookmark(&ctx, false)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(sleep_until) => {
                    if deadline.is_some() {
                        return;
                    }
                }
                r = drops.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let target = drops.borrow().1.clone();
                    if target.is_none_or(|c| ctx.id.contains(&c)) {
                        return;
                    }
                }
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
        }
    }
}

/// Whether `sendInitialEvents` is served: kube-apiserver v1.33's WatchList feature gate, off
/// by default there (the initial-events stream of [`Server::watch`] serves it when on).
const WATCH_LIST: bool = false;

/// A watch's `sendInitialEvents` and `resourceVersionMatch`, checked as kube-apiserver's
/// `validateWatchOptions` checks them (the same causes, in the same order).
fn watch_options(query: &HashMap<String, String>) -> Result<(), ApiError> {
    let send_initial = query.get("sendInitialEvents").filter(|v| !v.is_empty());
    let rv_match = query.get("resourceVersionMatch").map(String::as_str).unwrap_or("");
    let cause = |field: &str, reason: &str, message: String| crate::error::StatusCause {
        reason: reason.into(),
        message,
        field: field.into(),
    };
    let mut causes = Vec::new();
    if send_initial.is_some() {
        if rv_match != "NotOlderThan" {
            causes.push(cause(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            ));
        }
        if !WATCH_LIST {
            causes.push(cause(
                "sendInitialEvents",
                "FieldValueForbidden",
                "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
                    .into(),
            ));
        }
    }
    if !rv_match.is_empty() {
        if send_initial.is_none() {
            causes.push(cause(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
            ));
        }
        if rv_match != "NotOlderThan" {
            causes.push(cause(
                "resourceVersionMatch",
                "FieldValueNotSupported",
                format!("Unsupported value: {rv_match:?}: supported values: \"NotOlderThan\""),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", causes))
    }
}

/// Counts a watch as open for as long as it streams.
struct WatchGuard(Arc<Core>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

struct WatchCtx {
    rt: Arc<ResourceType>,
    ns: Option<String>,
    ls: LabelSelector,
    fs: FieldSelector,
    out: Output,
    bookmarks: bool,
    timeout: Option<Duration>,
    id: String,
    last_rv: u64,
}

fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    (tx, StreamBody::new(stream).boxed())
}

fn watch_response(body: Body, out: Output) -> Response<Body> {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, out.content_type(Shape::Watch))
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body)
        .unwrap_or_else(|_| Response::new(full("")))
}

/// A watch from a resourceVersion no longer in the history: one ERROR event (410 Gone), as
/// kube-apiserver sends it, and the end of the stream.
fn too_old(rv: u64, oldest: u64) -> Response<Body> {
    let e = ApiError::gone(format!("too old resource version: {rv} ({oldest})"));
    let ev = json!({"type": "ERROR", "object": e.to_status()});
    let mut line = serde_json::to_vec(&ev).unwrap_or_default();
    line.push(b'\n');
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(line))
        .unwrap_or_else(|_| Response::new(full("")))
}
