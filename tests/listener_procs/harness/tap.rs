//! A tap between an app and its sidecar: a localhost proxy the app is given as its sidecar, which
//! forwards each exchange to the sidecar and records what the app was told and what it said —
//! every document it received (with the instant it was handed over, on the harness's monotonic
//! clock and on the wall clock, so each `validUntil` becomes an instant the app's log can be
//! compared with) and every acknowledgement it sent (the instant it arrived, the answer).
//!
//! Each exchange goes to the sidecar on a connection of its own (`Connection: close` both ways):
//! a sidecar that died or restarted is met as the app would meet it, the connection cut or
//! refused (the tap then closes the app's connection without an answer).
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::app::{AbortOnDrop, Doc};

/// A document as the app received it.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// When the tap handed it over (monotonic, and the wall clock read at the same moment).
    pub at: Instant,
    pub wall: jiff::Timestamp,
    pub doc: Doc,
}

impl Delivered {
    /// The entry of `key` (`<set>/<id>`) with fencing token `token`: None if not listed so; else
    /// its `validUntil` as an instant of the harness's clock (None: the entry has none).
    pub fn valid_until(&self, key: &str, token: i32) -> Option<Option<Instant>> {
        let e = self
            .doc
            .listeners
            .iter()
            .find(|e| format!("{}/{}", e.listener_set, e.id) == key && e.fencing_token == token)?;
        let Some(until) = e.valid_until.as_deref() else {
            return Some(None);
        };
        let until: jiff::Timestamp = until.parse().ok()?;
        let ahead = until.duration_since(self.wall);
        let delta = Duration::try_from(ahead.abs()).unwrap_or_default();
        Some(Some(if ahead.is_negative() {
            self.at.checked_sub(delta).unwrap_or(self.at)
        } else {
            self.at + delta
        }))
    }

    /// Whether `key` is listed with `token`.
    pub fn lists(&self, key: &str, token: i32) -> bool {
        self.valid_until(key, token).is_some()
    }
}

/// An acknowledgement the app sent.
#[derive(Clone, Debug)]
pub struct Ack {
    /// When the tap received it.
    pub at: Instant,
    pub version: u64,
    /// The sidecar's answer (None: the sidecar did not answer).
    pub status: Option<u16>,
}

/// What went through one tap.
#[derive(Default)]
pub struct TapLog {
    inner: Mutex<(Vec<Delivered>, Vec<Ack>)>,
}

impl TapLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Delivered>, Vec<Ack>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every document delivered, oldest first.
    pub fn documents(&self) -> Vec<Delivered> {
        self.lock().0.clone()
    }

    /// Every acknowledgement sent, oldest first.
    pub fn acks(&self) -> Vec<Ack> {
        self.lock().1.clone()
    }
}

/// A running tap: apps connect to `addr`; dropping it closes it.
pub struct Tap {
    pub addr: SocketAddr,
    pub log: Arc<TapLog>,
    _task: AbortOnDrop,
}

impl Tap {
    /// A tap in front of the sidecar at `sidecar` (call within a Tokio runtime).
    pub fn start(sidecar: SocketAddr) -> Result<Tap, String> {
        let std = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a tap: {e}"))?;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = std.local_addr().map_err(|e| e.to_string())?;
        let listener = TcpListener::from_std(std).map_err(|e| e.to_string())?;
        let log = Arc::new(TapLog::default());
        let task = tokio::spawn(accept(listener, sidecar, log.clone()));
        Ok(Tap {
            addr,
            log,
            _task: AbortOnDrop(task),
        })
    }
}

async fn accept(listener: TcpListener, sidecar: SocketAddr, log: Arc<TapLog>) {
    // Aborted with the tap, this set aborts every exchange under way.
    let mut exchanges = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = exchanges.join_next(), if !exchanges.is_empty() => continue,
        };
        match accepted {
            Ok((app, _)) => {
                exchanges.spawn(exchange(app, sidecar, log.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// One request of the app, forwarded; its answer handed back and recorded.
async fn exchange(mut app: TcpStream, sidecar: SocketAddr, log: Arc<TapLog>) {
    let Some((head, body)) = read_request(&mut app).await else {
        return;
    };
    let received = Instant::now();
    let mut words = head.split_whitespace();
    let (method, target) = (
        words.next().unwrap_or_default().to_string(),
        words.next().unwrap_or_default().to_string(),
    );
    let mut request = closing(&head).into_bytes();
    request.extend_from_slice(&body);
    let answer = forward(sidecar, &request).await;
    let ack_version = (method == "POST")
        .then(|| target.strip_prefix("/ack?version="))
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let Some(answer) = answer else {
        if let Some(version) = ack_version {
            log.lock().1.push(Ack {
                at: received,
                version,
                status: None,
            });
        }
        return;
    };
    let (status, answer_head, answer_body) = split_response(&answer);
    let mut back = closing(&answer_head).into_bytes();
    back.extend_from_slice(answer_body);
    // Stamped as it is handed over: the app may act on it before this task runs again.
    let (at, wall) = (Instant::now(), jiff::Timestamp::now());
    let delivered = app.write_all(&back).await.is_ok() && app.flush().await.is_ok();
    if let Some(version) = ack_version {
        log.lock().1.push(Ack {
            at: received,
            version,
            status,
        });
    } else if delivered && method == "GET" && target.starts_with("/listeners") && status == Some(200) {
        if let Ok(doc) = serde_json::from_slice::<Doc>(answer_body) {
            log.lock().0.push(Delivered { at, wall, doc });
        }
    }
}

/// The request's head (through the blank line) and its body (`Content-Length`), or None if the
/// app closed the connection first.
async fn read_request(app: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = app.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let want = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < end + want {
        let n = app.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[end..end + want].to_vec()))
}

/// Send `request` to the sidecar on a connection of its own and read the answer to the end (the
/// sidecar closes it: the request says `Connection: close`). None if it could not be reached or
/// cut the connection before answering.
async fn forward(sidecar: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(sidecar).await.ok()?;
    s.write_all(request).await.ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.ok()?;
    (!answer.is_empty()).then_some(answer)
}

/// The status, head and body of a whole response (a body of unknown framing: all after the head).
fn split_response(answer: &[u8]) -> (Option<u16>, String, &[u8]) {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    (status, head, &answer[end..])
}

/// `head` (request or response, through its blank line) with `Connection: close` in place of any
/// `Connection` header.
fn closing(head: &str) -> String {
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// The value of header `name` (lower case) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_headers_are_replaced_by_close() {
        let head = "GET /listeners?wait=3 HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n\r\n";
        assert_eq!(
            closing(head),
            "GET /listeners?wait=3 HTTP/1.1\r\nhost: x\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_valid_until_becomes_an_instant_of_the_harness_clock() {
        let wall: jiff::Timestamp = "2026-01-10T10:00:00.000Z".parse().expect("a timestamp");
        let doc: Doc = serde_json::from_str(
            r#"{"version": 7, "listeners": [{"listenerSet": "s", "id": "a", "fencingToken": 2,
                "validUntil": "2026-01-10T10:00:02.500Z"}]}"#,
        )
        .expect("a document");
        let at = Instant::now();
        let d = Delivered { at, wall, doc };
        assert_eq!(d.valid_until("s/a", 2), Some(Some(at + Duration::from_millis(2500))));
        assert_eq!(d.valid_until("s/a", 1), None, "another token is not listed");
        assert_eq!(d.valid_until("s/b", 2), None);
    }
}
