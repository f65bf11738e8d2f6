//! baton's Argo CD resource customizations (`config/argocd/`, in the layout of argo-cd's
//! `resource_customizations/`) pass the tests argo-cd runs on its own (`util/lua/health_test.go`,
//! `util/lua/custom_actions_test.go`), run here the same way with Debian's Lua 5.1: every
//! directory with a `health.lua` has a `health_test.yaml` whose cases give the status and message
//! of each `inputPath`; every `action_test.yaml` has `discoveryTests` (the actions offered on
//! `inputPath`) and `actionTests` (`action` on `inputPath` gives `expectedOutputPath`). The tree is
//! walked, so a new kind is picked up. And the installation the docs show works.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::support::argocd::{self, act_at, discover, health_at, root};

fn yaml(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn cases<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Every directory under `dir`, `dir` first, in name order.
fn dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    children.sort();
    for c in children {
        out.extend(dirs(&c));
    }
    out
}

/// The request annotations of baton's Rollout actions, whose value starts with the time of the
/// request, and `baton.dev/restartedAt`, which is one.
const TIMED: [&str; 4] = [
    "baton.dev/promote",
    "baton.dev/promote-full",
    "baton.dev/abort",
    "baton.dev/retry",
];
const RESTARTED_AT: &str = "baton.dev/restartedAt";
/// The time argo-cd's test normalizer writes over the times actions stamp.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What argo-cd's action tests compare (`diff.Diff` with their `testNormalizer`): without
/// `metadata.creationTimestamp`, `metadata.namespace` and empty annotations, and with the times
/// baton's actions stamp set to [`ZERO_TIME`] (the `baton.dev` case of that normalizer, as it has
/// for Flux's `reconcile.fluxcd.io/requestedAt`).
fn argo_normalized(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("creationTimestamp");
        meta.remove("namespace");
        if let Some(Value::Object(ann)) = meta.get_mut("annotations") {
            for (k, v) in ann.iter_mut() {
                match (k.as_str(), v.as_str()) {
                    (RESTARTED_AT, Some(_)) => *v = json!(ZERO_TIME),
                    (k, Some(s)) if TIMED.contains(&k) => {
                        if let Some((_, rv)) = s.split_once(" rv ") {
                            *v = json!(format!("{ZERO_TIME} rv {rv}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        if meta
            .get("annotations")
            .is_some_and(|a| a.as_object().is_some_and(|m| m.is_empty()) || a.is_null())
        {
            meta.remove("annotations");
        }
    }
    obj
}

/// The times an action stamped (annotations it set that [`argo_normalized`] rewrites) are now,
/// in UTC, to the second: what `os.date("!%Y-%m-%dT%H:%M:%SZ")` gives.
fn stamped_now(input: &Value, out: &Value) -> Result<(), String> {
    let empty = serde_json::Map::new();
    let annotations = |v: &Value| {
        v.pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (before, after) = (annotations(input), annotations(out));
    let now = jiff::Timestamp::now();
    for (k, v) in &after {
        let Some(s) = v.as_str() else { continue };
        if before.get(k) == Some(v) || !(TIMED.contains(&k.as_str()) || k == RESTARTED_AT) {
            continue;
        }
        let time = s.split_once(" rv ").map_or(s, |(t, _)| t);
        let at: jiff::Timestamp = time.parse().map_err(|e| format!("{k}: {s:?} is not a time: {e}"))?;
        let skew = (now.as_second() - at.as_second()).abs();
        if argocd::utc_time_fraction(time) != Some(0) || skew > 120 {
            return Err(format!(
                "{k}: {s:?} is not the time of the action (now {now}) in UTC to the second"
            ));
        }
    }
    Ok(())
}

/// `ResourceAction`s as argo-cd's discovery tests compare them (`disabled` false unless set),
/// by name.
fn expected_actions(result: &[Value]) -> BTreeMap<String, Value> {
    result
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if a.get("disabled").is_none() {
                a["disabled"] = json!(false);
            }
            (text(&a, "name").to_string(), a)
        })
        .collect()
}

/// The failures of the health cases of `dir` (which has a `health.lua`).
fn health_cases(dir: &Path, used: &mut BTreeSet<PathBuf>) -> Vec<String> {
    let spec = match yaml(&dir.join("health_test.yaml")) {
        Ok(s) => s,
        Err(e) => return vec![format!("every health.lua has a health_test.yaml: {e}")],
    };
    let mut failures = Vec::new();
    for case in cases(&spec, "tests") {
        let input = dir.join(text(case, "inputPath"));
        used.insert(input.clone());
        let want = (
            text(&case["healthStatus"], "status").to_string(),
            text(&case["healthStatus"], "message").to_string(),
        );
        let got = yaml(&input).and_then(|obj| health_at(&dir.join("health.lua"), &obj));
        if got.as_ref() != Ok(&want) {
            failures.push(format!(
                "{}: health of {}: want {want:?}, got {got:?}",
                dir.display(),
                text(case, "inputPath")
            ));
        }
    }
    failures
}

/// The failure of one action test of `dir` (an `actions/` directory), if it fails.
fn action_case(dir: &Path, case: &Value) -> Result<(), String> {
    let action = text(case, "action");
    let input = yaml(&dir.join(text(case, "inputPath")))?;
    let out = act_at(&dir.join(action).join("action.lua"), &input)?;
    stamped_now(&input, &out)?;
    let want = argo_normalized(&yaml(&dir.join(text(case, "expectedOutputPath")))?);
    let got = argo_normalized(&out);
    if want != got {
        return Err(format!(
            "output differs from {}:\n  want {want}\n  got  {got}",
            text(case, "expectedOutputPath")
        ));
    }
    Ok(())
}

/// The failures of the discovery and action cases of `dir` (which has an `action_test.yaml`).
fn action_cases(dir: &Path, used: &mut BTreeSet<PathBuf>) -> Vec<String> {
    let spec = match yaml(&dir.join("action_test.yaml")) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let mut failures = Vec::new();
    for case in cases(&spec, "discoveryTests") {
        let input = dir.join(text(case, "inputPath"));
        used.insert(input.clone());
        let want = expected_actions(cases(case, "result"));
        let got = yaml(&input).and_then(|obj| discover(&dir.join("discovery.lua"), &obj));
        if got.as_ref() != Ok(&want) {
            failures.push(format!(
                "{}: discovery on {}:\n  want {want:?}\n  got  {got:?}",
                dir.display(),
                text(case, "inputPath")
            ));
        }
    }
    for case in cases(&spec, "actionTests") {
        for key in ["inputPath", "expectedOutputPath"] {
            used.insert(dir.join(text(case, key)));
        }
        if let Err(e) = action_case(dir, case) {
            failures.push(format!(
                "{}: action {} on {}: {e}",
                dir.display(),
                text(case, "action"),
                text(case, "inputPath")
            ));
        }
    }
    failures
}

/// Every failing case under `root`, and every testdata file no case uses.
fn run_all(root: &Path) -> (usize, Vec<String>) {
    let (mut used, mut failures, mut specs) = (BTreeSet::new(), Vec::new(), 0);
    let all = dirs(root);
    for dir in &all {
        if dir.join("health.lua").is_file() {
            specs += 1;
            failures.extend(health_cases(dir, &mut used));
        }
        if dir.join("action_test.yaml").is_file() {
            specs += 1;
            failures.extend(action_cases(dir, &mut used));
        }
    }
    for dir in all.iter().filter(|d| d.ends_with("testdata")) {
        for f in std::fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok) {
            if !used.contains(&f.path()) {
                failures.push(format!("{}: no test uses it", f.path().display()));
            }
        }
    }
    (specs, failures)
}

#[test]
fn argo_cd_customization_tests_pass() {
    let (specs, failures) = run_all(&root());
    // Rollout: health_test.yaml and action_test.yaml; ListenerSet: health_test.yaml.
    assert!(specs >= 3, "only {specs} test files under config/argocd");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Copy `from` to `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").filter_map(Result::ok) {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Replace `old` (which must be there) by `new` in file `path`.
fn edit(path: &Path, old: &str, new: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(old), "{} has no {old:?}", path.display());
    std::fs::write(path, text.replacen(old, new, 1)).expect("write");
}

#[test]
fn a_wrong_expectation_fails_its_case() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_tree(&root(), tmp.path());
    let rollout = tmp.path().join("baton.dev/Rollout");
    edit(&rollout.join("health_test.yaml"), "status: Healthy", "status: Degraded");
    edit(
        &tmp.path().join("baton.dev/ListenerSet/health_test.yaml"),
        "status: Progressing",
        "status: Healthy",
    );
    let actions = rollout.join("actions");
    edit(&actions.join("action_test.yaml"), "disabled: true", "disabled: false");
    edit(
        &actions.join("testdata/restarted_pause.yaml"),
        "paused: true",
        "paused: false",
    );
    std::fs::write(actions.join("testdata/unused.yaml"), "kind: Rollout\n").expect("write");

    let (_, failures) = run_all(tmp.path());
    let named = |needle: &str| failures.iter().filter(|f| f.contains(needle)).count();
    assert_eq!(failures.len(), 5, "{}", failures.join("\n"));
    assert_eq!(named("Rollout: health of"), 1, "{failures:#?}");
    assert_eq!(named("ListenerSet: health of"), 1, "{failures:#?}");
    assert_eq!(named("discovery on"), 1, "{failures:#?}");
    assert_eq!(named("action pause on testdata/restarted.yaml"), 1, "{failures:#?}");
    assert_eq!(named("unused.yaml: no test uses it"), 1, "{failures:#?}");
}

/// The `baton rollout` commands a status may name that change nothing (nothing for Argo CD to
/// offer).
const READ_ONLY: [&str; 5] = ["status", "history", "list", "tree", "lint"];

/// The `baton rollout` commands `message` tells the user to run, by the name of the Argo CD
/// action that does the same (`promote --full` is `promote-full`).
fn commands_named(message: &str) -> BTreeSet<String> {
    message
        .split("baton rollout ")
        .skip(1)
        .filter_map(|rest| {
            let command: Vec<&str> = rest.split(['`', ')', ',', ';']).next()?.split_whitespace().collect();
            let verb = *command.first()?;
            let full = verb == "promote" && command.contains(&"--full");
            Some(if full { "promote-full".into() } else { verb.to_string() })
        })
        .collect()
}

/// Must a state whose health is `health` that offers action `name` say to run it? `retry` (only
/// a failure has something to retry) and `promote` (only a pause has something to end) always;
/// `abort` when the rollout failed (Degraded), where it is the way out besides a retry.
fn must_be_named(name: &str, health: &str) -> bool {
    matches!(name, "retry" | "promote") || (name == "abort" && health == "Degraded")
}

/// Where, in one captured state `obj` of a kind (its `health.lua` and `actions/discovery.lua` in
/// `dir`), the actions Argo CD offers and the messages written disagree: a command the health
/// message or `status.message` tells the user to run that is not offered enabled, or an action
/// offered that the state must name ([`must_be_named`]) and does not.
fn disagreement(dir: &Path, obj: &Value) -> Result<Vec<String>, String> {
    let (health, message) = health_at(&dir.join("health.lua"), obj)?;
    let offered = discover(&dir.join("actions/discovery.lua"), obj)?;
    let enabled: BTreeSet<&String> = offered
        .iter()
        .filter(|(_, a)| a["disabled"] != json!(true))
        .map(|(n, _)| n)
        .collect();
    let status_message = obj.pointer("/status/message").and_then(Value::as_str).unwrap_or("");
    let mut named = commands_named(&message);
    named.extend(commands_named(status_message));
    let mut out = Vec::new();
    for c in named.iter().filter(|c| !READ_ONLY.contains(&c.as_str())) {
        if !enabled.contains(c) {
            let how = if offered.contains_key(c) {
                "disabled"
            } else {
                "not at all"
            };
            out.push(format!(
                "the status says to run `baton rollout {c}`, and Argo CD offers it {how} ({health}: {message:?})"
            ));
        }
    }
    for a in enabled
        .into_iter()
        .filter(|a| must_be_named(a, &health) && !named.contains(*a))
    {
        out.push(format!(
            "Argo CD offers {a}, and the status does not say to run it ({health}: {message:?})"
        ));
    }
    Ok(out)
}

/// The disagreements of every state under `root` (each fixture of a kind that has a health.lua
/// and actions: `testdata/` and `actions/testdata/`), and how many states there are.
fn disagreements(root: &Path) -> (usize, Vec<String>) {
    let (mut states, mut failures) = (0, Vec::new());
    let kinds = dirs(root);
    for dir in kinds
        .iter()
        .filter(|d| d.join("health.lua").is_file() && d.join("actions/discovery.lua").is_file())
    {
        for data in [dir.join("testdata"), dir.join("actions/testdata")] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&data)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            files.sort();
            for f in files {
                states += 1;
                match yaml(&f).and_then(|obj| disagreement(dir, &obj)) {
                    Ok(found) => failures.extend(found.into_iter().map(|d| format!("{}: {d}", f.display()))),
                    Err(e) => failures.push(e),
                }
            }
        }
    }
    (states, failures)
}

