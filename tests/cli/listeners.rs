//! `baton listeners recover` reports what it did — which listeners moved, from which
//! pod to which — without internal nonces; `baton listeners NAME -o json|wide`; and when no
//! listener can move, every view of the set (`recover`, `baton listeners`, `kubectl get lset`,
//! the dashboard) says so with the same words and columns. The real binary (and real kubectl)
//! against the simulator, with agents in the simulated pods.
#![allow(clippy::await_holding_lock)]

use crate::cli_support::*;
use crate::listener_world::*;
use crate::support::docs::{same_text, shown};
use crate::support::kubectl::Kubectl;
use baton::api::listenerset::view;
use baton::api::listenerset::ListenerSet;

// Sim-only: the listener world's agents run against a baton-sim of its own, whose per-agent
// fault rules strand one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_recover_says_which_listeners_moved() {
    let _serial = serial();
    let (w, _ctl) = recover_world().await;
    let kc = w.sim.kubeconfig_path().to_path_buf();

    // Nothing orphaned: nothing moves, and it says so.
    let r = baton(&kc, &["listeners", "recover", "sxt"]).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.stdout.lines().next(),
        Some("listenerset.baton.dev/sxt recovered: no orphaned listener to move"),
        "{r}"
    );

    let before = w.holders("sxt").await;
    let on_a: Vec<String> = before
        .iter()
        .filter(|(_, (h, _))| h.as_deref() == Some("rc-a"))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!on_a.is_empty(), "{before:?}");
    // rc-a gets stuck: cut off from the API, then deleted (a finalizer keeps it terminating).
    w.strand("rc-a").await;

    let r = baton(&kc, &["listeners", "recover", "sxt"]).await;
    assert_eq!(r.code, 0, "{r}");
    let after = w.holders("sxt").await;
    let moved: Vec<String> = on_a
        .iter()
        .map(|id| format!("{id}: rc-a → {}", after[id].0.clone().unwrap_or_default()))
        .collect();
    let want = match moved.len() {
        1 => format!("listenerset.baton.dev/sxt recovered: 1 listener moved ({})", moved[0]),
        n => format!(
            "listenerset.baton.dev/sxt recovered: {n} listeners moved ({})",
            moved.join(", ")
        ),
    };
    assert_eq!(r.stdout.lines().next(), Some(want.as_str()), "{r}");
    assert!(
        !r.stdout.contains("recover 1") && !r.stdout.to_lowercase().contains("nonce"),
        "{r}"
    );
    assert_eq!(
        r.stdout.lines().nth(1),
        Some("ListenerSet sxt: 6 listeners, 6 running, 0 starting, 0 pending, 0 orphaned, 0 suspended"),
        "{r}"
    );

    // The same set as JSON (its status counts; which pod holds what is in the Leases) and as a
    // wide table (read from the Leases).
    let r = baton(&kc, &["listeners", "sxt", "-o", "json"]).await;
    let set: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(set["status"]["running"].as_i64(), Some(6), "{}", r.stdout);
    let per_pod: i64 = set["status"]["pods"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_i64()).sum())
        .unwrap_or_default();
    assert_eq!(per_pod, 6, "{}", r.stdout);
    let r = baton(&kc, &["listeners", "show", "sxt", "-o", "wide"]).await;
    let table: String = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("LISTENER"))
        .collect::<Vec<_>>()
        .join("\n");
    let c = cells(&table, &["AGE"]);
    assert_eq!(c[0], ["LISTENER", "POD", "AGE", "TOKEN", "STATE", "LEASE"]);
    assert_eq!(c.len(), 7, "{}", r.stdout);
    assert!(
        c[1..]
            .iter()
            .all(|row| row[4] == "running" && row[5] == format!("sxt-{}", row[0])),
        "{}",
        r.stdout
    );

    w.unstrand("rc-a").await;
}

/// The set's status once the controller says that its 6 listeners wait (the Leases of the gone
/// pods collected: pending) and none can move, with why.
async fn cannot_move(w: &World) -> (ListenerSet, String) {
    wait_for(
        "a status saying no listener can move",
        std::time::Duration::from_secs(60),
        || async {
            let set = w.sets().get("sxt").await.ok()?;
            let st = set.status.as_ref()?;
            let why = view::cannot_move(st)?.to_string();
            (st.pending == 6 && st.observed_generation == set.metadata.generation).then_some((set, why))
        },
    )
    .await
}

