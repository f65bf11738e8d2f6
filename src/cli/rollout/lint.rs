//! `baton rollout lint -f FILE…`: Rollout and ListenerSet manifests checked offline, as the API
//! server and the controllers would check them (`kubectl argo rollouts lint` for baton).
//!
//! Not a second validator: every object of group `baton.dev` is a dry-run create against the API
//! server simulator started in this process with baton's CRDs (`lint/check.rs`), so the schema,
//! the CEL rules and the metadata rules answer in kube-apiserver's words; what it accepts, with
//! its defaults, goes through the controllers' own validation (`lint/controller.rs`). The
//! simulator is in builds with the `demo` feature only: without it, `lint` says so.
use std::process::ExitCode;

use super::CliError;

#[cfg(feature = "demo")]
mod check;
#[cfg(feature = "demo")]
mod controller;
#[cfg(feature = "demo")]
mod input;

/// `baton rollout lint`'s arguments (the namespace is the global `-n`).
#[derive(clap::Args, Debug, Clone)]
pub struct LintArgs {
    /// A file to lint: YAML (documents separated by ---) or JSON; `-` reads stdin; a directory
    /// means its .yaml, .yml and .json files. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true, value_hint = clap::ValueHint::AnyPath)]
    pub filenames: Vec<String>,
    /// With a directory, also the files of its subdirectories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

/// One thing wrong with an object: the field (kubectl's path) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub field: Option<String>,
    pub message: String,
}

impl Finding {
    /// A finding whose message names its fields itself (the controllers' messages do).
    pub fn plain(message: impl Into<String>) -> Self {
        Finding {
            field: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Lint the files of `args`, objects without a namespace in `namespace` (else `default`):
/// print one line per finding, exit 1 when there is one.
#[cfg(feature = "demo")]
pub async fn run(namespace: Option<&str>, args: LintArgs) -> Result<ExitCode, CliError> {
    use crate::session::exit;
    let documents = input::read(&args.filenames, args.recursive)?;
    if documents.is_empty() {
        return Err(CliError::usage("no objects passed to lint"));
    }
    let ours: Vec<&input::Document> = documents.iter().filter(|d| is_baton(&d.object)).collect();
    // Objects of other kinds are left alone, as `kubectl argo rollouts lint` leaves them: a
    // file may hold a whole application.
    if ours.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let namespace = namespace.filter(|n| !n.is_empty()).unwrap_or("default");
    let mut validator = check::Validator::start().await?;
    let mut out = String::new();
    for doc in ours {
        let prefix = format!("{}: {}", doc.source, object_name(&doc.object));
        for finding in validator.lint(&doc.object, namespace).await {
            out.push_str(&format!("{prefix}: {finding}\n"));
        }
    }
    // The embedded server stops before anything is printed: a closed stdout ends the process.
    drop(validator);
    crate::stdout::emit(&out);
    Ok(ExitCode::from(if out.is_empty() {
        exit::SUCCESS
    } else {
        exit::FAILED
    }))
}

/// Without the `demo` feature there is no embedded API server to validate with.
#[cfg(not(feature = "demo"))]
pub async fn run(_namespace: Option<&str>, _args: LintArgs) -> Result<ExitCode, CliError> {
    Err(CliError::usage(
        "this build of baton has no validators: `rollout lint` checks manifests with the embedded API \
         server simulator, which this build leaves out (it was built without the `demo` feature, as the \
         controller image is); use a baton built with default features",
    ))
}

/// Whether `object` is of baton's API group (whatever its version and kind).
#[cfg(feature = "demo")]
fn is_baton(object: &serde_json::Map<String, serde_json::Value>) -> bool {
    let api_version = object.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    api_version.split('/').next() == Some(crate::api::GROUP) && api_version.contains('/')
}

/// `Kind/name` of an object as written: `Kind/prefix-` for a generated name, `Kind` without one.
#[cfg(feature = "demo")]
fn object_name(object: &serde_json::Map<String, serde_json::Value>) -> String {
    let text = |key: &str| {
        object
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    let kind = object.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    match text("name").or_else(|| text("generateName")) {
        Some(name) => format!("{kind}/{name}"),
        None => kind.to_string(),
    }
}
