//! One table of exit codes for every command (docs/operating.md, "Exit codes and timeouts of
//! the CLI"): 0 ok, 1 failed or rolled back, 2 timeout, 3 in progress, 4 not found, 5 API
//! server or connection or kubeconfig, 64 usage. A usage error no longer looks like a timeout,
//! nor a missing object or an unreachable server like a rollback; a server that accepts the
//! connection and never answers ends the command; a kubeconfig that cannot be used is said in
//! kubectl's words. The real `baton` binary, and real kubectl for the words.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::cli_support::*;
use crate::support::kubectl::Kubectl;
use crate::support::Env;

/// `baton ARGS` with no `KUBECONFIG` and a HOME without one (commands that never reach a
/// server).
async fn offline(args: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("home");
    run(
        BATON,
        args,
        &[("HOME", &home.path().to_string_lossy()), ("KUBECONFIG", "")],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_64_and_help_exits_0() {
    for args in [
        vec!["rollout", "frobnicate"],
        vec!["rollout", "status"],
        vec!["rollout", "list", "--no-such-flag"],
        vec!["rollout", "status", "web", "--watch", "maybe"],
    ] {
        let r = offline(&args).await;
        assert_eq!(r.code, 64, "{args:?}: {r}");
        assert!(r.stderr.starts_with("error: "), "{args:?}: {r}");
    }
    for args in [vec!["--help"], vec!["rollout", "--help"], vec!["--version"]] {
        let r = offline(&args).await;
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{args:?}: {r}");
    }
    let r = offline(&["--help"]).await;
    assert!(
        r.stdout.contains("Exit codes: 0 ok, 1 failed or rolled back"),
        "{}",
        r.stdout
    );
}

/// Each code once, against the API server: NotFound 4, a bad `--timeout` 64, a timeout 2, still
/// in progress 3; and the API server refusing (a Forbidden) 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_has_its_own_code() {
    let env = Env::start().await;
    let kc = env.admin_kubeconfig();
    let r = baton(&kc, &["rollout", "status", "nope"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            4,
            "Error from server (NotFound): rollouts.baton.dev \"nope\" not found\n"
        )
    );
    let r = baton(&kc, &["rollout", "list", "nope"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            4,
            "Error from server (NotFound): rollouts.baton.dev \"nope\" not found\n"
        )
    );
    let r = baton(&kc, &["rollout", "status", "nope", "--timeout", "soon"]).await;
    assert_eq!(r.code, 64, "{r}");
    // No controller runs: the Rollout never gets a status.
    env.apply(&env.manifest_v("web", 1, "v1")).await;
    let r = baton(&kc, &["rollout", "status", "web", "--watch=false"]).await;
    assert_eq!(r.code, 3, "{r}");
    let r = baton(&kc, &["rollout", "status", "web", "--timeout", "1s"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "error: timed out waiting for rollout web\n"),
        "{r}"
    );
    env.kubectl()
        .ok(&["create", "serviceaccount", "nobody", "-n", &env.ns])
        .await;
    let dir = tempfile::tempdir().expect("dir");
    let nobody = dir.path().join("nobody.kubeconfig");
    cluster::service_account_kubeconfig(&env, "nobody", &nobody).await;
    let r = baton(&nobody, &["rollout", "list"]).await;
    assert_eq!(r.code, 5, "{r}");
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): rollouts.baton.dev is forbidden: User \"system:serviceaccount:{ns}:nobody\" \
             cannot list resource \"rollouts\" in API group \"baton.dev\" in the namespace \"{ns}\"\n",
            ns = env.ns
        )
    );
}

/// A server that accepts the connection and never answers: without `--request-timeout` the
/// command still ends (exit 5), within the default read timeout; with `--request-timeout 1s`
/// at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_never_hangs_a_command() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().expect("dir");
    let kc = dir.path().join("kubeconfig");
    kubeconfig(&kc, &url, "me", &[("silent", "default")]);
    let started = Instant::now();
    let r = baton(&kc, &["rollout", "list", "--request-timeout", "1s"]).await;
    assert_eq!(r.code, 5, "{r}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    let started = Instant::now();
    let r = baton(&kc, &["rollout", "status", "web"]).await;
    assert_eq!(r.code, 5, "{r}");
    assert!(r.stderr.starts_with("Unable to connect to the server: "), "{r}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(29) && took < Duration::from_secs(80),
        "the default read timeout is 30 s: {took:?}"
    );
}

/// A kubeconfig that cannot be used: kubectl's words, exit 5 (kubectl's own exit is 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_errors_read_as_kubectl_prints_them() {
    let dir = tempfile::tempdir().expect("dir");
    let kc = dir.path().join("kubeconfig");
    kubeconfig(&kc, "https://127.0.0.1:1", "me", &[("ctx", "default")]);
    let missing = dir.path().join("missing.yaml");
    let cases: Vec<Vec<String>> = vec![
        vec!["--context".into(), "nope".into()],
        vec!["--user".into(), "nobody".into()],
        vec!["--cluster".into(), "nocl".into()],
        vec!["--kubeconfig".into(), missing.to_string_lossy().into_owned()],
    ];
    let k = Kubectl::with_kubeconfig(kc.clone());
    for flags in cases {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut theirs = flags.clone();
        theirs.extend(["get", "rollouts.baton.dev"]);
        let kubectl = k.run(&theirs).await;
        let mut ours = flags.clone();
        ours.extend(["rollout", "list"]);
        let r = baton(&kc, &ours).await;
        assert_eq!(kubectl.code, 1, "{flags:?}: {kubectl}");
        assert_eq!((r.code, r.stderr.as_str()), (5, kubectl.stderr.as_str()), "{flags:?}");
    }
}
