//! What keeps another web page from using the dashboard with the user's credentials:
//!
//! * **Host** — every request (but `/healthz`) must name an allowed host: the loopback names
//!   and the bound address, plus `--allowed-host`. A page on `evil.example` that resolves its
//!   name to 127.0.0.1 (DNS rebinding) sends `Host: evil.example` and is refused, so it can
//!   neither read the pages nor the live stream.
//! * **CSRF** — every POST must carry the per-process random token the pages embed
//!   (`X-CSRF-Token`), an `Origin` naming the same host, and a JSON body (a cross-site form
//!   cannot send one without a CORS preflight, which is never granted).
//! * **Content-Security-Policy** — scripts and styles only from the dashboard itself, no inline
//!   script or style, no framing: whatever came from the cluster is text, never code, even if
//!   an escaping bug let markup through.
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};

/// The policy every answer carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Header of the CSRF token on POSTs.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A fresh random token (122 random bits from two v4 UUIDs' worth of the OS's randomness).
pub fn new_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Hosts a request may name.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// Host names (without port), lowercase; `*` allows any.
    names: Vec<String>,
}

impl Hosts {
    /// The loopback names, the bound address's host (unless it is unspecified) and `extra`.
    pub fn new(bound: std::net::SocketAddr, extra: &[String]) -> Hosts {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
        if !bound.ip().is_unspecified() {
            names.push(match bound.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
        }
        names.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
        Hosts { names }
    }

    /// Whether `host` (a Host header: name, optional port) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        !name.is_empty() && self.names.iter().any(|n| n == "*" || *n == name)
    }
}

/// The name part of `host[:port]` (IPv6 literals keep their brackets).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Why a request is refused, if it is: (status, message for the page).
pub fn check(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    hosts: &Hosts,
    token: &str,
) -> Option<(StatusCode, String)> {
    if path == "/healthz" {
        return None;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !hosts.allows(host) {
        return Some((
            StatusCode::FORBIDDEN,
            format!("host {host:?} is not allowed (run with --allowed-host to serve it)"),
        ));
    }
    if method != Method::POST {
        return None;
    }
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    let same_origin = origin.is_some_and(|o| {
        let authority = o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
            .unwrap_or("");
        authority.eq_ignore_ascii_case(host)
    });
    if !same_origin {
        return Some((
            StatusCode::FORBIDDEN,
            format!(
                "cross-origin request refused (Origin {:?}, Host {host:?})",
                origin.unwrap_or("")
            ),
        ));
    }
    let sent = headers.get(CSRF_HEADER).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !same_token(sent, token) {
        return Some((
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page".to_string(),
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|c| {
            c.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Some((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "actions take a JSON body (Content-Type: application/json)".to_string(),
        ));
    }
    None
}

/// Compare without an early exit on the first differing byte.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The headers every answer carries.
pub fn secure(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    fn hosts() -> Hosts {
        Hosts::new("127.0.0.1:3100".parse().expect("address"), &["dash.example".into()])
    }

    #[test]
    fn hosts_are_loopback_the_bound_address_and_the_allowed() {
        let h = hosts();
        for ok in [
            "localhost:3100",
            "127.0.0.1:3100",
            "[::1]:3100",
            "LOCALHOST",
            "dash.example",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:3100",
            "",
            "localhost.evil.example",
            "127.0.0.2:3100",
            "[::2]:3100",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        let any = Hosts::new("0.0.0.0:3100".parse().expect("address"), &["*".into()]);
        assert!(any.allows("anything:1"));
    }

    #[test]
    fn posts_need_origin_token_and_json() {
        let h = hosts();
        let t = "secret";
        let post = Method::POST;
        let good = [
            ("host", "127.0.0.1:3100"),
            ("origin", "http://127.0.0.1:3100"),
            (CSRF_HEADER, t),
            ("content-type", "application/json"),
        ];
        assert_eq!(check(&post, "/api/x", &headers(&good), &h, t), None);
        let mut no_token = good;
        no_token[2].1 = "wrong!";
        assert!(check(&post, "/api/x", &headers(&no_token), &h, t).is_some_and(|(_, m)| m.contains("CSRF")));
        let mut cross = good;
        cross[1].1 = "http://evil.example";
        assert!(check(&post, "/api/x", &headers(&cross), &h, t).is_some_and(|(_, m)| m.contains("cross-origin")));
        let mut form = good;
        form[3].1 = "application/x-www-form-urlencoded";
        assert_eq!(
            check(&post, "/api/x", &headers(&form), &h, t).map(|(c, _)| c),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        let rebound = [("host", "evil.example:3100")];
        assert!(check(&Method::GET, "/", &headers(&rebound), &h, t).is_some());
        assert_eq!(check(&Method::GET, "/healthz", &headers(&rebound), &h, t), None);
        assert_eq!(check(&Method::GET, "/", &headers(&good[..1]), &h, t), None);
    }
}