/// In every state the fixtures capture, what the status tells the user to run is what Argo CD
/// offers: each `baton rollout` command a message names is an action offered enabled, and a
/// retry, a promote, or an abort of a failed rollout offered is named by the message.
#[test]
fn what_a_status_says_to_run_argo_cd_offers() {
    let (states, failures) = disagreements(&root());
    assert!(states >= 20, "only {states} states under config/argocd");
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A discovery that withholds what a message names, or offers what it must name, fails.
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_tree(&root(), tmp.path());
    let discovery = tmp.path().join("baton.dev/Rollout/actions/discovery.lua");
    edit(
        &discovery,
        "return actions",
        "actions[\"retry\"] = {[\"disabled\"] = true}\nreturn actions",
    );
    let (_, failures) = disagreements(tmp.path());
    assert!(
        !failures.is_empty() && failures.iter().all(|f| f.contains("run `baton rollout retry`")),
        "{failures:#?}"
    );
    edit(
        &discovery,
        "[\"retry\"] = {[\"disabled\"] = true}",
        "[\"promote\"] = {[\"disabled\"] = false}",
    );
    let (_, failures) = disagreements(tmp.path());
    assert!(
        !failures.is_empty()
            && failures
                .iter()
                .all(|f| f.contains("offers promote, and the status does not")),
        "{failures:#?}"
    );
}

