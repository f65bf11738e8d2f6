//! kubectl's printing flags on `baton rollout list|get` and `baton listeners list`: each
//! format prints what real `kubectl get` prints for the same objects (`-o jsonpath=…`,
//! `jsonpath-file=`, `custom-columns=`, `custom-columns-file=`, `name`, `json`, `--no-headers`,
//! `--show-labels`, the table, `-o wide`), and a template kubectl refuses is refused the same way.

use crate::cli_support::*;
use crate::support::docs::{same_text, shown, squeezed, words};
use crate::support::kubectl::Kubectl;
use crate::support::Env;
use serde_json::Value;

/// A Rollout `name` labelled `tier=…` and two ListenerSets (one selecting no pod), with the
/// controller writing their statuses.
async fn objects(env: &Env, k: &Kubectl) {
    for (name, version, tier) in [("web", "v1", "front"), ("api", "v2", "back")] {
        let mut m = env.manifest_v(name, 1, version);
        m["metadata"]["labels"] = serde_json::json!({"tier": tier});
        env.apply(&m).await;
    }
    let sets = "apiVersion: baton.dev/v1alpha1
kind: ListenerSet
metadata: {name: sxt, labels: {team: a}}
spec:
  selector: {matchLabels: {app: nowhere}}
  listeners: [{id: l1}, {id: l2}]
---
apiVersion: baton.dev/v1alpha1
kind: ListenerSet
metadata: {name: empty}
spec:
  selector: {matchLabels: {app: nowhere}}
  listeners: []
";
    let file = k.home().join("sets.yaml");
    std::fs::write(&file, sets).expect("write sets");
    k.ok(&["apply", "-f", &file.to_string_lossy()]).await;
}

/// Without managedFields, which kubectl leaves out by default (`--show-managed-fields`).
fn without_managed_fields(mut v: Value) -> Value {
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        for i in items {
            if let Some(m) = i.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
        }
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_prints_what_kubectl_get_prints() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    let k = env.kubectl();
    objects(&env, &k).await;
    let kc = env.admin_kubeconfig();
    // Both ListenerSets reported on (a REASON to print) and both Rollouts healthy.
    env.wait_healthy("web", "v1", 1).await;
    env.wait_healthy("api", "v2", 1).await;
    crate::support::wait_for("ListenerSet statuses", crate::support::LONG, || async {
        let out = k
            .ok(&["get", "lset", "-o", "jsonpath={.items[*].status.conditions[0].reason}"])
            .await;
        (out.split(' ').filter(|r| !r.is_empty()).count() == 2).then_some(())
    })
    .await;
    // The examples of docs/operating.md, run as shown.
    for doc in shown("docs/operating.md", "output-flags") {
        let w = words(&doc.command);
        assert_eq!(w[0], "baton", "{doc:?}");
        let args: Vec<&str> = w[1..].iter().map(String::as_str).collect();
        let r = baton(&kc, &args).await;
        assert_eq!(r.code, 0, "{r}");
        assert!(
            same_text(&r.stdout, &doc.output),
            "docs:\n{}\nrun:\n{}",
            doc.output,
            r.stdout
        );
    }
    let columns_file = k.home().join("columns.txt");
    std::fs::write(&columns_file, "NAME          VERSION\n.metadata.name .spec.version\n").expect("write");
    let template_file = k.home().join("template.txt");
    std::fs::write(
        &template_file,
        "{range .items[*]}{.metadata.name}={.metadata.labels}{\"\\n\"}{end}",
    )
    .expect("write");
    let columns_flag = format!("custom-columns-file={}", columns_file.display());
    let template_flag = format!("jsonpath-file={}", template_file.display());
    let formats: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-o", "wide"],
        vec!["--no-headers"],
        vec!["--show-labels"],
        vec!["-o", "name"],
        vec!["-o", "jsonpath={.items[*].metadata.name}"],
        vec![
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\t\"}{.spec.version}{\"\\n\"}{end}",
        ],
        vec!["-o", "jsonpath-as-json={.items[*].metadata.name}"],
        vec!["-o", &template_flag],
        vec![
            "-o",
            "custom-columns=NAME:.metadata.name,VERSION:.spec.version,MISSING:.spec.nope",
        ],
        vec!["-o", "custom-columns=NAME:.metadata.name", "--no-headers"],
        vec!["-o", &columns_flag],
    ];
    for (ours, theirs) in [
        (vec!["rollout", "list"], vec!["get", "rollouts"]),
        (vec!["rollout", "get"], vec!["get", "rollouts"]),
        (vec!["rollout", "list", "web"], vec!["get", "rollout", "web"]),
        (vec!["listeners", "list"], vec!["get", "listenersets"]),
        (vec!["listeners", "list", "sxt"], vec!["get", "listenerset", "sxt"]),
        (
            vec!["rollout", "list", "-l", "tier=front"],
            vec!["get", "rollouts", "-l", "tier=front"],
        ),
    ] {
        for f in &formats {
            let is_list = ours.len() == 2 || ours.contains(&"-l");
            // A single object has no `.items`: kubectl's templates above are for lists.
            if !is_list && f.iter().any(|a| a.contains(".items") || a.starts_with("jsonpath-file")) {
                continue;
            }
            let mut o = ours.clone();
            o.extend(f);
            let mut t = theirs.clone();
            t.extend(f);
            let kubectl = k.run(&t).await;
            let r = baton(&kc, &o).await;
            assert_eq!(kubectl.code, 0, "kubectl {t:?}: {kubectl}");
            assert_eq!(r.code, 0, "baton {o:?}: {r}");
            assert!(
                same_text(&r.stdout, &kubectl.stdout),
                "baton {o:?} prints:\n{}\nkubectl {t:?} prints:\n{}",
                r.stdout,
                kubectl.stdout
            );
        }
        let mut o = ours.clone();
        o.extend(["-o", "json"]);
        let mut t = theirs.clone();
        t.extend(["-o", "json"]);
        let ours_json: Value = serde_json::from_str(&baton(&kc, &o).await.stdout).expect("baton's JSON");
        let theirs_json: Value = serde_json::from_str(&k.ok(&t).await).expect("kubectl's JSON");
        let (a, b) = (without_managed_fields(ours_json), without_managed_fields(theirs_json));
        assert_eq!(a["kind"], b["kind"], "{o:?}");
        assert_eq!(
            a.get("items").map(|i| i.as_array().map(Vec::len)),
            b.get("items").map(|i| i.as_array().map(Vec::len))
        );
        assert_eq!(a.pointer("/metadata/name"), b.pointer("/metadata/name"), "{o:?}");
    }
}

