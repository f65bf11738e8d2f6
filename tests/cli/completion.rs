//! Shell completion of resource names: real bash running the script `baton completion bash`
//! registers (driven as bash drives a completion function), and real kubectl completing
//! `kubectl baton …` through `kubectl_complete-baton`, against the test's API server: baton-sim,
//! or the real control plane (`BATON_TEST_CLUSTER=real`), where the test's namespaces are its
//! own and names from every namespace (`-A`, namespace names) are those the API server lists.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli_support::cluster::Namespace;
use crate::cli_support::*;
use crate::support::Env;
use baton::api::listenerset::ListenerSet;
use baton::api::rollout::{labels, Rollout};
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

/// Rollouts web and api in the test's namespace, db in `other`; ListenerSets tasks and tokens
/// in the test's namespace, tickets in `other`.
async fn cluster() -> (Env, Namespace) {
    let env = Env::start().await;
    let other = Namespace::create(&env, "other").await;
    let (here, there) = (env.ns.as_str(), other.name.as_str());
    for (ns, name) in [(here, "web"), (here, "api"), (there, "db")] {
        let mut m = env.manifest_v(name, 3, "v1");
        m["metadata"]["namespace"] = json!(ns);
        let api: Api<Rollout> = Api::namespaced(env.client.clone(), ns);
        api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&m))
            .await
            .unwrap_or_else(|e| panic!("applying rollout {ns}/{name}: {e}"));
    }
    for (ns, name) in [(here, "tasks"), (here, "tokens"), (there, "tickets")] {
        let api: Api<ListenerSet> = Api::namespaced(env.client.clone(), ns);
        let set: ListenerSet = serde_json::from_value(json!({
            "apiVersion": baton::api::API_VERSION, "kind": "ListenerSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": name}}, "listeners": [{"id": "l1"}]},
        }))
        .expect("ListenerSet");
        api.create(&PostParams::default(), &set)
            .await
            .unwrap_or_else(|e| panic!("creating listenerset {ns}/{name}: {e}"));
    }
    (env, other)
}

/// The names of the Rollouts of every namespace and those of the namespaces starting with
/// `oth`, as the API server lists them now (sorted, each once).
async fn cluster_wide_names(env: &Env) -> (Vec<String>, Vec<String>) {
    let rollouts: Api<Rollout> = Api::all(env.client.clone());
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let names = |items: Vec<String>| {
        let set: std::collections::BTreeSet<String> = items.into_iter().collect();
        set.into_iter().collect::<Vec<_>>()
    };
    let r = rollouts.list(&ListParams::default()).await.expect("listing rollouts");
    let n = namespaces
        .list(&ListParams::default())
        .await
        .expect("listing namespaces");
    (
        names(r.items.iter().map(|o| o.name_any()).collect()),
        names(
            n.items
                .iter()
                .map(|o| o.name_any())
                .filter(|o| o.starts_with("oth"))
                .collect(),
        ),
    )
}

