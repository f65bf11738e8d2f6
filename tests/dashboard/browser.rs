//! The dashboard in a real browser: Debian's headless Chromium, driven through chromedriver
//! (WebDriver, with fantoccini). The instance grid changes as a rollout progresses without a
//! reload, clicking Promote (and confirming) on a paused rollout moves it on, a refused action
//! shows kubectl's error, markup in an Event stays text; a screenshot of each page is written
//! to `target/tmp/dashboard-screenshots/` for review.
//!
//! Every wait is on a DOM condition with a generous deadline (a loaded 2-core CI machine).
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{self, pausing};
use crate::support::wait::poll;
use crate::support::*;

const NAME: &str = "web";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver and a browser session; both end on drop (the driver is killed).
struct Browser {
    client: Client,
    _driver: Child,
    shots: PathBuf,
}

async fn browser() -> Browser {
    for bin in [CHROMEDRIVER, CHROMIUM] {
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} not found: `make deps` installs Debian's chromium and chromium-driver"
        );
    }
    let mut driver = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting chromedriver");
    let stdout = driver.stdout.take().expect("chromedriver's stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(LONG, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                return rest.trim_end_matches('.').parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("chromedriver reports its port");
    // Keep reading so chromedriver never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1400"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).expect("the screenshot directory");
    Browser {
        client,
        _driver: driver,
        shots,
    }
}