/// Names that exist and names that do not: what kubectl prints — the objects found on stdout
/// (a row, a name, a List), a NotFound on stderr for each missing name — and the exit code of
/// not found (kubectl's is 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_names_are_reported_after_what_was_found() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    let k = env.kubectl();
    objects(&env, &k).await;
    env.wait_healthy("web", "v1", 1).await;
    let kc = env.admin_kubeconfig();
    for (ours, theirs) in [
        (
            vec!["rollout", "list", "web", "nope"],
            vec!["get", "rollouts", "web", "nope"],
        ),
        (
            vec!["rollout", "list", "nope", "web", "gone", "-o", "name"],
            vec!["get", "rollouts", "nope", "web", "gone", "-o", "name"],
        ),
        (
            vec!["listeners", "list", "sxt", "nope", "--no-headers"],
            vec!["get", "listenersets", "sxt", "nope", "--no-headers"],
        ),
        (
            vec!["rollout", "list", "nope", "gone"],
            vec!["get", "rollouts", "nope", "gone"],
        ),
        (
            vec!["rollout", "list", "web", "nope", "-o", "json"],
            vec!["get", "rollouts", "web", "nope", "-o", "json"],
        ),
    ] {
        let kubectl = k.run(&theirs).await;
        let r = baton(&kc, &ours).await;
        assert_eq!(kubectl.code, 1, "kubectl {theirs:?}: {kubectl}");
        assert_eq!(r.code, 4, "baton {ours:?}: {r}");
        assert_eq!(r.stderr, kubectl.stderr, "baton {ours:?}");
        if ours.contains(&"json") {
            let names = |out: &str| -> Vec<Value> {
                let v: Value = serde_json::from_str(out).expect("a JSON List");
                assert_eq!(v["kind"], "List", "{out}");
                v["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .map(|i| i["metadata"]["name"].clone())
                    .collect()
            };
            assert_eq!(names(&r.stdout), names(&kubectl.stdout), "baton {ours:?}");
        } else {
            assert!(
                same_text(&r.stdout, &kubectl.stdout),
                "baton {ours:?} prints:\n{}\nkubectl {theirs:?} prints:\n{}",
                r.stdout,
                kubectl.stdout
            );
        }
    }
}

/// A template kubectl cannot parse or a format it does not know: the same words, exit 64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_template_or_format_is_refused_as_kubectl_refuses_it() {
    let env = Env::start().await;
    let k = env.kubectl();
    env.apply(&env.manifest_v("web", 1, "v1")).await;
    let kc = env.admin_kubeconfig();
    for f in [
        vec!["-o", "jsonpath={.items[}"],
        vec!["-o", "jsonpath="],
        vec!["-o", "yml"],
        vec!["-o", "custom-columns=NAME"],
        vec!["-o", "json", "--show-labels"],
    ] {
        let mut t = vec!["get", "rollouts"];
        t.extend(&f);
        let mut o = vec!["rollout", "list"];
        o.extend(&f);
        let kubectl = k.run(&t).await;
        let r = baton(&kc, &o).await;
        assert_ne!(kubectl.code, 0, "{t:?}");
        // kubectl's words, but the formats listed are baton's (no Go templates).
        let allowed = "allowed formats are: ";
        match kubectl.stderr.split_once(allowed) {
            Some((head, _)) => assert_eq!(
                (r.code, r.stderr.as_str()),
                (
                    64,
                    format!("{head}{allowed}custom-columns,custom-columns-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,wide,yaml\n").as_str()
                ),
                "{f:?}"
            ),
            None => assert_eq!((r.code, r.stderr.as_str()), (64, kubectl.stderr.as_str()), "{f:?}"),
        }
    }
}

