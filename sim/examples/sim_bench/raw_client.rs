//! A minimal HTTP/1.1 keep-alive client: Content-Length request bodies, Content-Length or chunked
//! responses. Just enough for the simulator, with as little client-side work as possible.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub(crate) struct RawClient {
    io: BufReader<TcpStream>,
    host: String,
    identity: String,
    req: Vec<u8>,
    line: String,
}

pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) content_length: Option<usize>,
    pub(crate) chunked: bool,
}

impl RawClient {
    pub(crate) async fn connect(addr: SocketAddr, identity: &str) -> Result<Self> {
        let s = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to the simulator at {addr}"))?;
        s.set_nodelay(true).context("setting TCP_NODELAY")?;
        Ok(RawClient {
            io: BufReader::with_capacity(64 * 1024, s),
            host: addr.to_string(),
            identity: identity.to_string(),
            req: Vec::with_capacity(4096),
            line: String::new(),
        })
    }

    pub(crate) async fn send(&mut self, method: &str, path: &str, body: &[u8]) -> Result<()> {
        self.req.clear();
        write!(
            self.req,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sim-bench-raw/{}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\n",
            self.host,
            self.identity,
            baton_sim::ADMIN
        )?;
        if method != "GET" {
            write!(
                self.req,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )?;
        }
        self.req.extend_from_slice(b"\r\n");
        self.req.extend_from_slice(body);
        self.io
            .get_mut()
            .write_all(&self.req)
            .await
            .with_context(|| format!("sending {method} {path}"))
    }

    async fn read_line(&mut self) -> Result<()> {
        self.line.clear();
        let n = self.io.read_line(&mut self.line).await.context("reading a response")?;
        if n == 0 {
            bail!("the simulator closed the connection");
        }
        Ok(())
    }

    pub(crate) async fn read_head(&mut self) -> Result<Head> {
        self.read_line().await?;
        let status = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("malformed status line {:?}", self.line))?;
        let mut head = Head {
            status,
            content_length: None,
            chunked: false,
        };
        loop {
            self.read_line().await?;
            let l = self.line.trim_end();
            if l.is_empty() {
                return Ok(head);
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    head.content_length = Some(v.parse().with_context(|| format!("Content-Length {v:?}"))?);
                } else if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
                    head.chunked = true;
                }
            }
        }
    }

    /// Append one chunk of a chunked body to `out`; false at the last (empty) chunk.
    pub(crate) async fn read_chunk(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        self.read_line().await?;
        let size_text = self.line.trim_end().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).with_context(|| format!("chunk size {size_text:?}"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                self.read_line().await?;
                if self.line.trim_end().is_empty() {
                    return Ok(false);
                }
            }
        }
        let start = out.len();
        out.resize(start + size, 0);
        self.io.read_exact(&mut out[start..]).await.context("reading a chunk")?;
        let mut crlf = [0u8; 2];
        self.io.read_exact(&mut crlf).await.context("reading a chunk's CRLF")?;
        Ok(true)
    }

    /// One request; the status and the whole body.
    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        self.send(method, path, body).await?;
        let head = self.read_head().await?;
        let mut out = Vec::new();
        if head.chunked {
            while self.read_chunk(&mut out).await? {}
        } else if let Some(n) = head.content_length {
            out.resize(n, 0);
            self.io.read_exact(&mut out).await.context("reading a response body")?;
        } else {
            bail!("{method} {path}: response has neither Content-Length nor chunked encoding");
        }
        Ok((head.status, out))
    }

    /// A request that must succeed (2xx); the body.
    pub(crate) async fn ok(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>> {
        let (status, out) = self.request(method, path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: HTTP {status}: {}", String::from_utf8_lossy(&out));
        }
        Ok(out)
    }
}

/// The string value of the first `"key":"…"` in compact JSON, without parsing the document.
pub(crate) fn str_field<'a>(json: &'a [u8], key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let at = find(json, pat.as_bytes())? + pat.len();
    let end = json[at..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&json[at..at + end]).ok()
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) async fn create_namespace(addr: SocketAddr, name: &str) -> Result<()> {
    let mut c = RawClient::connect(addr, "sim-bench").await?;
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).to_string();
    c.ok("POST", "/api/v1/namespaces", body.as_bytes())
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}
