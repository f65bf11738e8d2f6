//! kubectl's global flags (`--kubeconfig`, `--context`, `--cluster`, `--user`, `-n`, `--as`,
//! `--as-group`, `--request-timeout`), the client they make, and errors worded as kubectl words
//! them. Shared by the CLI and `baton dashboard` (which shows the same words in the page).
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// kubectl's global flags, accepted anywhere on the command line.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else the
    /// in-cluster service account).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// The namespace scope for this request (default: the context's).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Username to impersonate for the operation.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation (repeatable).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// How long to wait for a single server request before giving up (e.g. 1s, 2m; 0 = no
    /// limit).
    #[arg(long, global = true, value_name = "DURATION", default_value = "0")]
    pub request_timeout: String,
}

/// A failed command: the message as printed (kubectl's words), the exit code, and the API
/// server's HTTP status when the error is its answer (the dashboard answers with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub code: u8,
    pub http_status: Option<u16>,
}

impl CliError {
    /// `error: <message>`, exit 1.
    pub fn msg(message: impl std::fmt::Display) -> Self {
        CliError {
            message: format!("error: {message}"),
            code: 1,
            http_status: None,
        }
    }

    /// Exit with `code` after printing `message` as is.
    pub fn with_code(message: impl Into<String>, code: u8) -> Self {
        CliError {
            message: message.into(),
            code,
            http_status: None,
        }
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::msg(message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How kubectl words an error (`cmdutil.StandardErrorMessage`): the API server's Status as
/// `Error from server (<reason>): <message>`, a refused connection with the server's address,
/// any other transport failure as `Unable to connect to the server: …`.
pub fn kube_error(e: &kube::Error, server: &str) -> CliError {
    let message = match e {
        kube::Error::Api(s) if s.reason == "Unauthorized" => {
            format!("error: You must be logged in to the server ({})", s.message)
        }
        kube::Error::Api(s) if !s.reason.is_empty() => format!("Error from server ({}): {}", s.reason, s.message),
        kube::Error::Api(s) => format!("Error from server: {}", s.message),
        other if refused(other) => {
            format!("The connection to the server {server} was refused - did you specify the right host or port?")
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!("Unable to connect to the server: {}", innermost(e))
        }
        other => format!("error: {other}"),
    };
    let http_status = match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    };
    CliError {
        message,
        code: 1,
        http_status,
    }
}

fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// The deepest cause: what actually went wrong ("connection reset", "deadline has elapsed").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A client and where it points: what every command that talks to the API server needs.
#[derive(Clone)]
pub struct Session {
    pub client: kube::Client,
    /// `-n`, else the context's namespace.
    pub namespace: String,
    /// `host:port` of the API server (for error messages).
    pub server: String,
}

impl Session {
    /// kubectl's wording of an API error from this session's server.
    pub fn error(&self, e: &kube::Error) -> CliError {
        kube_error(e, &self.server)
    }
}

/// `--request-timeout`: an integer is seconds, otherwise a duration with a unit; 0 = none.
pub fn request_timeout(s: &str) -> Result<Option<Duration>, CliError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok((secs > 0).then(|| Duration::from_secs(secs)));
    }
    let d = crate::api::rollout::parse_duration(s).map_err(|_| {
        CliError::msg("Invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)")
    })?;
    Ok((!d.is_zero()).then_some(d))
}

fn has_default_kubeconfig() -> bool {
    if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    std::env::var_os("HOME").is_some_and(|h| PathBuf::from(h).join(".kube").join("config").exists())
}

/// The client configuration the flags select: `--kubeconfig`, else $KUBECONFIG (several files
/// merged, as kubectl does), else ~/.kube/config, else the in-cluster service account; then
/// `--context`/`--cluster`/`--user`, impersonation and the request timeout.
pub async fn config(args: &KubeArgs) -> Result<kube::Config, CliError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        user: args.user.clone(),
    };
    let explicit = args.context.is_some() || args.cluster.is_some() || args.user.is_some();
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| CliError::msg(format!("reading kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| CliError::msg(format!("kubeconfig {}: {e}", path.display())))?
        }
        None if has_default_kubeconfig() || explicit => {
            let kc = Kubeconfig::read().map_err(|e| CliError::msg(format!("reading kubeconfig: {e}")))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| CliError::msg(format!("kubeconfig: {e}")))?
        }
        None => kube::Config::incluster().map_err(|e| {
            CliError::msg(format!(
                "no kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config) and not running in a cluster: {e}"
            ))
        })?,
    };
    if let Some(user) = &args.as_user {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !args.as_group.is_empty() {
        config.auth_info.impersonate_groups = Some(args.as_group.clone());
    }
    if let Some(t) = request_timeout(&args.request_timeout)? {
        config.connect_timeout = Some(t);
        config.read_timeout = Some(t);
        config.write_timeout = Some(t);
    }
    config.headers.push((http::header::USER_AGENT, user_agent()));
    Ok(config)
}

/// What the API server sees as the client, as client-go words it (`<program>/<version>
/// (<os>/<arch>)`): its audit log names baton, and writes without an explicit field manager
/// are recorded as `baton`'s (the API server takes what precedes the first `/`).
pub fn user_agent() -> http::HeaderValue {
    let ua = format!(
        "baton/v{} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    http::HeaderValue::from_str(&ua).unwrap_or_else(|_| http::HeaderValue::from_static("baton"))
}

/// [`config`], a client and the namespace.
pub async fn session(args: &KubeArgs) -> Result<Session, CliError> {
    let config = config(args).await?;
    let server = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| config.cluster_url.to_string());
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| CliError::msg(format!("building a client: {e}")))?;
    Ok(Session {
        client,
        namespace,
        server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::api_error as api;

    #[test]
    fn api_errors_read_like_kubectl() {
        assert_eq!(
            kube_error(&api(404, "NotFound", "rollouts.baton.dev \"nope\" not found"), "h:1").message,
            "Error from server (NotFound): rollouts.baton.dev \"nope\" not found"
        );
        assert_eq!(
            kube_error(&api(401, "Unauthorized", "Unauthorized"), "h:1").message,
            "error: You must be logged in to the server (Unauthorized)"
        );
        assert_eq!(
            kube_error(&api(500, "", "boom"), "h:1").message,
            "Error from server: boom"
        );
    }

    #[test]
    fn request_timeouts_parse_like_kubectl() {
        assert_eq!(request_timeout("0").unwrap(), None);
        assert_eq!(request_timeout("5").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(request_timeout("250ms").unwrap(), Some(Duration::from_millis(250)));
        assert!(request_timeout("soon").is_err());
    }
}