/// `script` as a health.lua of its own, run on an empty object.
fn health_of_script(script: &str) -> Result<(String, String), String> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("health.lua");
    std::fs::write(&path, script).expect("write");
    health_at(&path, &json!({"metadata": {"name": "x"}}))
}

#[test]
fn scripts_run_in_argo_cds_sandbox() {
    // `os` only through require, with date and time: as argo-cd's oslib_safe.go gives it.
    let year = jiff::Timestamp::now().to_string()[..4].to_string();
    assert_eq!(
        health_of_script("local os = require(\"os\")\nreturn {status = \"Healthy\", message = os.date(\"!%Y\")}"),
        Ok(("Healthy".into(), year))
    );
    for script in [
        "return {status = \"Healthy\", message = os.date(\"!%Y\")}",
        "local os = require(\"os\")\nreturn {status = \"Healthy\", message = os.getenv(\"HOME\")}",
        "return {status = \"Healthy\", message = string.upper(\"x\")}",
        "return {status = \"Healthy\", message = (\"x\"):upper()}",
        "return {status = \"Healthy\", message = tostring(math.floor(1.5))}",
        "local io = require(\"io\")\nreturn {status = \"Healthy\"}",
    ] {
        assert!(health_of_script(script).is_err(), "{script} ran");
    }
    assert_eq!(
        health_of_script("return {status = \"Fine\"}"),
        Ok(("Unknown".into(), "Lua returned an invalid health status".into()))
    );
}