/// Every pod of the set gone while its agent was cut off from the API (so nothing was
/// released, and the Leases go with their pods): the listeners wait and no pod may take them. `recover` says no listener
/// moved, how many wait and why (no eligible pod), exit 1 at once rather than after its
/// timeout; `baton listeners list` prints what `kubectl get lset` prints (wide too);
/// `baton listeners sxt` and the dashboard name each listener's state as the status counts
/// them, with the same reason.
// Sim-only: the listener world's agents run against a baton-sim of its own, whose per-agent
// fault rules cut them off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_every_view_says_why_no_listener_can_move() {
    let _serial = serial();
    let (w, _ctl) = recover_world().await;
    let kc = w.sim.kubeconfig_path().to_path_buf();
    for pod in ["rc-a", "rc-b", "rc-c"] {
        w.sim.faults.block(&format!("token=agent-{pod}"));
        w.delete_pod(pod, Some(1)).await;
    }
    let (_, why) = cannot_move(&w).await;
    assert_eq!(why, "no eligible pod (no pod matches spec.selector)");

    let started = std::time::Instant::now();
    let r = baton(&kc, &["listeners", "recover", "sxt", "--timeout-seconds", "60"]).await;
    assert_eq!(r.code, 1, "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(50), "{r}");
    let (set, why) = cannot_move(&w).await;
    let st = set.status.clone().unwrap_or_default();
    assert_eq!((st.orphaned, st.pending), (0, 6), "{st:?}");
    let mut lines = r.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("listenerset.baton.dev/sxt recovered: no listener moved"),
        "{r}"
    );
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "{} orphaned, {} pending: no listener can move: {why}",
                st.orphaned, st.pending
            )
            .as_str()
        ),
        "{r}"
    );

    let doc = shown("docs/listeners.md", "recover-cannot-move");
    assert_eq!(doc[0].command, "baton listeners recover sxt");
    assert!(
        same_text(&r.stdout, &doc[0].output),
        "docs/listeners.md shows:\n{}\nthe command prints:\n{}",
        doc[0].output,
        r.stdout
    );

    let k = Kubectl::new(&w.sim);
    for wide in [false, true] {
        let mut args = vec!["get", "listenersets", "sxt"];
        let mut ours = vec!["listeners", "list", "sxt"];
        if wide {
            args.extend(["-o", "wide"]);
            ours.extend(["-o", "wide"]);
        }
        let theirs = k.ok(&args).await;
        let r = baton(&kc, &ours).await;
        assert_eq!(r.code, 0, "{r}");
        assert!(
            same_text(&r.stdout, &theirs),
            "kubectl:\n{theirs}\nbaton:\n{}",
            r.stdout
        );
        assert!(theirs.contains("NoEligiblePods"), "{theirs}");
    }
    assert!(k.ok(&["get", "lset", "sxt", "-o", "wide"]).await.contains(&why));
    let doc = shown("docs/listeners.md", "list-cannot-move");
    let r = baton(&kc, &["listeners", "list", "-o", "wide"]).await;
    assert_eq!(doc[0].command, "baton listeners list -o wide");
    assert!(
        same_text(&r.stdout, &doc[0].output),
        "docs:\n{}\nrun:\n{}",
        doc[0].output,
        r.stdout
    );

    let r = baton(&kc, &["listeners", "sxt"]).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.stdout.lines().next(),
        Some(format!("ListenerSet sxt: {}", view::summary(&st)).as_str()),
        "{r}"
    );
    let table: String = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("LISTENER"))
        .collect::<Vec<_>>()
        .join("\n");
    let states: Vec<String> = cells(&table, &[])[1..].iter().map(|row| row[4].clone()).collect();
    let count = |word: &str| i32::try_from(states.iter().filter(|s| *s == word).count()).unwrap_or(-1);
    assert_eq!((count("orphaned"), count("pending")), (st.orphaned, st.pending), "{r}");
    assert_eq!(states.len(), 6, "{r}");

    let d = crate::dashboard::start(&w.sim, &[]).await;
    let page = d.get("/listenersets/default/sxt").await;
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(html.contains(&view::summary(&st).replace(", ", " · ")), "{html}");
    assert!(
        html.contains(&format!("no listener can move: {}", html_escaped(&why))),
        "{html}"
    );
    let data = |word: &str| i32::try_from(html.matches(&format!("data-state=\"{word}\"")).count()).unwrap_or(-1);
    assert_eq!((data("orphaned"), data("pending")), (st.orphaned, st.pending), "{html}");
    let front = String::from_utf8_lossy(&d.get("/").await.body).into_owned();
    assert!(
        front.contains(">NoEligiblePods<") && front.contains(">Starting<"),
        "{front}"
    );
}

/// `s` as the dashboard's HTML writes text.
fn html_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The sample (`kubectl apply -k config/samples`) on baton-sim: its pods are Ready but run no
/// containers, so no `baton agent` takes a listener and the sample's `kubectl wait
/// --for=condition=Ready listenerset/…` times out however long it waits. The sample says so
/// beside that command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_samples_listenerset_wait_cannot_pass_on_the_simulator_and_says_so() {
    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/samples");
    let env = crate::support::Env::start().await;
    let _op = env.start_operator().await;
    let k = env.kubectl();
    k.ok(&["apply", "-k", SAMPLES]).await;
    let text = std::fs::read_to_string(format!("{SAMPLES}/kustomization.yaml")).expect("kustomization");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("kubectl wait --for=condition=Ready listenerset/"))
        .expect("the sample shows the ListenerSet's wait");
    let wait = lines[at].trim_start_matches(['#', ' ']);
    let set = wait.rsplit('/').next().unwrap_or_default();
    // A Ready pod the set selects, and the set's status written.
    env.wait_pods("user-service", "a Ready pod", |pods| {
        pods.iter().any(baton::api::pod::is_ready)
    })
    .await;
    let sets: kube::Api<ListenerSet> = kube::Api::namespaced(env.client.clone(), &env.ns);
    crate::support::wait_for("the set's status", crate::support::LONG, || async {
        let st = sets.get(set).await.ok()?.status?;
        (st.listeners > 0).then_some(())
    })
    .await;
    let mut args: Vec<&str> = wait.split_whitespace().skip(1).collect();
    args.push("--timeout=5s");
    let r = k.run(&args).await;
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("timed out waiting for the condition"), "{r}");
    let st = sets.get(set).await.expect("the set").status.expect("its status");
    assert_eq!(st.running, 0, "{st:?}");
    // The note under the command (the comment lines indented below it).
    let note: String = lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("#     "))
        .map(|l| l.trim_start_matches(['#', ' ']))
        .collect::<Vec<_>>()
        .join(" ");
    for words in ["baton-sim", "never passes", "no agent", "RUNNING stays 0"] {
        assert!(
            note.contains(words),
            "{SAMPLES}/kustomization.yaml, under `{wait}`: {note:?}"
        );
    }
}
