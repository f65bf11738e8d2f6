//! Errors of the controllers and the CLI.

/// How quickly an error is worth retrying (the first delay of [`crate::backoff`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Likely gone on the next attempt (409, cache lag): start at the short base delay.
    Soon,
    /// Start at the long base delay.
    Later,
}

/// Everything that can go wrong in a reconcile or a CLI command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {}", api_message(.0))]
    Kube(#[from] kube::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("the object has no {0}")]
    MissingField(&'static str),
    /// A cache has not caught up with a write yet; the next attempt will see it.
    #[error("{0}")]
    CacheLag(String),
    /// The API server refused (422) an object made from the spec, with this message.
    #[error("the API server refused an object made from the spec: {message}")]
    Refused { message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "transport",
            Error::Json(_) => "encoding",
            Error::Invalid(_) => "invalid",
            Error::MissingField(_) => "missing_field",
            Error::CacheLag(_) => "cache_lag",
            Error::Refused { .. } => "refused",
        }
    }

    /// How soon a reconcile that failed with this is worth trying again.
    pub fn retry(&self) -> Retry {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => Retry::Soon,
            Error::CacheLag(_) => Retry::Soon,
            _ => Retry::Later,
        }
    }
}

/// True for an API error with this HTTP code.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The API server's own message for an API error (`<message> (<code> <reason>)`), the client's
/// description for anything else. kube's `Display` appends a debug dump of the whole Status.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => {
            format!("{} ({} {})", s.message, s.code, s.reason)
        }
        other => other.to_string(),
    }
}

/// Whether an error may go away by itself: the API server is overloaded, failing or
/// restarting, a write raced another, or the request did not complete. A definite answer
/// (404, 403, 401, 422, ...) is not transient.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 409 | 429 | 500..=599),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// An error answer of the API server (`code`, `reason`, `message`), as kube's client reports
/// one (tests build the answers they replay with it).
pub fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
    let mut s = kube::core::Status::failure(message, reason);
    s.code = code;
    kube::Error::Api(Box::new(s))
}

#[cfg(test)]
mod tests {
    use super::api_error as api;
    use super::*;

    #[test]
    fn an_api_error_shows_the_servers_message() {
        let e = Error::from(api(
            422,
            "Invalid",
            "Pod \"x\" is invalid: spec.containers: Required value",
        ));
        assert_eq!(
            e.to_string(),
            "Kubernetes API: Pod \"x\" is invalid: spec.containers: Required value (422 Invalid)"
        );
    }

    #[test]
    fn transient_errors_are_the_ones_worth_retrying() {
        for code in [409, 429, 500, 503, 504] {
            assert!(is_transient(&api(code, "x", "m")), "{code}");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(!is_transient(&api(code, "x", "m")), "{code}");
        }
        assert_eq!(Error::from(api(409, "Conflict", "m")).retry(), Retry::Soon);
        assert_eq!(Error::CacheLag("c".into()).retry(), Retry::Soon);
        assert_eq!(Error::from(api(500, "InternalError", "m")).retry(), Retry::Later);
    }
}