/// Source `baton completion bash`, then complete each line of `lines` (the cursor at its end)
/// the way bash calls the function that `complete -p baton` names: COMP_WORDS (split at blanks
/// and `=`, as bash does), COMP_CWORD, COMP_LINE, COMP_POINT set, the function called with the
/// command, the word being completed and the previous one. Each line's COMPREPLY, one candidate
/// a line, then `--`.
async fn bash_complete(kubeconfig: &Path, lines: &[&str]) -> Run {
    const SCRIPT: &str = r#"
source <("$BATON" completion bash) || exit 1
spec=$(complete -p baton) || exit 1
fn=${spec##*-F }
fn=${fn%% *}
for line in "$@"; do
    # Split as bash splits a line to complete: at blanks, and around `=` (COMP_WORDBREAKS);
    # the word to complete is the text after the last break.
    read -r -a COMP_WORDS <<< "${line//=/ = }"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE=$line
    COMP_POINT=${#line}
    cur=${COMP_WORDS[COMP_CWORD]}
    [[ $cur == "=" ]] && cur=""
    COMPREPLY=()
    "$fn" baton "$cur" "${COMP_WORDS[COMP_CWORD-1]}"
    for c in "${COMPREPLY[@]}"; do printf '%s\n' "$c"; done
    echo --
done
"#;
    let mut args = vec!["-c", SCRIPT, "bash"];
    args.extend_from_slice(lines);
    run(
        "bash",
        &args,
        &[("BATON", BATON), ("KUBECONFIG", &kubeconfig.to_string_lossy())],
    )
    .await
}

/// What [`bash_complete`] printed, one list of candidates per line completed.
fn replies(r: &Run) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for l in r.stdout.lines() {
        match l {
            "--" => out.push(Vec::new()),
            c => out.last_mut().expect("a reply").push(c.to_string()),
        }
    }
    out.pop();
    out
}

fn expect(replies: &[&[&str]]) -> Vec<Vec<String>> {
    replies
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// Rollout and ListenerSet names complete in bash, from the namespace the line points at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_completes_the_names_of_the_namespace() {
    let (env, other) = cluster().await;
    let kc = env.admin_kubeconfig();
    let o = other.name.as_str();
    let lines = [
        "baton rollout status ".to_string(),
        "baton rollout status w".to_string(),
        format!("baton rollout status -n {o} "),
        format!("baton --namespace={o} rollout undo "),
        "baton rollout list -A ".to_string(),
        "baton rollout list web ".to_string(),
        "baton listeners t".to_string(),
        format!("baton listeners -n {o} t"),
        "baton listeners show ".to_string(),
        format!("baton listeners recover --namespace {o} "),
        // bash splits `--namespace=other` in three words.
        format!("baton rollout status --namespace={o} "),
        "baton rollout status --namespace=oth".to_string(),
        // Flags once a flag is being typed, and only then.
        "baton rollout status --wa".to_string(),
        "baton rollout status web ".to_string(),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    // On the real control plane other tests' Rollouts and namespaces come and go: the names
    // from every namespace are compared with a listing that did not change during the run.
    let mut attempts = 0;
    let (r, (all_rollouts, oth)) = loop {
        let before = cluster_wide_names(&env).await;
        let r = bash_complete(&kc, &lines).await;
        let after = cluster_wide_names(&env).await;
        attempts += 1;
        if !env.is_real() || before == after || attempts == 5 {
            break (r, after);
        }
    };
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r}");
    let (all_rollouts, oth) = if env.is_real() {
        (all_rollouts, oth)
    } else {
        (vec!["api".into(), "db".into(), "web".into()], vec!["other".into()])
    };
    let all_rollouts: Vec<&str> = all_rollouts.iter().map(String::as_str).collect();
    let oth: Vec<&str> = oth.iter().map(String::as_str).collect();
    assert_eq!(
        replies(&r),
        expect(&[
            &["api", "web"],
            &["web"],
            &["db"],
            &["db"],
            &all_rollouts,
            &["api", "web"],
            &["tasks", "tokens"],
            &["tickets"],
            &["tasks", "tokens"],
            &["tickets"],
            &["db"],
            &oth,
            &["--watch"],
            &[],
        ]),
        "{r}"
    );
}

/// `--to-revision` completes the Rollout's revision numbers and `--instances` its instances,
/// after a comma too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_and_instances_of_the_named_rollout_complete() {
    let (env, _other) = cluster().await;
    let web = env.get("web").await;
    let uid = web.uid().expect("uid");
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    for (n, version) in [(1, "v1"), (2, "v2"), (10, "v3")] {
        let rev: ControllerRevision = serde_json::from_value(json!({
            "metadata": {
                "name": format!("web-{n}"),
                "labels": {labels::ROLLOUT: "web", labels::VERSION: version},
                "ownerReferences": [{"apiVersion": baton::api::API_VERSION, "kind": "Rollout", "name": "web", "uid": uid, "controller": true}],
            },
            "revision": n,
            // kube-apiserver requires data (a revision's snapshot); the completion reads none.
            "data": {},
        }))
        .expect("ControllerRevision");
        revs.create(&PostParams::default(), &rev)
            .await
            .expect("create revision");
    }
    let status = json!({"status": {"instances": [
        {"name": "web-0", "version": "v3"},
        {"name": "web-1", "version": "v3"},
        {"name": "web-2", "version": "v1", "pinned": true, "pinnedVersion": "v1"},
    ]}});
    env.rollouts()
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status");
    let kc = env.admin_kubeconfig();
    let r = bash_complete(
        &kc,
        &[
            "baton rollout undo web --to-revision ",
            "baton rollout history web --revision 1",
            "baton rollout pin web --version v1 --instances ",
            "baton rollout pin web --instances web-0,",
            "baton rollout unpin web --instances ",
            "baton rollout undo api --to-revision ",
        ],
    )
    .await;
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r}");
    assert_eq!(
        replies(&r),
        expect(&[
            &["1", "2", "10"],
            &["1", "10"],
            &["web-0", "web-1", "web-2"],
            &["web-0,web-0", "web-0,web-1", "web-0,web-2"],
            &["web-2"],
            &[],
        ]),
        "{r}"
    );
}