/// The `## Argo CD` section of docs/rollouts.md: its YAML blocks.
fn docs_yaml_blocks() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rollouts.md");
    let doc = std::fs::read_to_string(&path).expect("docs/rollouts.md");
    let start = doc.find("\n## Argo CD\n").expect("an Argo CD section");
    let section = &doc[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    section
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or("").to_string())
        .collect()
}

/// `to` relative to directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let up = from.components().count() - 1;
    let mut out = PathBuf::new();
    for _ in 0..up {
        out.push("..");
    }
    out.join(to.strip_prefix("/").expect("absolute"))
}

#[test]
fn the_installation_the_docs_show_puts_the_scripts_in_argocd_cm() {
    let blocks = docs_yaml_blocks();
    let kustomization = blocks
        .iter()
        .find(|b| b.contains("components:"))
        .expect("a kustomization");
    let mut k: Value = serde_saphyr::from_str(kustomization).expect("the kustomization parses");
    let placeholder = json!("path/to/baton/config/argocd");
    assert_eq!(k["components"], json!([placeholder]), "{kustomization}");

    // Argo CD's install.yaml (not fetched here) stands as its argocd-cm.
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm, namespace: argocd}\ndata: {url: https://argocd.example.com}\n",
    )
    .expect("write");
    k["resources"] = json!(["cm.yaml"]);
    k["components"] = json!([relative(tmp.path(), &root())]);
    std::fs::write(
        tmp.path().join("kustomization.yaml"),
        serde_saphyr::to_string(&k).expect("YAML"),
    )
    .expect("write");
    let out = Command::new("/usr/bin/kubectl")
        .arg("kustomize")
        .arg(tmp.path())
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm: Value = serde_saphyr::from_slice(&out.stdout).expect("one ConfigMap");
    assert_eq!(
        (text(&cm, "kind"), text(&cm["metadata"], "name")),
        ("ConfigMap", "argocd-cm")
    );
    assert_eq!(text(&cm["metadata"], "namespace"), "argocd");
    let data = cm["data"].as_object().expect("data");
    assert_eq!(
        text(&cm["data"], "url"),
        "https://argocd.example.com",
        "the rest is kept"
    );
    let file = |rel: &str| std::fs::read_to_string(root().join(rel)).expect("a script");
    let want = BTreeMap::from([
        (
            "resource.customizations.health.baton.dev_Rollout",
            file("baton.dev/Rollout/health.lua"),
        ),
        (
            "resource.customizations.health.baton.dev_ListenerSet",
            file("baton.dev/ListenerSet/health.lua"),
        ),
        (
            "resource.customizations.actions.baton.dev_Rollout",
            file("baton.dev/Rollout/actions.yaml"),
        ),
    ]);
    for (key, content) in &want {
        assert_eq!(data.get(*key).and_then(Value::as_str), Some(content.as_str()), "{key}");
    }
    assert_eq!(data.len(), want.len() + 1, "{:?}", data.keys());

    // The argo-cd Helm chart's values: the same keys, each naming the file the component puts there.
    let helm = blocks.iter().find(|b| b.contains("configs:")).expect("Helm values");
    let values: Value = serde_saphyr::from_str(helm).expect("the values parse");
    let cm_values = values["configs"]["cm"].as_object().expect("configs.cm");
    assert_eq!(
        cm_values.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        want.keys().copied().collect()
    );
    for (key, v) in cm_values {
        let rel = v
            .as_str()
            .unwrap_or("")
            .split("config/argocd/")
            .nth(1)
            .map(str::trim)
            .expect("names a file");
        assert_eq!(Some(&file(rel)), want.get(key.as_str()), "{key} names {rel}");
    }
}
