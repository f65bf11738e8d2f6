//! The CLI: kubectl's global flags, `rollout list -A`, `-o`, tables sized to their
//! content, kubectl's error messages, a closed pipe, completion scripts. The real `baton`
//! binary, and real kubectl running it as the plugin `kubectl baton`, against the test's API
//! server: baton-sim, or the real control plane (`BATON_TEST_CLUSTER=real`), where the test's
//! namespaces are its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use crate::cli_support::cluster::{with_contexts, Namespace};
use crate::cli_support::*;
use crate::support::Env;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

/// Rollout `name` in namespace `ns`, applied as is (no controller: its status stays empty).
async fn put(env: &Env, ns: &str, name: &str, replicas: i32, version: &str) {
    let mut m = env.manifest_v(name, replicas, version);
    m["metadata"]["namespace"] = json!(ns);
    let api: Api<baton::api::rollout::Rollout> = Api::namespaced(env.client.clone(), ns);
    api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&m))
        .await
        .unwrap_or_else(|e| panic!("applying {ns}/{name}: {e}"));
}

use crate::support::ROLLOUT_COLUMNS as LIST_HEADER;

/// `kubectl baton rollout list --context X`, `-n`, `-A -o json`, `-o wide`, `--kubeconfig`
/// optional, and a table whose columns fit a long name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_plugin_takes_kubectls_global_flags_and_lists_across_namespaces() {
    let env = Env::start().await;
    let team_b = Namespace::create(&env, "team-b").await;
    let (ns, ns_b) = (env.ns.as_str(), team_b.name.as_str());
    let long = "a-rollout-with-a-name-much-longer-than-eight-tabs";
    put(&env, ns, "web", 3, "v1").await;
    put(&env, ns, long, 1, "v2.0.0-rc.1").await;
    put(&env, ns_b, "web", 2, "v1").await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    with_contexts(&env.admin_kubeconfig(), &kc, &[("sim", ns), ("team-b", ns_b)]);
    // On the real control plane `-A` lists other tests' Rollouts too: this test's are those of
    // its two namespaces.
    let ours = |namespace: &str| namespace == ns || namespace == ns_b;
    let plugin = Plugin::install();

    // The current context's namespace, a long name: columns sized to their content.
    let r = plugin.kubectl(&kc, &["baton", "rollout", "list"]).await;
    assert_eq!(r.code, 0, "{r}");
    let mut want = vec![LIST_HEADER.to_vec()];
    want.push(vec![long, "1", "0", "0", "0", "<none>", "Pending", "<none>", "<age>"]);
    want.push(vec!["web", "3", "0", "0", "0", "<none>", "Pending", "<none>", "<age>"]);
    assert_eq!(
        cells(&r.stdout, &["AGE"]),
        expect(&want.iter().map(|r| r.as_slice()).collect::<Vec<_>>())
    );
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("NAME{}DESIRED", " ".repeat(long.len() - 4 + 3))),
        "the NAME column is as wide as the longest name plus three spaces:\n{}",
        r.stdout
    );

    // --context picks the other context (and its namespace).
    let r = plugin
        .kubectl(&kc, &["baton", "rollout", "list", "--context", "team-b"])
        .await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        cells(&r.stdout, &["AGE"]),
        expect(&[
            LIST_HEADER,
            &["web", "2", "0", "0", "0", "<none>", "Pending", "<none>", "<age>"]
        ])
    );
    // -n wins over the context's namespace.
    let r = plugin
        .kubectl(&kc, &["baton", "rollout", "get", "-n", ns_b, "--context", "sim"])
        .await;
    assert_eq!(cells(&r.stdout, &["AGE"])[1][1], "2", "{r}");

    // -A -o json: a v1 List of both namespaces' Rollouts.
    let r = plugin
        .kubectl(&kc, &["baton", "rollout", "list", "-A", "-o", "json"])
        .await;
    assert_eq!(r.code, 0, "{r}");
    let list: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("List"))
    );
    let listed: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| ours(i["metadata"]["namespace"].as_str().unwrap_or_default()))
        .collect();
    let items: Vec<(String, String)> = listed
        .iter()
        .map(|i| {
            (
                i["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
                i["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (ns.to_string(), long.to_string()),
            (ns.to_string(), "web".to_string()),
            (ns_b.to_string(), "web".to_string())
        ]
    );
    assert!(
        listed[0]["metadata"].get("managedFields").is_none(),
        "kubectl hides managedFields"
    );
    assert!(
        r.stdout.starts_with("{\n    \"apiVersion\": \"v1\",\n"),
        "kubectl's indent:\n{}",
        r.stdout
    );

    // -A as a table has a NAMESPACE column; -o wide adds TARGET, READY, IMAGES.
    let r = plugin
        .kubectl(&kc, &["baton", "rollout", "list", "-A", "-o", "wide"])
        .await;
    let mut c = cells(&r.stdout, &["AGE"]);
    c.retain(|row| row[0] == "NAMESPACE" || ours(&row[0]));
    assert_eq!(
        c[0],
        [&["NAMESPACE"], LIST_HEADER, &["TARGET", "READY", "IMAGES"]].concat()
    );
    assert_eq!(
        c[3],
        [ns_b, "web", "2", "0", "0", "0", "<none>", "Pending", "<none>", "<age>", "v1", "False", "svc:v1"]
    );
    // -o yaml and -o name.
    let r = baton(&kc, &["rollout", "list", "-o", "name"]).await;
    assert_eq!(
        r.stdout,
        format!("rollout.baton.dev/{long}\nrollout.baton.dev/web\n"),
        "{r}"
    );
    let r = baton(&kc, &["rollout", "list", "-n", ns_b, "-o", "yaml"]).await;
    assert!(r.stdout.starts_with("apiVersion: v1\nitems:\n"), "{r}");

    // --kubeconfig is optional: $KUBECONFIG (or ~/.kube/config) is used, and usage says so.
    let r = run(BATON, &["--help"], &[]).await;
    assert!(r.stdout.contains("\nUsage: baton [OPTIONS] <COMMAND>\n"), "{r}");
    assert!(r.stdout.contains("--kubeconfig <PATH>"), "{r}");
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".kube")).unwrap();
    std::fs::copy(&kc, home.path().join(".kube").join("config")).unwrap();
    let r = run(
        BATON,
        &["rollout", "list", "--context", "team-b", "-o", "name"],
        &[("HOME", &home.path().to_string_lossy()), ("KUBECONFIG", "")],
    )
    .await;
    assert_eq!(r.stdout, "rollout.baton.dev/web\n", "{r}");
    // An empty namespace, as kubectl says it.
    let r = baton(&kc, &["rollout", "list", "-n", "nothing-here"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "", "No resources found in nothing-here namespace.\n")
    );
}