/// A server that accepts connections and never answers: the TAB comes back within the
/// completion's bound with nothing (no names, and no flags instead), and nothing on the
/// terminal; a refused connection too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswering_cluster_offers_nothing_quickly_and_silently() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused_port = refused.local_addr().expect("addr").port();
    drop(refused);
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, port) in [
        ("silent", silent.local_addr().expect("addr").port()),
        ("refused", refused_port),
    ] {
        let kc = dir.path().join(name);
        kubeconfig(&kc, &format!("http://127.0.0.1:{port}"), "u", &[("c", "default")]);
        let started = Instant::now();
        let r = bash_complete(&kc, &["baton rollout status ", "baton listeners t"]).await;
        let took = started.elapsed();
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (0, "--\n--\n", ""),
            "{name}: {r}"
        );
        // Two TABs, each bounded at 2.5 s.
        assert!(took < Duration::from_secs(8), "{name}: two TABs took {took:?}");
    }
    drop(silent);
}

/// kubectl 1.26+ completes `kubectl baton …` by running `kubectl_complete-baton` from the PATH:
/// the same names, in cobra's protocol, the directive last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_completes_the_plugins_names() {
    let (env, other) = cluster().await;
    let kc = env.admin_kubeconfig();
    let plugin = Plugin::install();
    std::os::unix::fs::symlink(BATON, plugin.dir.join("bin").join("kubectl_complete-baton"))
        .expect("install kubectl_complete-baton");
    let path = format!(
        "{}:{}",
        plugin.dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let home = plugin.dir.join("home");
    let kubectl = |args: &[&str]| {
        let all: Vec<String> = std::iter::once("__complete")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let (path, home, kc) = (path.clone(), home.clone(), kc.clone());
        async move {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            run(
                "/usr/bin/kubectl",
                &all,
                &[
                    ("PATH", &path),
                    ("HOME", &home.to_string_lossy()),
                    ("KUBECONFIG", &kc.to_string_lossy()),
                ],
            )
            .await
        }
    };
    let r = kubectl(&["baton", "rollout", "status", ""]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "api\nweb\n:4\n"), "{r}");
    let doc = crate::support::docs::shown("docs/operating.md", "kubectl-complete");
    assert_eq!(
        crate::support::docs::words(&doc[0].command),
        ["kubectl", "__complete", "baton", "rollout", "status", ""]
    );
    assert_eq!(doc[0].output, r.stdout, "docs/operating.md shows what kubectl prints");
    assert!(r.stderr.contains("ShellCompDirectiveNoFileComp"), "{r}");
    let r = kubectl(&["baton", "rollout", "status", "-n", &other.name, ""]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "db\n:4\n"), "{r}");
    let r = kubectl(&["baton", "listeners", "-n", &other.name, "t"]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "tickets\n:4\n"), "{r}");
    // Subcommands, each with the first sentence of its help.
    let r = kubectl(&["baton", "rollout", "res"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "resume\tResume progress (clears spec.paused)\nrestart\tRestart every instance (a new revision, rolled out in batches)\n:4\n"
        ),
        "{r}"
    );
    // The binary answers the same under its own name, as `baton __complete`.
    let r = baton(&kc, &["__complete", "rollout", "status", ""]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "api\nweb\n:4\n", ""),
        "{r}"
    );
}
