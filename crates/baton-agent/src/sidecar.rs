//! `baton agent`: the [`Agent`] as a sidecar for applications in any language.
//!
//! * It writes the listeners this pod must run to a JSON file on a shared volume, atomically
//!   (write a temporary file in the same directory, then rename), and serves the same document
//!   on localhost: `GET /listeners` (now), `GET /listeners?wait=<version>` (long poll: answers
//!   once the version is greater than `<version>`, or after 30 s with the current one).
//! * The application acknowledges that it has applied a version (started what is listed and,
//!   above all, *stopped what is no longer listed*) with `POST /ack?version=<version>`. A Lease
//!   is released only after the version that dropped its listener is acknowledged, or, for
//!   applications that only read the file, after `ack_timeout` (the contract is then: stop a
//!   listener within `ack_timeout` of its disappearing from the file). An application that
//!   acknowledges (it did once since the sidecar started) is waited for longer: a stop may take
//!   it more than `ack_timeout`, and it acknowledges once it is done; without its ack the Lease
//!   goes only once the listener's last published `validUntil`, when it stops whatever it heard,
//!   plus `ack_timeout` have passed.
//!
//! * Versions increase across sidecar restarts (the first is the wall clock in milliseconds), and
//!   an acknowledgement of a version that was never published is refused: a stale ack from before
//!   a restart cannot release anything.
//!
//! Document:
//! ```json
//! {"version": 7, "pod": "user-service-0-7d4a", "namespace": "default",
//!  "listeners": [{"listenerSet": "sxt", "id": "listener1", "config": "…", "fencingToken": 4}]}
//! ```
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use tokio::time::Instant;

use super::{Agent, AgentConfig, AgentEvent, Stop, ValidUntil};
use render::Held;

/// Settings of the sidecar.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    pub agent: AgentConfig,
    /// Where to write `listeners.json`.
    pub file: PathBuf,
    /// Where to serve HTTP (keep it on localhost).
    pub listen: SocketAddr,
    /// Release a stopped listener's Lease after this long even without an acknowledgement.
    pub ack_timeout: Duration,
}

/// One listener to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerEntry {
    pub listener_set: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    pub fencing_token: i32,
    /// When this pod's agent stops the listener unless it renews the Lease first (node wall
    /// clock, RFC 3339): the application stops it by then whatever it hears from the sidecar,
    /// because after it the Lease may be given to another pod. Moved forward as renewals succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// The whole `listeners.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub version: u64,
    pub pod: String,
    pub namespace: String,
    pub listeners: Vec<ListenerEntry>,
    /// The earliest `validUntil` of the listeners (absent when there are none). Sidecars before
    /// this one wrote it as `valid_until`, which is read too.
    #[serde(default, alias = "valid_until", skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// One published version of the document, rendered once: the file and every long poll get the
/// same bytes.
struct Published {
    version: u64,
    bytes: Bytes,
}

struct Shared {
    /// The latest version, rendered (a reader takes it and lets the channel go).
    doc: watch::Sender<Arc<Published>>,
    pod: String,
    namespace: String,
    /// Highest version the application acknowledged.
    acked: watch::Sender<u64>,
    /// Highest version written to the file.
    written: watch::Sender<u64>,
}

/// Publish moved deadlines at most this often (each renewal moves one listener's; every
/// publication is a new version, written to the file and woken long polls). The published
/// `validUntil` then lags a listener's real deadline by at most this plus one renewal interval.
const REFRESH: Duration = Duration::from_millis(250);
/// Retry a failed write of the file this often.
const WRITE_RETRY: Duration = Duration::from_millis(500);
/// On exit, how long to keep trying to write the final (empty) file.
const FINAL_WRITE: Duration = Duration::from_secs(5);

/// Write `bytes` to `path` atomically: temporary file in the same directory, then rename, so a
/// reader sees the old file or the new one, never part of one. Not synced to the disk: the
/// reader is the application in the same pod, which reads the kernel's pages, and a crash of
/// the node that could lose them ends the pod too (a new sidecar writes its first document
/// before anything else). A sync per version cost the drain's receiving agents a disk flush per
/// listener that arrived.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("listeners.json");
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)
}

/// The first version of a sidecar's life: later than any version an earlier incarnation
/// published (unless the wall clock went back), so an application never waits on a stale one.
fn first_version() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(1)
        .max(1)
}

