//! `baton agent` (the sidecar binary) end to end: a simulated pod of a ListenerSet, the
//! ListenerSet controller in-process, and the real binary as the pod's sidecar, driven through
//! its file and its localhost HTTP endpoints the way an application would.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton::agent::sidecar::Document;
use baton::api::listenerset::Listener;
use baton::listeners::controller::Stats;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::process::Command;
use tokio::time::Instant;

use crate::listener_world::*;
use crate::support::process::{http, LoggedChild};

const POD: &str = "sc-a";

/// A temporary directory, removed on drop.
fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("baton-sidecar-{tag}-"))
        .tempdir()
        .expect("creating a temporary directory")
}

/// A `baton agent` child process; its stderr (JSON logs) is kept and printed if the test panics.
struct Sidecar {
    proc: LoggedChild,
    addr: SocketAddr,
    file: PathBuf,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- sidecar log -----\n{}", self.proc.log_text());
        }
    }
}

/// Start `baton agent` for pod `pod` (uid `uid`) of ListenerSet `set`, serving on an ephemeral
/// port; returns once it has said where it serves.
async fn start_sidecar(w: &World, dir: &Path, pod: &str, uid: &str, set: &str, ack_timeout: u64) -> Sidecar {
    let kubeconfig = dir.join("agent.kubeconfig");
    w.sim
        .kubeconfig_as(&format!("agent-{pod}"), &kubeconfig)
        .expect("writing a kubeconfig");
    let file = dir.join("run/listeners.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["agent", "--listenerset", set, "--listen", "127.0.0.1:0"])
        .arg("--file")
        .arg(&file)
        .args([
            "--ack-timeout-seconds",
            &ack_timeout.to_string(),
            "--log-format",
            "json",
        ])
        .env("POD_NAME", pod)
        .env("POD_NAMESPACE", NS)
        .env("POD_UID", uid)
        .env("RUST_LOG", "info,kube=warn")
        .env_remove("KUBECONFIG");
    // {"message":"baton agent sidecar serving","addr":"127.0.0.1:PORT",…}
    let mut proc = LoggedChild::spawn(&mut cmd, "addr").unwrap_or_else(|e| panic!("starting the baton binary: {e}"));
    let Some(addr) = proc.wait_addr(Duration::from_secs(20)).await else {
        panic!("the sidecar did not say where it serves\n{}", proc.log_text());
    };
    Sidecar { proc, addr, file }
}

impl Sidecar {
    /// GET /listeners (optionally ?wait=<version>).
    async fn listeners(&self, wait: Option<u64>) -> Option<Document> {
        let path = match wait {
            Some(v) => format!("/listeners?wait={v}"),
            None => "/listeners".to_string(),
        };
        match http(self.addr, "GET", &path, Duration::from_secs(40)).await? {
            (200, body) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// Long-poll until the document satisfies `ok`; every answer must be a newer version.
    async fn next_until(&self, mut version: u64, deadline: Duration, ok: impl Fn(&Document) -> bool) -> Document {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let doc = match tokio::time::timeout(left, self.listeners(Some(version))).await {
                Ok(Some(doc)) => doc,
                Ok(None) => panic!("GET /listeners?wait={version} failed"),
                Err(_) => panic!("no matching document within {deadline:?} (last version {version})"),
            };
            assert!(doc.version > version, "a long poll answered with no news: {doc:?}");
            if ok(&doc) {
                return doc;
            }
            version = doc.version;
        }
    }

    fn file_doc(&self) -> Option<Document> {
        serde_json::from_slice(&std::fs::read(&self.file).ok()?).ok()
    }

    async fn ack(&self, version: u64) -> u16 {
        http(
            self.addr,
            "POST",
            &format!("/ack?version={version}"),
            Duration::from_secs(5),
        )
        .await
        .map_or(0, |(code, _)| code)
    }

    fn terminate(&self) {
        assert!(self.proc.terminate(), "kill -TERM {}", self.proc.pid);
    }
}

fn ids_of(doc: &Document) -> Vec<String> {
    doc.listeners.iter().map(|l| l.id.clone()).collect()
}

fn spec(suspend_l000: bool, with_l002: bool) -> Vec<Listener> {
    let mut ls = vec![
        Listener {
            id: "l000".into(),
            suspend: suspend_l000,
            ..Default::default()
        },
        Listener {
            id: "l001".into(),
            ..Default::default()
        },
        tokened(),
    ];
    if with_l002 {
        ls.push(Listener {
            id: "l002".into(),
            ..Default::default()
        });
    }
    ls
}

/// A pod that runs no in-process agent: its listeners are the sidecar's.
async fn create_plain_pod(w: &World, name: &str) -> String {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "svc"}},
        "spec": {"containers": [{"name": "app", "image": "app:v1"}], "terminationGracePeriodSeconds": 30}
    }))
    .unwrap();
    w.pods()
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod created");
    w.wait_ready(name).await
}

