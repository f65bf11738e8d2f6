//! `set image`, `history` (the change cause and who changed the spec, `--revision N`, the deploy
//! and rollback records) and `undo`, straight to the revision or through its batches.

use baton::api::rollout::RolloutPhase;
use kube::ResourceExt;
use serde_json::{json, Value};

use super::{cli, cli_exits, fast, v1_deployed, NAME};
use crate::cli_support::{cells, expect};
use crate::support::*;

/// `set image` deploys and records why; `history` says when, why and who for each revision
/// (a cause left by an earlier command is not credited to a later `kubectl apply`), lists each
/// deploy and rollback with its outcome, and shows one revision's template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_history_and_the_deploy_records() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&fast(&env, "v1", "svc:v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;

    let r = cli(&env, &["set", "image", NAME, "app=svc:v2"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "rollout.baton.dev/svc image updated (version v2)\n", ""),
        "{r}"
    );
    let rollout = env.wait_healthy(NAME, "v2", 3).await;
    assert_eq!(
        rollout
            .annotations()
            .get("kubernetes.io/change-cause")
            .map(String::as_str),
        Some("baton rollout set image svc app=svc:v2")
    );
    let r = cli(&env, &["set", "image", NAME, "app=svc:v2"]).await;
    assert_eq!(r.stdout, "rollout.baton.dev/svc unchanged\n", "{r}");
    let r = cli(&env, &["set", "image", NAME, "web=svc:v2"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: unable to find container named \"web\"\n")
    );

    // kubectl apply changes the template: its manager is credited, not baton's old cause.
    let kubectl = env.kubectl();
    let file = kubectl.file("v3.json", &fast(&env, "v3", "svc:v3"));
    kubectl.ok(&["apply", "-f", &file]).await;
    env.wait_healthy(NAME, "v3", 3).await;
    let r = cli(&env, &["undo", NAME, "--to-revision", "1"]).await;
    assert_eq!(
        r.stdout, "rollout.baton.dev/svc rolled back to revision 1 (v1)\n",
        "{r}"
    );
    env.wait_healthy(NAME, "v1", 3).await;
    let r = cli(
        &env,
        &["set", "image", NAME, "app=svc:v4-never-ready", "--version", "v4"],
    )
    .await;
    assert_eq!(r.code, 0, "{r}");
    env.wait_rollout(NAME, "v4 rolled back", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::RolledBack)
    })
    .await;

    let r = cli(&env, &["history", NAME]).await;
    assert_eq!(r.code, 0, "{r}");
    let (revisions, records) = r.stdout.split_once("\n\n").expect("two tables");
    assert_eq!(
        cells(revisions, &["AGE"]),
        expect(&[
            &["REVISION", "VERSION", "AGE", "CHANGE-CAUSE", "CHANGED-BY", "STATUS"],
            &["1", "v1", "<age>", "<none>", "test", "current"],
            &[
                "2",
                "v2",
                "<age>",
                "baton rollout set image svc app=svc:v2",
                "baton",
                "-"
            ],
            &["3", "v3", "<age>", "<none>", "kubectl-client-side-apply", "-"],
            &[
                "4",
                "v4",
                "<age>",
                "baton rollout set image svc app=svc:v4-never-ready --version v4",
                "baton",
                "update,failed"
            ],
        ])
    );
    assert_eq!(
        cells(records, &["STARTED", "DURATION"]),
        expect(&[
            &["ID", "KIND", "TRIGGER", "REVISION", "VERSION", "STARTED", "DURATION", "OUTCOME"],
            &["1", "Deploy", "Spec", "1", "v1", "<age>", "<age>", "Succeeded"],
            &["2", "Deploy", "Spec", "2", "v2", "<age>", "<age>", "Succeeded"],
            &["3", "Deploy", "Spec", "3", "v3", "<age>", "<age>", "Succeeded"],
            &["4", "Rollback", "Undo", "1", "v1", "<age>", "<age>", "Succeeded"],
            &["5", "Deploy", "Spec", "4", "v4", "<age>", "<age>", "Failed"],
            &["6", "Rollback", "Automatic", "1", "v1", "<age>", "<age>", "Succeeded"],
        ])
    );

    // -o json: the same, with times.
    let r = cli(&env, &["history", NAME, "-o", "json"]).await;
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["revisions"][3]["changedBy"], "baton");
    let deploys = doc["deploys"].as_array().unwrap();
    assert_eq!(deploys[4]["outcome"], "Failed");
    assert!(
        deploys[4]["message"].as_str().unwrap_or("").contains("svc-"),
        "{}",
        deploys[4]
    );
    assert_eq!(deploys[3]["changeCause"], "baton rollout undo svc --to-revision 1");
    for d in deploys {
        let (start, end) = (d["startedAt"].as_str().unwrap(), d["finishedAt"].as_str().unwrap());
        assert!(start <= end, "{d}");
    }

    // --revision N: its origin and template.
    let r = cli(&env, &["history", NAME, "--revision", "2"]).await;
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "rollout.baton.dev/svc with revision #2");
    assert_eq!(lines[1], "Version:        v2");
    assert!(lines[2].starts_with("Revision:       svc-"), "{}", r.stdout);
    assert!(
        lines[3].starts_with("Created:        20") && lines[3].ends_with(" ago)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[4..].join("\n"),
        "Change-Cause:   baton rollout set image svc app=svc:v2\n\
         Changed-By:     baton\n\
         Pod Template:\n  \
           metadata:\n    \
             labels:\n      \
               app: svc\n  \
           spec:\n    \
             containers:\n    \
             - image: svc:v2\n      \
               name: app"
    );
    let r = cli(&env, &["history", NAME, "--revision", "9"]).await;
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            1,
            "error: unable to find the specified revision 9; see `baton rollout history svc`\n"
        )
    );
    op.stop().await;
}

