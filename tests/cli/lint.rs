//! `baton rollout lint`: the real binary, offline. Every run has no kubeconfig to read
//! (`KUBECONFIG` names a file that does not exist, `HOME` is empty), so a lint that needed a
//! cluster would fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What a run printed and how it exited.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A directory for one test's files, which also serves as an empty HOME.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().expect("temporary directory"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Write `text` to `name` (relative to the directory).
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directories");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// `baton ARGS` in this directory, with `stdin` as its input.
    fn baton(&self, args: &[&str], stdin: &str) -> Out {
        run(self.path(), self.path(), args, stdin)
    }

    /// `baton rollout lint ARGS`.
    fn lint(&self, args: &[&str]) -> Out {
        let mut all = vec!["rollout", "lint"];
        all.extend_from_slice(args);
        self.baton(&all, "")
    }
}

fn run(cwd: &Path, home: &Path, args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new(BATON)
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("KUBECONFIG", home.join("no-such-kubeconfig"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("baton runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("baton finishes");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A valid Rollout `name` (labels `app: name`), with `spec` merged into its spec (YAML
/// lines, indented by two).
fn rollout(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: baton.dev/v1alpha1
kind: Rollout
metadata:
  name: {name}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: {name}}}}}
  version: v1.2.3
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: app, image: registry.example.com/{name}:v1.2.3}}]}}
{spec}"
    )
}

const LISTENERSET: &str = "apiVersion: baton.dev/v1alpha1
kind: ListenerSet
metadata: {name: sxt}
spec:
  selector: {matchLabels: {app: web}}
  listeners: [{id: listener1}, {id: listener2, suspend: true}]
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
";

/// The lines of `out`'s stdout, asserting it exited 1 with nothing on stderr.
fn findings(out: &Out) -> Vec<String> {
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    out.stdout.lines().map(String::from).collect()
}