/// Run the sidecar until `shutdown` resolves; then stop everything (empty file), wait for the
/// acknowledgements (bounded) and release every Lease.
pub async fn run(client: kube::Client, cfg: SidecarConfig, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let listener = TcpListener::bind(cfg.listen).await?;
    run_on(client, cfg, listener, shutdown).await
}

/// [`run`] serving on an already bound `listener` (`cfg.listen` is not used).
pub async fn run_on(
    client: kube::Client,
    mut cfg: SidecarConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // On shutdown a file-only application is given `ack_timeout` per stop: the agent must wait
    // at least that long before it gives up on releasing (and lets the Leases expire instead).
    cfg.agent.stop_timeout = cfg.agent.stop_timeout.max(cfg.ack_timeout + Duration::from_secs(2));
    let shared = start_empty(&cfg)?;
    info!(addr = %listener.local_addr()?, file = %cfg.file.display(), "baton agent sidecar serving");
    let server = tokio::spawn(serve(listener, shared.clone()));
    let writer = tokio::spawn(write_file(cfg.file.clone(), shared.clone()));
    let mut agent = Agent::start(client, cfg.agent.clone());
    tokio::pin!(shutdown);
    follow(&mut agent, &shared, cfg.ack_timeout, shutdown.as_mut()).await;
    // Leave the final (empty) document in the file before going.
    let last = shared.doc.borrow().version;
    let mut written = shared.written.subscribe();
    if tokio::time::timeout(FINAL_WRITE, written.wait_for(|w| *w >= last))
        .await
        .is_err()
    {
        warn!(file = %cfg.file.display(), "the final listeners file could not be written");
    }
    writer.abort();
    server.abort();
    Ok(())
}

/// The listeners the application runs, by (set, listener).
type Running = BTreeMap<(String, String), Held>;

/// The sidecar's first document, with no listeners, written to `cfg.file` before anything is
/// served: whatever an earlier incarnation listed is not ours any more.
fn start_empty(cfg: &SidecarConfig) -> std::io::Result<Arc<Shared>> {
    let first = first_version();
    let bytes = render::document(
        first,
        &cfg.agent.pod_name,
        &cfg.agent.namespace,
        std::iter::empty(),
        None,
    );
    write_atomically(&cfg.file, &bytes)?;
    Ok(Arc::new(Shared {
        doc: watch::channel(Arc::new(Published { version: first, bytes })).0,
        pod: cfg.agent.pod_name.clone(),
        namespace: cfg.agent.namespace.clone(),
        acked: watch::channel(0).0,
        written: watch::channel(first).0,
    }))
}

/// Follow `agent` until it ends: publish what it starts and stops (each stop held until the
/// application applied it) and the deadlines its renewals move; when `shutdown` resolves, shut
/// it down (it stops everything, then releases).
async fn follow(
    agent: &mut Agent,
    shared: &Shared,
    ack_timeout: Duration,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) {
    let mut valid = agent.valid_until();
    let mut valid_open = true;
    // When to publish the deadlines the last renewals moved (coalesced: see REFRESH).
    let mut refresh: Option<Instant> = None;
    let mut last_publish = Instant::now();
    let mut stopping = false;
    let mut running = Running::new();
    // The `validUntil` each listener was last published with.
    let mut told = ValidUntil::new();
    loop {
        tokio::select! {
            ev = agent.next() => {
                let Some(first) = ev else { break };
                last_publish = Instant::now();
                let stops = take_waiting(agent, first, &mut running);
                let version = publish(shared, &running, &valid.borrow_and_update(), &mut told);
                hold_until_applied(shared, stops, version, ack_timeout, &mut told);
            }
            r = valid.changed(), if valid_open && refresh.is_none() => {
                valid_open = r.is_ok();
                refresh = Some((last_publish + REFRESH).max(Instant::now()));
            }
            _ = tokio::time::sleep_until(refresh.unwrap_or_else(Instant::now)), if refresh.is_some() => {
                refresh = None;
                if !running.is_empty() {
                    last_publish = Instant::now();
                    publish(shared, &running, &valid.borrow_and_update(), &mut told);
                }
            }
            _ = &mut shutdown, if !stopping => {
                stopping = true;
                agent.shutdown();
            }
        }
    }
}