/// The managers of the Rollout's own Updates (not its status) in managedFields order, each with
/// the time of its last write.
fn update_times(r: &baton::api::rollout::Rollout) -> Vec<(String, String)> {
    r.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| e.operation.as_deref() == Some("Update") && e.subresource.as_deref().is_none_or(str::is_empty))
        .map(|e| {
            let time = e.time.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
            (e.manager.clone().unwrap_or_default(), time)
        })
        .collect()
}

/// Until the wall clock starts a new second (the API server stamps managedFields to the second).
async fn a_new_second() {
    let into = jiff::Timestamp::now().subsec_nanosecond();
    let rest = 1_000_000_000 - u64::try_from(into).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_nanos(rest + 10_000_000)).await;
}

/// The cells of the row of revision `revision` (of version `version`) of the dashboard's
/// revision history on `page`.
fn dashboard_row(page: &str, revision: usize, version: &str) -> Vec<String> {
    let at = page
        .find(&format!("data-revision=\"{revision}\" data-version=\"{version}\""))
        .unwrap_or_else(|| panic!("no revision {revision} ({version}) on the page:\n{page}"));
    let row = &page[at..at + page[at..].find("</tr>").expect("the row ends")];
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let text = &cell[cell.find('>').map_or(0, |i| i + 1)..];
            let mut out = String::new();
            let mut in_tag = false;
            for c in text.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => out.push(c),
                    _ => {}
                }
            }
            out.trim().to_string()
        })
        .collect()
}

