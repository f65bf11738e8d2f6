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
    /// How long to wait for the server before giving up: to connect, and for each read or write
    /// of a request (e.g. 1s, 2m; 0 = no limit). Default for `rollout`, `listeners` and
    /// `dashboard`: 10s to connect, 30s per read or write; their watches ask the server to end
    /// them sooner than that and start again, so a quiet watch is not a timeout.
    #[arg(long, global = true, value_name = "DURATION")]
    pub request_timeout: Option<String>,
}

/// How long a CLI command waits to connect when `--request-timeout` is absent.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a CLI command waits for each read or write when `--request-timeout` is absent.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// kube-rs's own watch timeout (its read timeout, 295 s, is just above it).
const KUBE_WATCH_TIMEOUT_SECS: u32 = 290;

/// The exit codes of every CLI command: one meaning each, the same for every command.
pub mod exit {
    /// It worked (`status`: the rollout is Healthy).
    pub const SUCCESS: u8 = 0;
    /// The rollout failed or was rolled back, an action was refused (nothing to act on), or
    /// `lint` found something.
    pub const FAILED: u8 = 1;
    /// `--timeout` elapsed before the outcome.
    pub const TIMEOUT: u8 = 2;
    /// `status --watch=false`: still in progress.
    pub const IN_PROGRESS: u8 = 3;
    /// The named object (or file) does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// The API server refused the request or could not be reached (connection, TLS, request
    /// timeout, kubeconfig).
    pub const API: u8 = 5;
    /// The command line is wrong: an unknown flag, a bad flag value, an argument that is not
    /// what the command takes (sysexits' `EX_USAGE`).
    pub const USAGE: u8 = 64;
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
    /// `error: <message>`, exit [`exit::FAILED`].
    pub fn msg(message: impl std::fmt::Display) -> Self {
        CliError {
            message: format!("error: {message}"),
            code: exit::FAILED,
            http_status: None,
        }
    }

