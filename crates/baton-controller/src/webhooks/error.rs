//! What is wrong with a sink (its Secret, for condition `NotificationsReady`) or with one
//! attempt to deliver to it (for the `NotificationFailed` Event and the log).
use std::sync::Arc;

use super::client::HttpError;
use crate::api::notifications::secret_keys;

/// A sink that cannot be used, or a delivery attempt that failed. Clone: a Secret read is
/// remembered, error included, for [`super::SECRET_TTL`] (so sources sit behind an `Arc`).
#[derive(Clone, Debug, thiserror::Error)]
pub enum SinkError {
    #[error("Secret {ns}/{name} has no key {:?}", secret_keys::URL)]
    NoUrl { ns: String, name: String },
    #[error("Secret {ns}/{name} key url is not UTF-8 text")]
    UrlNotText { ns: String, name: String },
    #[error("Secret {ns}/{name} key url {url:?} is not a URL: {source}")]
    NotAUrl {
        ns: String,
        name: String,
        url: String,
        source: Arc<http::uri::InvalidUri>,
    },
    #[error("Secret {ns}/{name} key url {url:?} is not an http:// or https:// URL with a host")]
    NotHttp { ns: String, name: String, url: String },
    /// Key `headers` is not a JSON object of header names and values; `why` says where.
    #[error("Secret {ns}/{name} key headers: {why}")]
    BadHeaders { ns: String, name: String, why: String },
    /// The controller's flags (`--read-secrets`, `--secret-namespaces`) keep it from the Secret.
    #[error("Secret {ns}/{name} cannot be read: {why}")]
    NotReadable {
        ns: String,
        name: String,
        why: SecretsNotRead,
    },
    #[error("Secret {ns}/{name} does not exist")]
    Missing { ns: String, name: String },
    /// The API server answered 403 with `message`.
    #[error("Secret {ns}/{name} cannot be read: {message} (the controller needs get on secrets)")]
    Forbidden { ns: String, name: String, message: String },
    /// No answer about the Secret (API server unreachable, 5xx).
    #[error("Secret {ns}/{name} could not be read: {source}")]
    Unreachable {
        ns: String,
        name: String,
        source: Arc<kube::Error>,
    },
    /// No answer (see [`HttpError`]).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The receiver answered with this non-2xx status.
    #[error("HTTP {0}")]
    Status(u16),
}

/// Why the controller does not read a namespace's Secrets, naming the flag that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsNotRead {
    #[error("the controller does not read Secrets (--read-secrets=false)")]
    Off,
    #[error("the controller reads Secrets only in namespace(s) {} (--secret-namespaces)", .0.join(", "))]
    Elsewhere(Vec<String>),
}