/// API errors as kubectl prints them, never a Rust Debug dump; the same words as real kubectl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_print_like_kubectl() {
    let env = Env::start().await;
    let kc = env.admin_kubeconfig();
    let plugin = Plugin::install();
    let kubectl = plugin.kubectl(&kc, &["get", "rollouts.baton.dev", "nope"]).await;
    assert_eq!(kubectl.code, 1, "{kubectl}");
    let want = "Error from server (NotFound): rollouts.baton.dev \"nope\" not found\n";
    assert_eq!(kubectl.stderr, want, "what kubectl itself prints");
    for args in [
        vec!["baton", "rollout", "status", "nope"],
        vec!["baton", "rollout", "history", "nope"],
        vec!["baton", "rollout", "pause", "nope"],
        vec!["baton", "rollout", "set", "image", "nope", "app=svc:v2"],
    ] {
        let r = plugin.kubectl(&kc, &args).await;
        // Exit 4: not found (kubectl's own exit is 1 for every error; baton's codes tell them
        // apart, and the plugin passes its code through).
        assert_eq!(
            (r.code, r.stderr.as_str(), r.stdout.as_str()),
            (4, want, ""),
            "{args:?}"
        );
    }
    let r = baton(&kc, &["listeners", "nope"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            4,
            "Error from server (NotFound): listenersets.baton.dev \"nope\" not found\n"
        )
    );
    // Nobody listening: kubectl's words, with the address.
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("kubeconfig");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    kubeconfig(&dead, &format!("http://127.0.0.1:{port}"), "u", &[("dead", "default")]);
    let r = baton(&dead, &["rollout", "list"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            5,
            format!(
                "The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?\n"
            )
            .as_str()
        ),
        "{r}"
    );
}

/// A one-connection HTTP server that records each request's head and answers 404 with a
/// Status (or never answers, `silent`).
fn fake_server(silent: bool) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            if silent {
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink);
                continue;
            }
            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"rollouts.baton.dev \"x\" not found","reason":"NotFound","code":404}"#;
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, rx)
}

/// `--as`/`--as-group` send kubectl's impersonation headers; `--request-timeout` bounds a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_and_request_timeout() {
    let (url, heads) = fake_server(false);
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    kubeconfig(&kc, &url, "me", &[("fake", "default")]);
    let r = baton(
        &kc,
        &[
            "rollout",
            "status",
            "x",
            "--as",
            "alice",
            "--as-group",
            "ops",
            "--as-group",
            "dev",
        ],
    )
    .await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (4, "Error from server (NotFound): rollouts.baton.dev \"x\" not found\n"),
        "{r}"
    );
    let head = heads.recv().expect("a request").to_ascii_lowercase();
    assert!(
        head.starts_with("get /apis/baton.dev/v1alpha1/namespaces/default/rollouts/x "),
        "{head}"
    );
    assert!(head.contains("\r\nimpersonate-user: alice\r\n"), "{head}");
    assert!(
        head.contains("\r\nimpersonate-group: ops\r\n") && head.contains("\r\nimpersonate-group: dev\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nauthorization: bearer me\r\n"), "{head}");

    let (url, _heads) = fake_server(true);
    kubeconfig(&kc, &url, "me", &[("fake", "default")]);
    let started = std::time::Instant::now();
    let r = baton(&kc, &["rollout", "list", "--request-timeout", "1s"]).await;
    assert_eq!(r.code, 5, "{r}");
    assert!(r.stderr.starts_with("Unable to connect to the server: "), "{r}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let r = baton(&kc, &["rollout", "list", "--request-timeout", "soon"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (64, "error: Invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)\n")
    );
}