    /// `error: <message>`, exit [`exit::USAGE`]: the command line is wrong.
    pub fn usage(message: impl std::fmt::Display) -> Self {
        CliError {
            message: format!("error: {message}"),
            code: exit::USAGE,
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
/// any other transport failure as `Unable to connect to the server: …`. Exit
/// [`exit::NOT_FOUND`] when the server answered 404, else [`exit::API`].
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
    let code = match http_status {
        Some(404) => exit::NOT_FOUND,
        _ => exit::API,
    };
    CliError {
        message,
        code,
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
    /// The client's timeout for each read, when shorter than kube-rs's own (None: no limit, or
    /// kube-rs's). A watch must end before a quiet connection trips it: see
    /// [`Session::watch_config`].
    pub read_timeout: Option<Duration>,
}

impl Session {
    /// kubectl's wording of an API error from this session's server.
    pub fn error(&self, e: &kube::Error) -> CliError {
        kube_error(e, &self.server)
    }

    /// What every watch of this session starts from: the server ends the watch after
    /// [`watch_timeout_secs`] (kube's watcher then watches again from where it was, silently),
    /// so a watch with nothing to say never waits a whole read timeout for its next byte.
    pub fn watch_config(&self) -> kube::runtime::watcher::Config {
        kube::runtime::watcher::Config::default().timeout(watch_timeout_secs(self.read_timeout))
    }
}

/// The server-side timeout of a watch under a client read timeout of `read`: two thirds of it
/// (20 s under the default 30 s), at least 1 s; kube-rs's 290 s when there is no shorter limit.
pub fn watch_timeout_secs(read: Option<Duration>) -> u32 {
    match read {
        Some(r) if r.as_secs() < u64::from(KUBE_WATCH_TIMEOUT_SECS) => {
            let secs = u32::try_from(r.as_secs() * 2 / 3).unwrap_or(KUBE_WATCH_TIMEOUT_SECS);
            secs.max(1)
        }
        _ => KUBE_WATCH_TIMEOUT_SECS,
    }
}

/// `--request-timeout`: an integer is seconds, otherwise a duration with a unit; 0 = none.
pub fn request_timeout(s: &str) -> Result<Option<Duration>, CliError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok((secs > 0).then(|| Duration::from_secs(secs)));
    }
    let d = crate::api::rollout::parse_duration(s).map_err(|_| {
        CliError::usage("Invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)")
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
/// `--context`/`--cluster`/`--user`, impersonation and `--request-timeout` (absent: kube-rs's
/// timeouts, what the controller and the agent run with). Errors are worded as kubectl words
/// them and exit [`exit::API`]: the configuration is the client's.
pub async fn config(args: &KubeArgs) -> Result<kube::Config, CliError> {
    let mut config = load(args).await?;
    if let Some(user) = &args.as_user {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !args.as_group.is_empty() {
        config.auth_info.impersonate_groups = Some(args.as_group.clone());
    }
    if let Some(t) = &args.request_timeout {
        let t = request_timeout(t)?;
        config.connect_timeout = t;
        config.read_timeout = t;
        config.write_timeout = t;
    }
    config.headers.push((http::header::USER_AGENT, user_agent()));
    Ok(config)
}

async fn load(args: &KubeArgs) -> Result<kube::Config, CliError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        user: args.user.clone(),
    };
    let explicit = args.context.is_some() || args.cluster.is_some() || args.user.is_some();
    let kc = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map_err(kubeconfig_error)?,
        None if has_default_kubeconfig() || explicit => Kubeconfig::read().map_err(kubeconfig_error)?,
        None => {
            return kube::Config::incluster().map_err(|e| {
                config_error(format!(
                    "no kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config) and not running in a cluster: {e}"
                ))
            })
        }
    };
    // kube-rs takes a user the kubeconfig does not have as no credentials; kubectl refuses.
    if let Some(user) = &args.user {
        if !kc.auth_infos.iter().any(|a| &a.name == user) {
            return Err(config_error(format!("auth info \"{user}\" does not exist")));
        }
    }
    kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(kubeconfig_error)
}

/// `error: <message>`, exit [`exit::API`].
fn config_error(message: impl std::fmt::Display) -> CliError {
    CliError::with_code(format!("error: {message}"), exit::API)
}

/// A kubeconfig that cannot be used, in kubectl's (client-go's) words.
fn kubeconfig_error(e: kube::config::KubeconfigError) -> CliError {
    use kube::config::KubeconfigError as K;
    match e {
        K::ReadConfig(io, path) => {
            let op = if io.kind() == std::io::ErrorKind::NotFound {
                "stat"
            } else {
                "open"
            };
            config_error(format!("{op} {}: {}", path.display(), os_error(&io)))
        }
        K::LoadContext(name) => CliError::with_code(
            format!("Error in configuration: context was not found for specified context: {name}"),
            exit::API,
        ),
        K::LoadClusterOfContext(name) => config_error(format!("no server found for cluster \"{name}\"")),
        other => config_error(other),
    }
}

/// An I/O error as Go prints it: the system's words in lower case, without Rust's
/// `(os error N)`.
fn os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
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

/// [`config`] with the CLI's default timeouts when `--request-timeout` is absent (10 s to
/// connect, 30 s per read or write: a server that accepts the connection and never answers ends
/// the command), a client and the namespace.
pub async fn session(args: &KubeArgs) -> Result<Session, CliError> {
    let mut config = config(args).await?;
    if args.request_timeout.is_none() {
        config.connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
        config.read_timeout = Some(DEFAULT_REQUEST_TIMEOUT);
        config.write_timeout = Some(DEFAULT_REQUEST_TIMEOUT);
    }
    let server = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| config.cluster_url.to_string());
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let read_timeout = config.read_timeout;
    let client = kube::Client::try_from(config).map_err(|e| config_error(format!("building a client: {e}")))?;
    Ok(Session {
        client,
        namespace,
        server,
        read_timeout,
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
    fn a_404_is_not_found_and_every_other_api_error_is_api() {
        assert_eq!(kube_error(&api(404, "NotFound", "x"), "h:1").code, exit::NOT_FOUND);
        assert_eq!(kube_error(&api(403, "Forbidden", "x"), "h:1").code, exit::API);
        assert_eq!(kube_error(&api(500, "", "x"), "h:1").code, exit::API);
    }

    #[test]
    fn watches_end_before_the_read_timeout() {
        assert_eq!(watch_timeout_secs(Some(DEFAULT_REQUEST_TIMEOUT)), 20);
        assert_eq!(watch_timeout_secs(Some(Duration::from_millis(500))), 1);
        assert_eq!(watch_timeout_secs(Some(Duration::from_secs(295))), 290);
        assert_eq!(watch_timeout_secs(None), 290);
    }

    #[test]
    fn io_errors_read_like_go() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(os_error(&e), "no such file or directory");
    }

    #[test]
    fn request_timeouts_parse_like_kubectl() {
        assert_eq!(request_timeout("0").unwrap(), None);
        assert_eq!(request_timeout("5").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(request_timeout("250ms").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(request_timeout("soon").map_err(|e| e.code), Err(exit::USAGE));
    }
}
