//! `rollout get NAME [--watch]`: the Rollout as a tree of its revisions, instances and pods,
//! as Argo Rollouts' `kubectl argo rollouts get rollout` shows one, a stuck pod named with why;
//! `status` names the stuck pod too, and `status -o wide` lists every pod not Ready. The docs'
//! example is this run's output.

use std::process::Stdio;

use baton::api::rollout::RolloutPhase;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{cli, cli_exits, NAME};
use crate::cli_support::BATON;
use crate::support::docs::{same_text, shown};
use crate::support::*;

/// One instance, v1 healthy, then v2 that never becomes Ready with `autoRollback: false`: the
/// Rollout stops, Degraded, with the new pod kept beside the old one.
async fn stuck() -> (Env, OperatorTask, serde_json::Value) {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let mut m = env.manifest(NAME, 1, "v1", "svc:v1");
    m["spec"]["autoRollback"] = json!(false);
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    env.apply(&m).await;
    env.wait_healthy(NAME, "v1", 1).await;
    m["spec"]["version"] = json!("v2");
    m["spec"]["template"]["spec"]["containers"][0]["image"] = json!("svc:v2-never-ready");
    env.apply(&m).await;
    env.wait_rollout(NAME, "v2 stopped", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Degraded)
    })
    .await;
    (env, op, m)
}

/// The names of the Rollout's pods: (Ready ones, the others).
async fn pods(env: &Env) -> (Vec<String>, Vec<String>) {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let pods = api
        .list(&ListParams::default().labels(&format!("baton.dev/rollout={NAME}")))
        .await
        .expect("pods")
        .items;
    pods.iter().map(|p| (p.name_any(), baton::api::pod::is_ready(p))).fold(
        (Vec::new(), Vec::new()),
        |(mut ready, mut not), (n, r)| {
            if r {
                ready.push(n)
            } else {
                not.push(n)
            }
            (ready, not)
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_revisions_instances_and_the_stuck_pod() {
    let (env, op, mut m) = stuck().await;
    let (ready, not_ready) = pods(&env).await;
    let ([old], [new]) = (ready.as_slice(), not_ready.as_slice()) else {
        panic!("one pod of each revision: {ready:?} {not_ready:?}");
    };
    let r = cli_exits(&env, &["get", NAME], 0).await;
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} in:\n{}", r.stdout))
    };
    assert!(r.stdout.starts_with("Name:            svc\n"), "{}", r.stdout);
    assert!(lines[at("Status:")].ends_with("✖ Degraded"), "{}", r.stdout);
    // Newest revision first, each with its instance and that instance's pod of the revision.
    let (rev2, rev1) = (at("# revision:2"), at("# revision:1"));
    assert!(rev2 < at(new) && at(new) < rev1 && rev1 < at(old), "{}", r.stdout);
    assert!(lines[rev2].contains("✖ Failed") && lines[rev2].contains("v2,ProgressDeadlineExceeded"));
    assert!(lines[rev1].contains("✔ Healthy") && lines[rev1].contains("v1,stable"));
    assert!(
        lines[at(new)].contains("ready:0/1,stuck: not Ready for "),
        "{}",
        r.stdout
    );
    assert!(lines[at(old)].contains("ready:1/1,current"), "{}", r.stdout);
    let doc = shown("docs/rollouts.md", "rollout-get");
    assert_eq!(doc[0].command, "baton rollout get svc");
    // The docs' run was in `default`; on the real control plane the test has a namespace of
    // its own.
    let shown_output = doc[0].output.replacen(
        "Namespace:       default\n",
        &format!("Namespace:       {}\n", env.ns),
        1,
    );
    assert!(
        same_text(&r.stdout, &shown_output),
        "docs/rollouts.md shows:\n{}\nthe command prints:\n{}",
        doc[0].output,
        r.stdout
    );

    // `status` says which pod is stuck; `-o wide` lists it with the pods not Ready.
    let o = cli_exits(&env, &["status", NAME, "--watch=false"], 1).await;
    assert!(
        o.stdout.contains(&format!("  stuck: {new} (0/1): not Ready for ")),
        "{}",
        o.stdout
    );
    let o = cli_exits(&env, &["status", NAME, "--watch=false", "-o", "wide"], 1).await;
    let wide = o.stdout.lines().skip_while(|l| !l.contains("not ready:"));
    assert!(
        wide.clone()
            .any(|l| l.contains(new.as_str()) && l.contains("0/1") && l.contains("stuck: not Ready for")),
        "{}",
        o.stdout
    );

    // `--watch` in a log: the tree, then the tree again on each change, until interrupted.
    let mut child = tokio::process::Command::new(BATON)
        .args(["rollout", "get", NAME, "--watch"])
        .env("KUBECONFIG", env.admin_kubeconfig())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baton rollout get --watch starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    read_until(&mut out, "the first tree", |l| {
        l.contains("# revision:2") && l.contains("Failed")
    })
    .await;
    m["spec"]["version"] = json!("v3");
    m["spec"]["template"]["spec"]["containers"][0]["image"] = json!("svc:v3");
    env.apply(&m).await;
    read_until(&mut out, "revision 3 healthy", |l| {
        l.contains("# revision:3") && l.contains("✔ Healthy")
    })
    .await;
    let _ = child.kill().await;
    let r = cli(&env, &["get", NAME, "--watch", "other"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (64, "error: --watch follows one Rollout: give one name\n")
    );
    op.stop().await;
}

/// Read `lines` until one satisfies `done` (within [`LONG`]); the lines before it.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(LONG, lines.next_line()).await {
            Ok(Ok(Some(l))) if done(&l) => return seen,
            Ok(Ok(Some(l))) => seen.push(l),
            other => panic!("{what}: {other:?} after:\n{}", seen.join("\n")),
        }
    }
}

/// v2 fails and is rolled back, then v3 rolls out: revision 2 still failed, and both views
/// say so — `get`'s tree (`✖ Failed`, not `Superseded`) and `history` (`failed`, not `-`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_revision_stays_failed_once_a_newer_one_exists() {
    let (env, op) = super::v1_deployed().await;
    let mut m = env.manifest(NAME, 3, "v2", "svc:v2-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    env.apply(&m).await;
    env.wait_rollout(NAME, "v2 rolled back", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::RolledBack)
    })
    .await;
    env.apply(&env.manifest_v(NAME, 3, "v3")).await;
    env.wait_healthy(NAME, "v3", 3).await;

    let r = cli_exits(&env, &["get", NAME], 0).await;
    let revision = |n: i64| {
        r.stdout
            .lines()
            .find(|l| l.contains(&format!("# revision:{n} ")))
            .unwrap_or_else(|| panic!("revision {n} in:\n{}", r.stdout))
    };
    assert!(revision(3).contains("✔ Healthy"), "{}", r.stdout);
    assert!(
        revision(2).contains("✖ Failed") && revision(2).ends_with(" v2"),
        "{}",
        r.stdout
    );
    assert!(revision(1).contains("Superseded"), "{}", r.stdout);

    let h = cli_exits(&env, &["history", NAME], 0).await;
    let revisions = h.stdout.split("\n\n").next().unwrap_or_default();
    let marks: Vec<(String, String)> = crate::cli_support::rows(revisions)
        .into_iter()
        .map(|row| (row["REVISION"].clone(), row["STATUS"].clone()))
        .collect();
    let want = [("1", "-"), ("2", "failed"), ("3", "current,update")];
    assert_eq!(marks, want.map(|(a, b)| (a.to_string(), b.to_string())), "{}", h.stdout);
    op.stop().await;
}