/// The file and GET /listeners list what the controller assigned (with config and fencing
/// tokens); the long poll delivers an added and a suspended listener; a suspended listener's Lease
/// is released only once the app acknowledged the version without it; SIGTERM empties the file and
/// the endpoint and releases every Lease before the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_serves_assignments_and_releases_on_sigterm() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let stats = Arc::new(Stats::default());
    let (_stop, _ctl) = w.controller_counted("controller-a", stats.clone()).await;
    w.create_secret("tokens", json!({"tokened": "s3cr3t"})).await;
    let uid = create_plain_pod(&w, POD).await;
    let lease = 10;
    w.create_set("sxt", "svc", spec(false, false), lease).await;
    let dir = temp_dir("e2e");
    // A long ack timeout: releases below happen because the app acknowledged, not on a timer.
    let ack_timeout = 30;
    let mut sc = start_sidecar(&w, dir.path(), POD, &uid, "sxt", ack_timeout).await;

    // The assignment, over HTTP and in the file.
    let doc = sc
        .next_until(0, Duration::from_secs(20), |d| d.listeners.len() == 3)
        .await;
    assert_eq!((doc.pod.as_str(), doc.namespace.as_str()), (POD, NS));
    assert_eq!(ids_of(&doc), ["l000", "l001", "tokened"]);
    let holders = w.holders("sxt").await;
    for l in &doc.listeners {
        assert_eq!(l.listener_set, "sxt");
        assert_eq!(
            holders.get(&l.id),
            Some(&(Some(POD.to_string()), l.fencing_token)),
            "{}: the Lease names this pod with the fencing token served",
            l.id
        );
        let config = (l.id == "tokened").then(|| "s3cr3t".to_string());
        assert_eq!(l.config, config, "{}", l.id);
    }
    let in_file = wait_for("the file shows the same document", Duration::from_secs(5), || {
        let (file, http) = (sc.file_doc(), sc.listeners(None));
        async move {
            let http = http.await?;
            (file.as_ref() == Some(&http)).then_some(http)
        }
    })
    .await;
    assert_eq!(in_file.listeners, doc.listeners);

    // Added to the spec: the pending long poll answers with it (after any documents that only
    // moved `validUntil`: renewals are published every 250 ms).
    let sets = w.sets();
    let poll = sc.next_until(doc.version, Duration::from_secs(20), |d| {
        ids_of(d).contains(&"l002".to_string())
    });
    let patch = json!({"spec": {"listeners": spec(false, true)}});
    let (added, _) = tokio::join!(poll, async {
        sets.patch("sxt", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap()
    });
    assert!(added.version > doc.version);
    assert_eq!(ids_of(&added), ["l000", "l001", "l002", "tokened"]);

    // Suspended: the long poll answers without it; the Lease waits for the app's ack.
    let poll = sc.next_until(added.version, Duration::from_secs(20), |d| {
        !ids_of(d).contains(&"l000".to_string())
    });
    let patch = json!({"spec": {"listeners": spec(true, true)}});
    let (suspended, _) = tokio::join!(poll, async {
        sets.patch("sxt", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap()
    });
    assert_eq!(ids_of(&suspended), ["l001", "l002", "tokened"]);
    assert_eq!(
        w.holders("sxt").await["l000"].0.as_deref(),
        Some(POD),
        "not released before the app acknowledged"
    );
    assert_eq!(
        sc.ack(suspended.version + 1000).await,
        409,
        "an unpublished version is refused"
    );
    let t_ack = Instant::now();
    assert_eq!(sc.ack(suspended.version).await, 204);
    wait_for("l000 released after the ack", Duration::from_secs(5), || async {
        w.holders("sxt").await["l000"].0.is_none().then_some(())
    })
    .await;
    println!("ack → release of l000 in {:?}", t_ack.elapsed());

    // SIGTERM, with the pod terminating (a finalizer keeps it), so nothing is reassigned to it.
    let hold = json!({"metadata": {"finalizers": ["test/hold"]}});
    w.pods()
        .patch(POD, &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    w.delete_pod(POD, Some(30)).await;
    let now = sc.listeners(None).await.expect("GET /listeners");
    assert_eq!(now.listeners.len(), 3);
    let t_term = Instant::now();
    sc.terminate();
    let empty = sc
        .next_until(now.version, Duration::from_secs(10), |d| d.listeners.is_empty())
        .await;
    println!("SIGTERM → empty document in {:?}", t_term.elapsed());
    assert_eq!(sc.ack(empty.version).await, 204);
    let status = tokio::time::timeout(Duration::from_secs(10), sc.proc.child.wait())
        .await
        .expect("the sidecar exits after releasing")
        .expect("waiting for the sidecar");
    let took = t_term.elapsed();
    println!("SIGTERM → exit in {took:?}");
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(lease as u64 / 2),
        "{took:?}: released on the ack, not on a timer"
    );
    let file = sc.file_doc().expect("the file is left in place");
    assert!(file.listeners.is_empty(), "the file ends empty: {file:?}");
    assert!(file.version >= empty.version);
    assert!(
        http(sc.addr, "GET", "/healthz", Duration::from_secs(2)).await.is_none(),
        "the endpoint is gone with the process"
    );
    let holders: BTreeMap<String, (Option<String>, i32)> = w.holders("sxt").await;
    assert_eq!(holders.len(), 4);
    for (id, (holder, _)) in &holders {
        assert_eq!(holder, &None, "{id}: released on SIGTERM");
    }
    assert_eq!(
        stats.takeovers.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing expired"
    );

    let unhold = json!({"metadata": {"finalizers": null}});
    let _ = w
        .pods()
        .patch(POD, &PatchParams::default(), &Patch::Merge(&unhold))
        .await;
}

/// An app that only reads the file: a stopped listener's Lease is released `ack_timeout` after
/// the file without it was written, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_only_app_gets_ack_timeout_to_stop() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let (_stop, _ctl) = w.controller("controller-a").await;
    let uid = create_plain_pod(&w, POD).await;
    w.create_set("fo", "svc", listeners(2), 10).await;
    let dir = temp_dir("file-only");
    let ack_timeout = 2;
    let sc = start_sidecar(&w, dir.path(), POD, &uid, "fo", ack_timeout).await;
    wait_for("both listeners in the file", Duration::from_secs(20), || {
        let doc = sc.file_doc();
        async move { doc.filter(|d| d.listeners.len() == 2).map(|_| ()) }
    })
    .await;
    let mut one = listeners(2);
    one[0].suspend = true;
    let patch = json!({"spec": {"listeners": one}});
    w.sets()
        .patch("fo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let t_file = wait_for("l000 gone from the file", Duration::from_secs(10), || {
        let doc = sc.file_doc();
        async move { doc.filter(|d| ids_of(d) == ["l001"]).map(|_| Instant::now()) }
    })
    .await;
    let released = wait_for("l000 released", Duration::from_secs(10), || async {
        w.holders("fo").await["l000"].0.is_none().then(Instant::now)
    })
    .await;
    let after = released - t_file;
    println!("file without l000 → release in {after:?} (ack timeout {ack_timeout} s)");
    // The file was seen a little after it was written: allow that much.
    assert!(
        after >= Duration::from_secs(ack_timeout) - Duration::from_millis(200),
        "released {after:?} after the file changed, before the ack timeout"
    );
    assert!(w.holders("fo").await["l001"].0.as_deref() == Some(POD));
}