impl Browser {
    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Evaluate the JavaScript expression `js` until it is truthy (within [`LONG`]); its value.
    async fn until(&self, what: &str, js: &str) -> Value {
        let script = format!("return ({js});");
        let outcome = poll(what, LONG, Duration::from_millis(100), || async {
            match self.client.execute(&script, vec![]).await {
                Ok(v) if truthy(&v) => Ok(v),
                Ok(v) => Err(v.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        match outcome {
            Ok(v) => v,
            Err((message, last)) => {
                self.shot("failure").await;
                let live = self.eval("document.getElementById('live')?.innerText").await;
                panic!("{message}\nlast value: {last}\nthe page:\n{live}")
            }
        }
    }

    async fn eval(&self, js: &str) -> Value {
        self.client
            .execute(&format!("return ({js});"), vec![])
            .await
            .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
    }

    /// Click the element `css` names. The live stream may replace it between finding and
    /// clicking (a stale element): find it again, within [`LONG`].
    async fn click(&self, css: &str) {
        let clicked = poll(&format!("clicking {css}"), LONG, Duration::from_millis(100), || async {
            let el = self.client.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            el.click().await.map_err(|e| e.to_string())
        })
        .await;
        if let Err((message, last)) = clicked {
            self.shot("failure").await;
            panic!("{message}: {last}");
        }
    }

    /// Click action `css`, wait for the confirmation and confirm.
    async fn confirm(&self, css: &str) {
        self.click(css).await;
        self.until("the confirmation dialog", "document.getElementById('confirm').open")
            .await;
        self.click("#confirm-ok").await;
    }

    async fn shot(&self, name: &str) {
        if let Ok(png) = self.client.screenshot().await {
            let path = self.shots.join(format!("{name}.png"));
            std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Run `baton agent`'s library in every pod of app `web`, so its listeners really run (the
/// demo's agents).
fn attach_agents(env: &Env) {
    baton::demo::listeners::attach_agents(&env.sim, NAME, Default::default());
}

/// Tiles of the grid on `version` that are Ready.
fn ready_on(version: &str) -> String {
    format!("document.querySelectorAll('#tiles li[data-version=\"{version}\"][data-ready=\"true\"]').length")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_watches_a_rollout_and_promotes_it() {
    let env = Env::start().await;
    attach_agents(&env);
    let _op = env.start_operator().await;
    env.apply(&pausing(NAME, 4, "v1")).await;
    env.wait_healthy(NAME, "v1", 4).await;
    let k = kubectl::Kubectl::new(&env.sim);
    let listeners: Vec<Value> = (1..=8).map(|i| json!({"id": format!("listener{i}")})).collect();
    let set = json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet",
        "metadata": {"name": "sxt", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": NAME}}, "listeners": listeners, "leaseDurationSeconds": 5}
    });
    k.ok(&["apply", "-f", &k.file("set.json", &set)]).await;
    let hostile = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "hostile", "namespace": NS},
        "involvedObject": {"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "name": NAME, "namespace": NS},
        "reason": "Hostile", "type": "Warning",
        "message": "<img src=x onerror=\"document.body.dataset.pwned='yes'\">"
    });
    k.ok(&["create", "-f", &k.file("event.json", &hostile)]).await;
    let d = harness::start(&env.sim, &[]).await;
    let b = browser().await;
    let origin = d.origin();

    // The list, then the Rollout's page by its link.
    b.goto(&format!("{origin}/")).await;
    b.until(
        "the Rollout in the list",
        "document.querySelector('#rollouts tr[data-name=\"web\"][data-phase=\"Healthy\"]')",
    )
    .await;
    b.until(
        "the live stream connected",
        "document.getElementById('conn').classList.contains('up')",
    )
    .await;
    b.shot("list").await;
    b.click("a[href=\"/rollouts/default/web\"]").await;
    b.until("four tiles on v1", &format!("{} === 4", ready_on("v1"))).await;
    b.until(
        "the hostile Event shown as text",
        "document.querySelector('li[data-reason=\"Hostile\"] .note')?.textContent.includes('<img')",
    )
    .await;
    assert_eq!(
        b.eval("document.body.dataset.pwned || null").await,
        Value::Null,
        "markup from an Event ran"
    );
    // A marker that a reload would lose.
    b.eval("(window.__sameDocument = true)").await;

    // v2 goes out: batch 1 (one instance) turns over in the grid and the rollout pauses.
    env.apply(&pausing(NAME, 4, "v2")).await;
    b.until(
        "one tile on v2, three on v1, paused",
        &format!(
            "{} === 1 && {} === 3 && document.querySelector('section.head[data-phase=\"Paused\"]')",
            ready_on("v2"),
            ready_on("v1")
        ),
    )
    .await;
    assert_eq!(
        b.eval("window.__sameDocument === true").await,
        json!(true),
        "the page was reloaded"
    );
    b.shot("rollout-paused").await;

    // Promote (with its confirmation): batch 2 goes out.
    b.confirm("button[data-action=\"promote\"]").await;
    b.until(
        "the promotion confirmed",
        "document.getElementById('flash').textContent === 'rollout.baton.dev/web promoted'",
    )
    .await;
    b.until(
        "two tiles on v2, paused after batch 2",
        &format!(
            "{} === 2 && document.querySelector('p.batch[data-current=\"2\"]') && document.querySelector('section.head[data-phase=\"Paused\"]')",
            ready_on("v2")
        ),
    )
    .await;
    assert_eq!(
        b.eval("window.__sameDocument === true").await,
        json!(true),
        "the page was reloaded"
    );
    let r = env.get(NAME).await;
    assert_eq!(status(&r).batch.map(|b| b.current), Some(2), "the rollout moved on");
    b.shot("rollout-promoted").await;

    // The ListenerSet: which pod holds which listener.
    b.goto(&format!("{origin}/listenersets/default/sxt")).await;
    b.until(
        "eight listeners running",
        "document.querySelectorAll('#listeners tr[data-state=\"running\"]').length === 8",
    )
    .await;
    b.until(
        "the pods holding them",
        "document.querySelectorAll('li.podcard').length >= 3",
    )
    .await;
    b.shot("listenerset").await;

    // A user who may only view: Pause is refused, in kubectl's words.
    harness::viewer_jane(&env).await;
    let jane = harness::start(&env.sim, &["--as", "jane"]).await;
    b.goto(&format!("{}/rollouts/default/web", jane.origin())).await;
    b.until("jane's page", &format!("{} === 2", ready_on("v2"))).await;
    b.confirm("button[data-action=\"pause\"]").await;
    let error = b
        .until(
            "the refusal",
            "document.querySelector('#flash.error')?.textContent.startsWith('Error from server (Forbidden)') && document.getElementById('flash').textContent",
        )
        .await;
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.contains(r#"User "jane" cannot patch resource "rollouts""#)),
        "{error}"
    );
    b.shot("forbidden").await;
    assert!(!env.get(NAME).await.spec.paused);
    let _ = b.client.close().await;
}