/// `baton crds | head -1` prints one line and nothing else; baton itself exits 0, quietly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_quietly() {
    let full = run(BATON, &["crds"], &[]).await;
    let first = full.stdout.lines().next().unwrap_or_default().to_string();
    let r = run("sh", &["-c", &format!("{BATON} crds | head -1")], &[]).await;
    assert_eq!(
        (r.code, r.stdout.clone(), r.stderr.as_str()),
        (0, format!("{first}\n"), ""),
        "{r}"
    );
    // The writer's own exit: read one line, close the pipe, wait.
    let mut child = std::process::Command::new(BATON)
        .arg("crds")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned()),
        (Some(0), String::new())
    );
}

/// `baton completion bash|zsh|fish`: scripts that call baton back on each TAB (the names
/// themselves are tested in cli_completion.rs); bash really loads its own; `--help` says how to
/// install, kubectl's completer included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_scripts() {
    let r = run(
        "bash",
        &["-c", &format!("source <({BATON} completion bash) && complete -p baton")],
        &[],
    )
    .await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (
            0,
            "complete -o bashdefault -o nosort -o nospace -F _clap_complete_baton baton\n",
            ""
        ),
        "{r}"
    );
    let r = run(BATON, &["completion", "zsh"], &[]).await;
    assert_eq!(r.stdout.lines().next(), Some("#compdef baton"), "{r}");
    assert!(
        r.stdout
            .contains(&format!("BATON_COMPLETE=\"zsh\" \\\n        {BATON} --")),
        "{r}"
    );
    let r = run(BATON, &["completion", "fish"], &[]).await;
    assert!(
        r.stdout.contains(&format!(
            "complete --keep-order --exclusive --command baton --arguments \"(BATON_COMPLETE=fish {BATON} -- "
        )),
        "{r}"
    );
    let r = run(BATON, &["completion", "tcsh"], &[]).await;
    assert_eq!(r.code, i32::from(baton::session::exit::USAGE), "{r}");
    let r = run(BATON, &["completion", "--help"], &[]).await;
    assert!(r.stdout.contains("source <(baton completion bash)"), "{r}");
    assert!(r.stdout.contains("kubectl_complete-baton"), "{r}");
}

/// `baton demo` runs its own API server: its `--help` lists its own flags and none of
/// kubectl's, which every other command's help lists, and a kubectl flag given to it is a usage
/// error rather than ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_takes_no_kubectl_flags() {
    const KUBECTL_FLAGS: [&str; 8] = [
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "--namespace",
        "--as",
        "--as-group",
        "--request-timeout",
    ];
    // The long flags a help text lists: those its option lines start with.
    let flags = |help: &str| -> Vec<String> {
        help.lines()
            .filter(|l| l.trim_start().starts_with('-'))
            .filter_map(|l| l.split([' ', ',', '=', '[', '<']).find(|w| w.starts_with("--")))
            .map(String::from)
            .collect()
    };
    let demo = run(BATON, &["demo", "--help"], &[]).await;
    assert_eq!((demo.code, demo.stderr.as_str()), (0, ""), "{demo}");
    let demo_flags = flags(&demo.stdout);
    assert!(demo_flags.iter().any(|f| f == "--keep"), "{demo_flags:?}\n{demo}");
    for f in KUBECTL_FLAGS {
        assert!(
            !demo_flags.iter().any(|d| d == f),
            "baton demo --help lists {f}:\n{}",
            demo.stdout
        );
    }
    let list = run(BATON, &["rollout", "list", "--help"], &[]).await;
    let list_flags = flags(&list.stdout);
    for f in KUBECTL_FLAGS {
        assert!(
            list_flags.iter().any(|d| d == f),
            "rollout list --help lacks {f}:\n{}",
            list.stdout
        );
    }
    for (args, given) in [
        (vec!["demo", "--kubeconfig", "/nowhere"], "--kubeconfig"),
        (vec!["-n", "prod", "demo"], "--namespace"),
        (
            vec!["demo", "--context", "prod", "--request-timeout=5s"],
            "--context, --request-timeout",
        ),
    ] {
        let r = run(BATON, &args, &[]).await;
        let refused = format!(
            "error: baton demo runs its own API server and takes no kubeconfig or namespace: {given} does not apply\n"
        );
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (64, "", refused.as_str()),
            "{args:?}"
        );
    }
}
