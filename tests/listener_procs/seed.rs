//! The seed-style example (examples/seed_listeners) beside real `baton agent` sidecars: each
//! account is a listener whose config is its token (listenersFrom a Secret), and the example's
//! service (the Python client) holds one WebSocket session per account it runs, against the
//! example's echo server, which counts every account's open sessions. The sessions are open
//! exactly while the accounts are held — one per account held, with its Lease's fencing token,
//! none for the others — through a change of accounts, a pod replacement, a SIGKILLed sidecar and
//! the deletion of every pod, and no account ever had two sessions at once.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::harness::{process::http, wait, AppKind, Ns, R};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(60);
const SET: &str = "seed";
const ACCOUNTS: usize = 6;

fn example(file: &str) -> String {
    format!("{}/examples/seed_listeners/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// What the echo server says of one account token (`GET /stats`).
#[derive(Debug, Deserialize)]
struct Account {
    open: u32,
    max_open: u32,
    sessions: u32,
    refused: u32,
    fencing: i32,
}

/// The example's echo server (`python3 echo_server.py --port 0`), killed on drop.
struct Upstream {
    _child: tokio::process::Child,
    addr: SocketAddr,
}

impl Upstream {
    async fn start() -> R<Upstream> {
        let mut child = tokio::process::Command::new("python3")
            .args(["-u", &example("echo_server.py"), "--port", "0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting the echo server: {e}"))?;
        let stdout = child.stdout.take().ok_or("the echo server's stdout is not piped")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(LONG, lines.next_line())
            .await
            .map_err(|_| "the echo server said nothing".to_string())?
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        // "echo server on ws://127.0.0.1:PORT"
        let addr = line
            .rsplit("ws://")
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the echo server's first line: {line:?}"))?;
        Ok(Upstream { _child: child, addr })
    }

    fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Account token → its sessions.
    async fn stats(&self) -> R<BTreeMap<String, Account>> {
        match http(self.addr, "GET", "/stats", Duration::from_secs(5)).await {
            Some((200, body)) => serde_json::from_str(&body).map_err(|e| format!("{e}: {body}")),
            other => Err(format!("GET /stats: {other:?}")),
        }
    }
}

/// The example's service as the app of a pod: a launcher (the harness runs `python3 -u <script>`
/// with the sidecar's URL) that points it at `upstream`.
fn seed_app(ns: &str, upstream: &str) -> AppKind {
    let dir = example("");
    let launcher = std::env::temp_dir().join(format!("baton-{ns}-{}-seed_service.py", std::process::id()));
    let script = format!(
        "import os, runpy, sys\nos.environ['SEED_UPSTREAM'] = {upstream:?}\nsys.path.insert(0, {dir:?})\n\
         runpy.run_path({:?}, run_name='__main__')\n",
        example("seed_service.py")
    );
    std::fs::write(&launcher, script).unwrap_or_else(|e| panic!("writing {}: {e}", launcher.display()));
    AppKind::Script(launcher)
}

/// Secret `seed-accounts` (account → token) and ListenerSet `seed` with a listener per key.
async fn create_accounts(ns: &Ns) -> R<BTreeMap<String, String>> {
    let tokens: BTreeMap<String, String> = (1..=ACCOUNTS)
        .map(|i| (format!("acct-{i}"), format!("token-of-{}-acct-{i}", ns.name)))
        .collect();
    ns.create_set_from_secret(SET, "seed-accounts", &tokens, 5).await?;
    Ok(tokens)
}

/// Wait until the upstream shows, for every account in `tokens`, one open session with the
/// fencing token of its Lease if a pod holds it, and none if not; the upstream's accounts then.
async fn sessions_match(
    ns: &Ns,
    up: &Upstream,
    tokens: &BTreeMap<String, String>,
    what: &str,
) -> BTreeMap<String, Account> {
    let check = move || async move {
        let held = ns.holders(SET).await?;
        let stats = up.stats().await?;
        let wrong: Vec<String> = tokens
            .iter()
            .filter_map(|(id, token)| {
                let lease = held.get(id).filter(|(h, _)| h.is_some());
                let (open, fencing) = stats.get(token).map_or((0, -1), |a| (a.open, a.fencing));
                let right = match lease {
                    Some((_, t)) => open == 1 && fencing == *t,
                    None => open == 0,
                };
                (!right).then(|| format!("{id}: lease {lease:?}, upstream {:?}", stats.get(token)))
            })
            .collect();
        if wrong.is_empty() {
            Ok(stats)
        } else {
            Err(wrong.join("; "))
        }
    };
    wait::poll(what, LONG, wait::POLL, check)
        .await
        .unwrap_or_else(|(e, last)| panic!("{e}: {last}"))
}

/// Replace the Secret's account `gone` by `new`, and add `new`'s token to `tokens`, which keeps
/// `gone`'s (so its session is checked closed from then on).
async fn swap_account(ns: &Ns, tokens: &mut BTreeMap<String, String>, gone: &str, new: &str) -> R<()> {
    let token = format!("token-of-{}-{new}", ns.name);
    let patch = json!({"data": {gone: null}, "stringData": {new: token}});
    Api::<Secret>::namespaced(ns.client.clone(), &ns.name)
        .patch("seed-accounts", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("patching the Secret: {e}"))?;
    tokens.insert(new.to_string(), token);
    Ok(())
}

/// The run, in phases, each ending with the upstream's sessions matching the Leases: the six
/// accounts run on two pods; one account leaves the Secret and another joins (the leaving session
/// closes in a process that runs on); a third pod joins and the first is deleted as a rolling
/// deploy does; the second's sidecar is SIGKILLed, so its app closes its sessions at their
/// `validUntil` and runs on while they open on the third; then every pod is deleted and every
/// session closes. The upstream never saw two sessions of one account at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_example_holds_one_session_per_account_exactly_while_held() {
    let ns = Ns::plain("seed-listeners").await;
    ok(ns.start_controller().await);
    let up = ok(Upstream::start().await);
    let mut tokens = ok(create_accounts(&ns).await);
    let app = seed_app(&ns.name, &up.url());
    for p in ["seed-a", "seed-b"] {
        let uid = ok(ns.create_plain_pod(p).await);
        ok(ns.start_procs(p, &uid, Vec::new(), app.clone()).await);
    }
    ok(ns.settled(SET, ACCOUNTS, "every account in a seed app", LONG).await);
    sessions_match(&ns, &up, &tokens, "one session per held account").await;

    ok(swap_account(&ns, &mut tokens, "acct-6", "acct-7").await);
    ok(
        wait::poll_until("acct-7's Lease in place of acct-6's", LONG, wait::POLL, || async {
            let h = ns.holders(SET).await.ok()?;
            (h.contains_key("acct-7") && !h.contains_key("acct-6")).then_some(())
        })
        .await,
    );
    let held = ok(ns.settled(SET, ACCOUNTS, "acct-7 in place of acct-6", LONG).await);
    sessions_match(&ns, &up, &tokens, "acct-6's session closed, acct-7's open").await;

    let uid = ok(ns.create_plain_pod("seed-c").await);
    ok(ns.start_procs("seed-c", &uid, Vec::new(), app).await);
    ok(ns.delete_pod("seed-a", 30).await);
    let keys: Vec<String> = held.keys().map(|id| format!("{SET}/{id}")).collect();
    ok(ns
        .wait_running("every account off seed-a", &keys, LONG, |p| p != "seed-a")
        .await);
    ok(ns.settled(SET, ACCOUNTS, "settled after seed-a", LONG).await);
    sessions_match(&ns, &up, &tokens, "one session per account after seed-a").await;

    ok(ns.kill_agent("seed-b").await);
    ok(ns
        .wait_running("every account on seed-c", &keys, LONG, |p| p == "seed-c")
        .await);
    ok(ns.settled(SET, ACCOUNTS, "settled on seed-c", LONG).await);
    sessions_match(&ns, &up, &tokens, "every session from seed-c").await;

    for p in ["seed-b", "seed-c"] {
        ok(ns.delete_pod(p, 30).await);
    }
    let log = ns.log.clone();
    ok(wait::poll_until("no account running", LONG, wait::POLL, move || {
        let none = log.running_count() == 0;
        async move { none.then_some(()) }
    })
    .await);
    let stats = sessions_match(&ns, &up, &tokens, "every session closed").await;
    println!("upstream after the run: {stats:?}");
    for (token, a) in &stats {
        assert_eq!((a.max_open, a.refused), (1, 0), "{token}: {a:?}");
    }
    let opened: u32 = stats.values().map(|a| a.sessions).sum();
    assert!(opened > ACCOUNTS as u32 + 1, "no account moved: {stats:?}");
    assert_clean(&ns, true);
}