#[test]
fn a_clean_file_prints_nothing_and_exits_0() {
    let dir = Dir::new();
    let text = [rollout("web", ""), LISTENERSET.into(), SERVICE.into()].join("---\n");
    dir.write("app.yaml", &text);
    let out = dir.lint(&["-f", "app.yaml"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", ""),
        "{out:?}"
    );
    // As `kubectl get -o yaml` saves it: what the API server wrote is not the manifest's doing.
    let exported = rollout("web", "status: {phase: Healthy}\n").replace(
        "  name: web\n",
        "  name: web\n  resourceVersion: \"42\"\n  uid: 0b5e1a58-8f4e-4c4e-9f57-6a7f1f1e1b11\n  generation: 3\n",
    );
    dir.write("exported.yaml", &exported);
    let out = dir.lint(&["-f", "exported.yaml"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", ""),
        "{out:?}"
    );
    // The same objects as a kubectl `List` in JSON.
    let items: Vec<serde_json::Value> = text
        .split("---\n")
        .map(|d| serde_saphyr::from_str(d).expect("YAML"))
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    dir.write("app.json", &list.to_string());
    let out = dir.lint(&["-f", "app.json", "-n", "prod"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", ""),
        "{out:?}"
    );
}

#[test]
fn a_selector_that_does_not_match_the_template_is_a_finding() {
    let dir = Dir::new();
    let text = rollout("web", "").replace("labels: {app: web}", "labels: {app: web-frontend}");
    dir.write("web.yaml", &text);
    assert_eq!(
        findings(&dir.lint(&["-f", "web.yaml"])),
        ["web.yaml: Rollout/web: spec.template.metadata.labels: Invalid value: \"object\": selector does not match template labels"]
    );
}

#[test]
fn schema_errors_are_found_with_their_fields() {
    let dir = Dir::new();
    let text = rollout("web", "  strategy: {podReplacementPolicy: Sometimes}\n  replica: 2\n")
        .replace("replicas: 3", "replicas: three");
    dir.write("web.yaml", &text);
    assert_eq!(
        findings(&dir.lint(&["-f", "web.yaml"])),
        [
            "web.yaml: Rollout/web: unknown field \"spec.replica\"",
            "web.yaml: Rollout/web: spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
            "web.yaml: Rollout/web: spec.strategy.podReplacementPolicy: Unsupported value: \"Sometimes\": supported values: \"TerminationStarted\", \"TerminationComplete\"",
            "web.yaml: Rollout/web: <nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ]
    );
    // Metadata: a name that is not a DNS subdomain; list-map uniqueness.
    let set = LISTENERSET.replace("{id: listener2, suspend: true}", "{id: listener1}");
    dir.write("bad.yaml", &[rollout("Web_1", ""), set].join("---\n"));
    let found = findings(&dir.lint(&["-f", "bad.yaml"]));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(
            "bad.yaml: Rollout/Web_1: metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain"
        ),
        "{found:?}"
    );
    assert_eq!(
        found[1],
        "bad.yaml: ListenerSet/sxt: spec.listeners[1]: Duplicate value: map[string]interface {}{\"id\":\"listener1\"}"
    );
}

#[test]
fn cel_rules_are_found() {
    let dir = Dir::new();
    let text = rollout(
        "web",
        "  strategy: {batches: [2, 1], maxSurge: 0, maxUnavailable: \"0%\"}\n",
    );
    dir.write("web.yaml", &text);
    assert_eq!(
        findings(&dir.lint(&["-f", "web.yaml"])),
        [
            "web.yaml: Rollout/web: spec: Invalid value: \"object\": strategy.batches are cumulative targets and must not decrease, e.g. [1, \"50%\", \"100%\"]",
            "web.yaml: Rollout/web: spec.strategy: Invalid value: \"object\": maxSurge and maxUnavailable must not both be zero",
        ]
    );
}

#[test]
fn what_only_the_controller_refuses_is_found_in_its_words() {
    let dir = Dir::new();
    // The schema and the CEL rules accept each of these; the controller reports InvalidSpec.
    let spec = "  minReadySeconds: 30\n  progressDeadlineSeconds: 10\n  pins: [{instances: [web-1, web-7], version: v1.2.2}]\n";
    dir.write("web.yaml", &rollout("web", spec));
    let set = LISTENERSET.replace("{matchLabels: {app: web}}", "{}");
    dir.write("sxt.yaml", &set);
    assert_eq!(
        findings(&dir.lint(&["-f", "web.yaml", "-f", "sxt.yaml"])),
        [
            "web.yaml: Rollout/web: spec.progressDeadlineSeconds (10) must be more than spec.minReadySeconds (30)",
            "web.yaml: Rollout/web: spec.pins[0] names instance \"web-7\", which is not one of web-0 .. web-2; fix the name or the replicas",
            "sxt.yaml: ListenerSet/sxt: spec.selector is empty and would select every pod in the namespace: set matchLabels or matchExpressions to the pods that run the baton agent",
        ]
    );
    // A pinned version is checked against the revision history on the cluster only.
    dir.write(
        "pinned.yaml",
        &rollout("web", "  pins: [{instances: [web-1], version: v1.2.2}]\n"),
    );
    let out = dir.lint(&["-f", "pinned.yaml"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
}

#[test]
fn the_pods_and_jobs_the_controller_would_make_are_checked() {
    let dir = Dir::new();
    let spec = "  hooks:\n    preRollout: {template: {spec: {containers: [{name: migrate}]}}}\n";
    let text = rollout("web", spec).replace("{name: app, image: registry.example.com/web:v1.2.3}", "{name: app}");
    dir.write("web.yaml", &text);
    assert_eq!(
        findings(&dir.lint(&["-f", "web.yaml"])),
        [
            "web.yaml: Rollout/web: spec.template.spec.containers[0].image: Required value",
            "web.yaml: Rollout/web: spec.hooks.preRollout.template.spec.containers[0].image: Required value",
        ]
    );
}

/// A version that is not a label value is `spec.version`'s finding (the pods carry it as
/// `app.kubernetes.io/version`), in kube-apiserver's words; a bad template label stays the
/// template's.
#[test]
fn a_version_that_is_not_a_label_value_is_found_at_spec_version() {
    let dir = Dir::new();
    let text = rollout("web", "").replace("version: v1.2.3", "version: \"1.0 beta\"");
    dir.write("web.yaml", &text);
    let label = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    assert_eq!(
        findings(&dir.lint(&["-f", "web.yaml"])),
        [format!(
            "web.yaml: Rollout/web: spec.version: Invalid value: \"1.0 beta\": {label}"
        )]
    );
    let text = text.replace("labels: {app: web}}", "labels: {app: web, tier: \"x y\"}}");
    dir.write("both.yaml", &text);
    assert_eq!(
        findings(&dir.lint(&["-f", "both.yaml"])),
        [
            format!("both.yaml: Rollout/web: spec.version: Invalid value: \"1.0 beta\": {label}"),
            format!("both.yaml: Rollout/web: spec.template.metadata.labels: Invalid value: \"x y\": {label}"),
        ]
    );
}

#[test]
fn several_documents_and_files_are_reported_in_order() {
    let dir = Dir::new();
    let zero = "  strategy: {maxSurge: 0, maxUnavailable: 0}\n";
    let slow = "  minReadySeconds: 30\n  progressDeadlineSeconds: 10\n";
    let first = [
        rollout("api", zero),
        SERVICE.into(),
        rollout("ok", ""),
        rollout("web", slow),
    ]
    .join("---\n");
    dir.write("first.yaml", &first);
    dir.write("second.yaml", &rollout("db", zero));
    assert_eq!(
        findings(&dir.lint(&["-f", "first.yaml", "-f", "second.yaml"])),
        [
            "first.yaml: Rollout/api: spec.strategy: Invalid value: \"object\": maxSurge and maxUnavailable must not both be zero",
            "first.yaml: Rollout/web: spec.progressDeadlineSeconds (10) must be more than spec.minReadySeconds (30)",
            "second.yaml: Rollout/db: spec.strategy: Invalid value: \"object\": maxSurge and maxUnavailable must not both be zero",
        ]
    );
}

#[test]
fn a_directory_means_its_yaml_and_json_files() {
    let dir = Dir::new();
    let zero = "  strategy: {maxSurge: 0, maxUnavailable: 0}\n";
    dir.write("manifests/a.yaml", &rollout("a", zero));
    dir.write("manifests/b.yml", &rollout("b", zero));
    dir.write("manifests/c.txt", &rollout("c", zero));
    dir.write("manifests/nested/d.yaml", &rollout("d", zero));
    let names = |out: &Out| -> Vec<String> {
        findings(out)
            .iter()
            .map(|l| l.split(": spec.").next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        names(&dir.lint(&["-f", "manifests"])),
        ["manifests/a.yaml: Rollout/a", "manifests/b.yml: Rollout/b"]
    );
    assert_eq!(
        names(&dir.lint(&["-R", "-f", "manifests"])),
        [
            "manifests/a.yaml: Rollout/a",
            "manifests/b.yml: Rollout/b",
            "manifests/nested/d.yaml: Rollout/d"
        ]
    );
}

#[test]
fn stdin_is_read_with_a_dash() {
    let dir = Dir::new();
    let text = rollout("web", "").replace("labels: {app: web}", "labels: {app: api}");
    let out = dir.baton(&["rollout", "lint", "-f", "-"], &text);
    assert_eq!(
        findings(&out),
        ["STDIN: Rollout/web: spec.template.metadata.labels: Invalid value: \"object\": selector does not match template labels"]
    );
    let out = dir.baton(&["rollout", "lint", "-f", "-"], &rollout("web", ""));
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", ""),
        "{out:?}"
    );
}

#[test]
fn a_file_that_does_not_exist_exits_4_before_anything_is_linted() {
    let dir = Dir::new();
    dir.write(
        "web.yaml",
        &rollout("web", "  strategy: {maxSurge: 0, maxUnavailable: 0}\n"),
    );
    let out = dir.lint(&["-f", "web.yaml", "-f", "x.yaml"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.stderr, "error: the path \"x.yaml\" does not exist\n");
    assert_eq!(out.stdout, "");
}

#[test]
fn what_is_not_yaml_or_json_or_no_file_is_a_usage_error() {
    let dir = Dir::new();
    dir.write("broken.yaml", "apiVersion: v1\nkind: [Service\n");
    let out = dir.lint(&["-f", "broken.yaml"]);
    assert_eq!(out.code, 64, "{out:?}");
    assert!(out.stderr.starts_with("error: error parsing broken.yaml: "), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    dir.write("words.txt", "just some words\n");
    let out = dir.lint(&["-f", "words.txt"]);
    assert_eq!(out.code, 64, "{out:?}");
    assert_eq!(
        out.stderr,
        "error: error parsing words.txt: a document is a string, not an object with apiVersion and kind\n"
    );
    let out = dir.lint(&[]);
    assert_eq!(out.code, 64, "{out:?}");
    assert!(out.stderr.contains("--filename <FILE>"), "{out:?}");
}

#[test]
fn the_docs_show_what_lint_prints() {
    let home = Dir::new();
    for shown in crate::support::docs::shown("docs/rollouts.md", "lint-mismatch") {
        let words: Vec<&str> = shown.command.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"baton"), "{shown:?}");
        let out = run(Path::new(ROOT), home.path(), &words[1..], "");
        assert_eq!(out.code, 1, "{shown:?}: {out:?}");
        let printed = format!("{}{}", out.stdout, out.stderr);
        assert!(
            crate::support::docs::same_text(&printed, &shown.output),
            "docs/rollouts.md shows for `{}`:\n{}\nbut it prints:\n{printed}",
            shown.command,
            shown.output
        );
    }
}