/// `kubectl apply -f` then `baton rollout set image` at once, as a CI script runs them: both
/// writes stamp their managedFields entry with the same second, and the API server orders entries
/// of equal times by manager name, kubectl's after baton's. The revision `set image` made is
/// still credited to baton with its cause — in `history` and on the dashboard — because baton
/// owns what changed (the version and the image) and the cause; kubectl's apply changed only a
/// label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_image_in_the_same_second_as_an_apply_is_credited_to_baton() {
    let env = Env::start().await;
    let op = env.start_operator().await;
    let kubectl = env.kubectl();
    // Run `run` of the CI script applies the version that serves (that of the last run's
    // `set image`) with a new label: the apply changes no field a revision is made of.
    let manifest = |run: usize| {
        let serving = format!("v{}", run.max(1));
        let mut m = fast(&env, &serving, &format!("svc:{serving}"));
        m["metadata"]["labels"] = json!({"ci-run": run.to_string()});
        m
    };
    kubectl
        .ok(&["apply", "-f", &kubectl.file("tie.json", &manifest(0))])
        .await;
    env.wait_healthy(NAME, "v1", 3).await;

    // Both writes within one second; should a loaded machine take longer, again (each run a new
    // label and version), up to ten times.
    let mut tied = None;
    let mut seen = Vec::new();
    for run in 1..=10 {
        let (version, file) = (format!("v{}", run + 1), kubectl.file("tie.json", &manifest(run)));
        a_new_second().await;
        kubectl.ok(&["apply", "-f", &file]).await;
        let image = format!("app=svc:{version}");
        let r = cli(&env, &["set", "image", NAME, &image]).await;
        assert_eq!(r.code, 0, "{r}");
        let times = update_times(&env.get(NAME).await);
        let entry = |m: &str| times.iter().position(|(x, _)| x == m).map(|i| (i, times[i].1.clone()));
        let (Some((b, baton)), Some((k, kubectl))) = (entry("baton"), entry("kubectl-client-side-apply")) else {
            panic!("both write the Rollout: {times:?}");
        };
        seen.push(times.clone());
        if baton == kubectl {
            // Equal times in the API server's order: kubectl's entry last, as if newer.
            assert!(b < k, "{times:?}");
            tied = Some(run);
            break;
        }
    }
    let runs =
        tied.unwrap_or_else(|| panic!("kubectl apply and set image in the same second in one of 10 runs: {seen:?}"));
    let last = format!("v{}", runs + 1);
    env.wait_healthy(NAME, &last, 3).await;

    let r = cli(&env, &["history", NAME]).await;
    assert_eq!(r.code, 0, "{r}");
    let (revisions, _) = r.stdout.split_once("\n\n").expect("two tables");
    let mut want: Vec<Vec<String>> = vec![
        ["REVISION", "VERSION", "AGE", "CHANGE-CAUSE", "CHANGED-BY", "STATUS"]
            .map(String::from)
            .to_vec(),
        ["1", "v1", "<age>", "<none>", "kubectl-client-side-apply", "-"]
            .map(String::from)
            .to_vec(),
    ];
    for run in 1..=runs {
        let version = format!("v{}", run + 1);
        let status = if version == last { "current,update" } else { "-" };
        let cause = format!("baton rollout set image svc app=svc:{version}");
        want.push(vec![
            (run + 1).to_string(),
            version,
            "<age>".into(),
            cause,
            "baton".into(),
            status.into(),
        ]);
    }
    assert_eq!(cells(revisions, &["AGE"]), want, "{}", r.stdout);

    // The dashboard reads the same.
    // The harness scopes it to baton-sim's namespace; the later `-n` is the test's.
    let d = crate::dashboard::start_with(&env.admin_kubeconfig(), &["-n", &env.ns]).await;
    let page = d.get(&format!("/rollouts/{}/{NAME}", env.ns)).await;
    assert_eq!(page.code, 200, "{}", page.text());
    let row = dashboard_row(&page.text(), runs + 1, &last);
    let cause = format!("baton rollout set image svc app=svc:{last}");
    assert_eq!((row[3].as_str(), row[4].as_str()), (cause.as_str(), "baton"), "{row:?}");
    op.stop().await;
}

/// `undo` goes straight to the revision, without stopping at the strategy's
/// manual pauses; `undo --batches` goes through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_goes_straight_to_the_revision_unless_asked_for_batches() {
    let (env, op) = v1_deployed().await;
    let pausing = |version: &str| {
        let mut m = env.manifest_v(NAME, 3, version);
        m["spec"]["strategy"]["pause"] = json!({"manual": true});
        m
    };
    env.apply(&env.manifest_v(NAME, 3, "v2")).await;
    env.wait_healthy(NAME, "v2", 3).await;
    env.apply(&pausing("v3")).await;
    env.wait_rollout(NAME, "v3 waiting after batch 1", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    let recorder = StatusRecorder::start(&env, NAME);
    let o = cli_exits(&env, &["undo", NAME, "--to-revision", "1"], 0).await;
    assert_eq!(o.stdout.trim(), "rollout.baton.dev/svc rolled back to revision 1 (v1)");
    let r = env.wait_healthy(NAME, "v1", 3).await;
    let v1 = status(&r).update_revision;
    let phases: Vec<RolloutPhase> = recorder
        .take()
        .into_iter()
        .filter(|(_, s)| s.update_revision == v1)
        .filter_map(|(_, s)| s.phase)
        .collect();
    assert!(!phases.contains(&RolloutPhase::Paused), "{phases:?}");

    // Asked for batches: the undo stops at the first pause like any rollout.
    env.apply(&pausing("v3")).await;
    env.wait_rollout(NAME, "v3 waiting after batch 1", LONG, |r| {
        current_generation(r) && status(r).phase == Some(RolloutPhase::Paused)
    })
    .await;
    cli_exits(&env, &["undo", NAME, "--to-revision", "2", "--batches"], 0).await;
    env.wait_rollout(NAME, "undo to v2 waiting after batch 1", LONG, |r| {
        current_generation(r)
            && r.spec.version == "v2"
            && status(r).phase == Some(RolloutPhase::Paused)
            && instance_versions(r) == [("v1".to_string(), 2), ("v2".to_string(), 1)].into()
    })
    .await;
    op.stop().await;
}