/// Apply `first` and every event already waiting to `running`; returns the stops among them.
/// Everything already waiting goes into one version: a burst of 500 starts is one file write and
/// one answer to the long polls, not 500.
fn take_waiting(agent: &mut Agent, first: AgentEvent, running: &mut Running) -> Vec<Stop> {
    let mut stops = Vec::new();
    let mut next = Some(first);
    while let Some(ev) = next {
        match ev {
            AgentEvent::Start(s) => {
                let entry = ListenerEntry {
                    listener_set: s.set,
                    id: s.listener,
                    config: s.config,
                    fencing_token: s.fencing_token,
                    valid_until: None,
                };
                running.insert((entry.listener_set.clone(), entry.id.clone()), Held::new(&entry));
            }
            AgentEvent::Stop(stop) => {
                running.remove(&(stop.set.clone(), stop.listener.clone()));
                stops.push(stop);
            }
        }
        next = agent.try_next();
    }
    stops
}

/// Hold each of `stops` (and so its release) until the application has applied `version`, or,
/// without its ack, until `ack_timeout` after the file without the listener was written — for
/// an application that acknowledges, until `ack_timeout` after the `validUntil` it was last told
/// for the listener (`told`, which forgets it), if that is later.
fn hold_until_applied(shared: &Shared, stops: Vec<Stop>, version: u64, ack_timeout: Duration, told: &mut ValidUntil) {
    let acknowledges = *shared.acked.borrow() > 0;
    for stop in stops {
        let last_told = told.remove(&(stop.set.clone(), stop.listener.clone()));
        let stopped_by = last_told
            .filter(|_| acknowledges)
            .and_then(|at| at.checked_add(ack_timeout));
        let acked = shared.acked.subscribe();
        let written = shared.written.subscribe();
        tokio::spawn(async move {
            applied(acked, written, version, ack_timeout, stopped_by).await;
            stop.ack();
        });
    }
}

/// Resolves once the application acknowledged `version`, or `timeout` after the file of that
/// version was written and, if given, `stopped_by` has passed. (The channels close only after
/// the sidecar dropped its [`Agent`], when an acknowledgement no longer releases anything.)
async fn applied(
    mut acked: watch::Receiver<u64>,
    mut written: watch::Receiver<u64>,
    version: u64,
    timeout: Duration,
    stopped_by: Option<Instant>,
) {
    let ack = async {
        let _ = acked.wait_for(|a| *a >= version).await;
    };
    let file = async {
        if written.wait_for(|w| *w >= version).await.is_ok() {
            tokio::time::sleep(timeout).await;
            if let Some(at) = stopped_by {
                tokio::time::sleep_until(at).await;
            }
        }
    };
    tokio::select! {
        _ = ack => {}
        _ = file => {}
    }
}

/// Publish the running set, each listener with its `validUntil`, as a new version; returns it.
/// `told` keeps the deadline of each listener the agent runs (its last one, once it is stopping).
/// Rendered here, once, from what `running` holds: the file and the long polls share it.
fn publish(shared: &Shared, running: &Running, valid: &ValidUntil, told: &mut ValidUntil) -> u64 {
    let (now, wall_now) = (Instant::now(), jiff::Timestamp::now());
    // The listeners of one liveness Lease share their deadline: each is written out once.
    let mut texts: Vec<String> = Vec::new();
    let mut place_of: std::collections::HashMap<Instant, usize> = std::collections::HashMap::new();
    let mut places: Vec<usize> = Vec::with_capacity(running.len());
    // `running`, `valid` and `told` are in one key order: each is walked once beside the others.
    let deadlines = merge_join(running.keys(), valid.iter());
    let mut told_iter = told.iter_mut().peekable();
    let mut untold: Vec<((String, String), Instant)> = Vec::new();
    for (key, known) in running.keys().zip(deadlines) {
        // A listener the agent has begun to stop has no deadline any more (it is published as
        // past): its last real one stays, the latest the app can have been told.
        if let Some(at) = known {
            while told_iter.next_if(|(k, _)| *k < key).is_some() {}
            match told_iter.next_if(|(k, _)| *k == key) {
                Some((_, was)) => *was = at,
                None => untold.push((key.clone(), at)),
            }
        }
        // No deadline known (cannot happen: it is published before the Start): already past.
        let until = known.unwrap_or(now);
        let place = *place_of.entry(until).or_insert_with(|| {
            let wall = wall_now
                .checked_add(until.saturating_duration_since(now))
                .unwrap_or(wall_now);
            texts.push(rfc3339_millis(wall));
            texts.len() - 1
        });
        places.push(place);
    }
    told.extend(untold);
    // Every text is of the same format, so the smallest string is the earliest time.
    let earliest = texts.iter().map(String::as_str).min();
    let tails: Vec<String> = texts.iter().map(|t| render::tail(Some(t))).collect();
    let no_deadline = render::tail(None);
    let listeners = running
        .values()
        .zip(&places)
        .map(|(h, i)| (h, tails.get(*i).unwrap_or(&no_deadline).as_str()));
    let version = shared.doc.borrow().version + 1;
    let bytes = render::document(version, &shared.pod, &shared.namespace, listeners, earliest);
    shared.doc.send_replace(Arc::new(Published { version, bytes }));
    version
}