/// A command that keeps printing (`-w`), read line by line.
struct Follower {
    /// Killed when the follower is dropped.
    _child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    seen: Vec<String>,
}

impl Follower {
    fn spawn(mut cmd: tokio::process::Command) -> Follower {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starts");
        let stdout = child.stdout.take().expect("stdout");
        use tokio::io::AsyncBufReadExt;
        Follower {
            _child: child,
            lines: tokio::io::BufReader::new(stdout).lines(),
            seen: Vec::new(),
        }
    }

    /// Read until a line satisfies `done`; every line read so far.
    async fn until(&mut self, what: &str, done: impl Fn(&str) -> bool) -> &[String] {
        let deadline = tokio::time::Instant::now() + crate::support::LONG;
        while !self.seen.last().is_some_and(|l| done(l)) {
            match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => self.seen.push(line),
                other => panic!("{what}: {other:?} after {:?}", self.seen),
            }
        }
        &self.seen
    }
}

/// `-w`: the list, then a row per change, aligned with the rows before, as `kubectl get -w`
/// prints them for the same changes; with `-o name`, a name per change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_each_change_as_kubectl_get_w_does() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    env.apply(&env.manifest_v("web", 1, "v1")).await;
    env.wait_healthy("web", "v1", 1).await;
    let k = env.kubectl();
    let mut theirs = Follower::spawn(k.cmd(&["get", "rollouts", "-w"]));
    let mut ours_cmd = tokio::process::Command::new(BATON);
    ours_cmd
        .args(["rollout", "list", "-w"])
        .env("KUBECONFIG", env.admin_kubeconfig())
        .env_remove("RUST_LOG");
    let mut ours = Follower::spawn(ours_cmd);
    let mut names_cmd = tokio::process::Command::new(BATON);
    names_cmd
        .args(["rollout", "get", "-w", "-o", "name"])
        .env("KUBECONFIG", env.admin_kubeconfig())
        .env_remove("RUST_LOG");
    let mut names = Follower::spawn(names_cmd);
    let first = |l: &str| l.starts_with("web ");
    theirs.until("kubectl's first row", first).await;
    ours.until("baton's first row", first).await;
    names
        .until("baton's first name", |l| l == "rollout.baton.dev/web")
        .await;

    env.apply(&env.manifest_v("web", 1, "v2")).await;
    env.wait_healthy("web", "v2", 1).await;
    let healthy_v2 = |l: &str| l.starts_with("web ") && l.contains(" v2 ") && l.contains(" Healthy ");
    let theirs = theirs.until("kubectl's row for v2 Healthy", healthy_v2).await.to_vec();
    let ours = ours.until("baton's row for v2 Healthy", healthy_v2).await.to_vec();
    // Row for row the same, but for one judgement: while the status describes an earlier
    // generation, baton's PHASE says Pending where kubectl shows the phase as last written.
    let phase = ours[0]
        .split_whitespace()
        .position(|w| w == "PHASE")
        .expect("a PHASE column");
    let report = format!(
        "baton rollout list -w:\n{}\nkubectl get rollouts -w:\n{}",
        ours.join("\n"),
        theirs.join("\n")
    );
    assert_eq!(ours.len(), theirs.len(), "{report}");
    for (a, b) in ours.iter().zip(&theirs) {
        let (a, b) = (squeezed(a), squeezed(b));
        let (mut a, b): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
        if a.get(phase) == Some(&"Pending") {
            a[phase] = b.get(phase).copied().unwrap_or_default();
        }
        assert_eq!(a, b, "{report}");
    }
    // Every row under the header starts where kubectl's tabwriter starts it.
    let at = |l: &str, col: &str| ours[0].find(col).map(|i| l.get(i..).unwrap_or_default().to_string());
    for l in &ours[1..] {
        assert!(at(l, "PHASE").is_some_and(|rest| !rest.starts_with(' ')), "{ours:?}");
    }
    let names = names.until("a second name", |l| l == "rollout.baton.dev/web").await;
    assert!(names.iter().all(|l| l == "rollout.baton.dev/web"), "{names:?}");
}