/// For each of `keys` (ascending), its value among `pairs` (ascending by key), if there.
fn merge_join<'a, K: Ord + 'a, V: Copy + 'a>(
    keys: impl Iterator<Item = &'a K>,
    pairs: impl Iterator<Item = (&'a K, &'a V)>,
) -> Vec<Option<V>> {
    let mut pairs = pairs.peekable();
    keys.map(|k| {
        while pairs.next_if(|(p, _)| *p < k).is_some() {}
        pairs.next_if(|(p, _)| *p == k).map(|(_, v)| *v)
    })
    .collect()
}

/// `2025-01-10T10:00:12.345Z`: UTC, milliseconds truncated (never later than the instant).
fn rfc3339_millis(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Keep the file at the latest document, retrying failed writes (an application that only reads
/// the file learns of a stop from it, so a failed write must not be forgotten).
async fn write_file(file: PathBuf, shared: Arc<Shared>) {
    let mut docs = shared.doc.subscribe();
    loop {
        // The latest version's bytes, as rendered once by `publish` (the channel let go first).
        let doc = Arc::clone(&docs.borrow_and_update());
        let due = (doc.version > *shared.written.borrow()).then(|| (doc.version, doc.bytes.clone()));
        if let Some((version, bytes)) = due {
            let path = file.clone();
            let result = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
            match result {
                Ok(Ok(())) => {
                    shared.written.send_modify(|w| *w = (*w).max(version));
                }
                Ok(Err(e)) => {
                    warn!(error = %e, file = %file.display(), "writing the listeners file failed; retrying");
                    tokio::time::sleep(WRITE_RETRY).await;
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, file = %file.display(), "writing the listeners file failed; retrying");
                    tokio::time::sleep(WRITE_RETRY).await;
                    continue;
                }
            }
        }
        if docs.changed().await.is_err() {
            return;
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // E.g. out of file descriptors: do not spin.
                warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, shared.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn query(req: &Request<hyper::body::Incoming>, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.to_string())
    })
}

fn reply(code: StatusCode, body: impl Into<Bytes>, content_type: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("Content-Type", content_type)
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(req: Request<hyper::body::Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    Ok(match (req.method(), path.as_str()) {
        (&Method::GET, "/listeners") => {
            if let Some(wait) = query(&req, "wait").and_then(|w| w.parse::<u64>().ok()) {
                let mut rx = shared.doc.subscribe();
                let _ = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|d| d.version > wait)).await;
            }
            let body = shared.doc.borrow().bytes.clone();
            reply(StatusCode::OK, body, "application/json")
        }
        (&Method::POST, "/ack") => match query(&req, "version").and_then(|v| v.parse::<u64>().ok()) {
            Some(v) => {
                let current = shared.doc.borrow().version;
                if v > current {
                    // Not a version of ours (e.g. from before a restart): it proves nothing.
                    let msg = format!("version {v} was never published (current: {current})\n");
                    reply(StatusCode::CONFLICT, msg.into_bytes(), "text/plain")
                } else {
                    shared.acked.send_modify(|a| *a = (*a).max(v));
                    reply(StatusCode::NO_CONTENT, Vec::new(), "text/plain")
                }
            }
            None => reply(
                StatusCode::BAD_REQUEST,
                b"POST /ack?version=<version>\n".to_vec(),
                "text/plain",
            ),
        },
        (&Method::GET, "/healthz") => reply(StatusCode::OK, b"ok\n".to_vec(), "text/plain"),
        _ => reply(
            StatusCode::NOT_FOUND,
            b"GET /listeners[?wait=<version>], POST /ack?version=<version>, GET /healthz\n".to_vec(),
            "text/plain",
        ),
    })
}

mod render;
#[cfg(test)]
mod tests;
