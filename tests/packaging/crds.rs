//! `crds/` is exactly what `baton crds` prints, and applies the way users apply CRDs: client-side
//! `kubectl apply -f crds/` (which stores the whole object in an annotation, limited to 262,144
//! bytes) and `kubectl apply --server-side`, against baton-sim (which enforces kube-apiserver's
//! limit) or the real kube-apiserver (`BATON_TEST_CLUSTER=real`).
use serde_json::json;

use crate::world::World;

const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/");

#[test]
fn committed_crds_are_the_generated_ones() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/baton.dev_crds.yaml")).expect("crds file");
    let generated = baton::api::crds_yaml().expect("generate");
    assert!(committed == generated, "crds/ is out of date: run `make crds`");
}

/// The line kubectl prints for CRD `name` in `stdout`, with what it did (`created`,
/// `serverside-applied`...).
fn applied<'a>(stdout: &'a str, name: &str) -> &'a str {
    let prefix = format!("customresourcedefinition.apiextensions.k8s.io/{name} ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("kubectl printed nothing for {name}: {stdout}"))
}

/// Client-side and server-side `kubectl apply -f crds/` are accepted where the CRDs were
/// installed before by another field manager (as `baton` installs them: a server-side apply by
/// `baton`; Helm, Argo CD and Flux alike), and each object (as the last-applied annotation stores
/// it) is well under the annotation limit. On the real control plane, which other tests share,
/// both applies are server dry runs: kube-apiserver validates and admits them as it would a write
/// (the annotation's size, the CEL rules' cost, field ownership) and stores nothing; a copy of the
/// Rollout CRD padded past the limit shows the dry run does check the annotation.
#[tokio::test]
async fn kubectl_apply_client_side_and_server_side_accept_every_crd() {
    let w = World::start("crds").await;
    w.install_crds().await;
    let k = w.kubectl();
    let (dry, said): (&[&str], &str) = if w.is_real() {
        (&["--dry-run=server"], " (server dry run)")
    } else {
        (&[], "")
    };
    let names = ["rollouts.baton.dev", "listenersets.baton.dev"];

    let run = k.run(&[&["apply", "-f", CRDS][..], dry].concat()).await;
    assert_eq!(run.code, 0, "kubectl apply -f crds/: {run}");
    for name in names {
        assert_eq!(applied(&run.stdout, name), format!("configured{said}"), "{name}");
    }
    // The same definition by a second manager: no conflict with the first.
    let run = k
        .run(&[&["apply", "--server-side", "-f", CRDS][..], dry].concat())
        .await;
    assert_eq!(run.code, 0, "kubectl apply --server-side -f crds/: {run}");
    for name in names {
        assert_eq!(
            applied(&run.stdout, name),
            format!("serverside-applied{said}"),
            "{name}"
        );
    }
    for crd in [baton::api::rollout::crd(), baton::api::listenerset::crd()] {
        let size = serde_json::to_vec(&crd).expect("json").len();
        assert!(
            size < 131_072,
            "{} is {size} bytes as JSON",
            crd.metadata.name.unwrap_or_default()
        );
    }

    // Past the limit: refused client-side (the annotation), accepted server-side (none). A
    // group of its own, so no object with a last-applied annotation is in the way (kubectl's
    // server-side apply keeps one up to date where it finds it).
    let mut big = serde_json::to_value(baton::api::rollout::crd()).expect("json");
    big["metadata"]["name"] = json!("rollouts.size-check.baton.dev");
    big["spec"]["group"] = json!("size-check.baton.dev");
    big["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = json!("x".repeat(270_000));
    let file = k.file("big.json", &big);
    let run = k.run(&["apply", "--dry-run=server", "-f", &file]).await;
    assert_ne!(run.code, 0, "an annotation over 262,144 bytes was accepted: {run}");
    assert_eq!(
        run.stderr.trim(),
        "The CustomResourceDefinition \"rollouts.size-check.baton.dev\" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes",
        "{run}"
    );
    let run = k
        .run(&["apply", "--server-side", "--dry-run=server", "-f", &file])
        .await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        applied(&run.stdout, "rollouts.size-check.baton.dev"),
        "serverside-applied (server dry run)"
    );
}

/// kube-apiserver refuses a CRD whose rule's *estimated* cost exceeds its budget. Every rule
/// baton ships (and every messageExpression) stays at or below half of the runtime per-call
/// limit (1,000,000; the static per-rule limit is 10,000,000), so none can be refused nor
/// interrupted at run time. Prints every estimate.
#[test]
fn every_cel_rule_is_estimated_well_under_budget() {
    const PER_CALL_LIMIT: u64 = 1_000_000;
    let mut seen = 0;
    for crd in [baton::api::rollout::crd(), baton::api::listenerset::crd()] {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let value = serde_json::to_value(&crd).expect("json");
        let costs = baton_sim::cel::rule_costs(&value);
        for c in &costs {
            println!("{name} {} cost {}: {}", c.path, c.cost, c.rule);
            assert!(
                c.cost <= PER_CALL_LIMIT / 2,
                "{name} {}: estimated cost {} is over half the budget",
                c.path,
                c.cost
            );
        }
        seen += costs.len();
        assert!(baton_sim::cel::check_crd(&value).is_empty(), "{name} is refused");
    }
    assert!(seen >= 2, "only {seen} rules found");
}

/// The words in capitals (`UP-TO-DATE`) of `text`: the column names a doc lists.
fn capitals(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase() || c == '-'))
        .map(String::from)
        .collect()
}

fn doc_text(doc: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc))
        .unwrap_or_else(|e| panic!("reading {doc}: {e}"))
}

/// The prose of `doc` (a path from the repository root; line breaks and runs of blanks read as
/// one space) after `from`, up to the first `to`.
fn between(doc: &str, from: &str, to: &str) -> String {
    let text = doc_text(doc).split_whitespace().collect::<Vec<_>>().join(" ");
    let start = text
        .find(from)
        .map(|at| at + from.len())
        .unwrap_or_else(|| panic!("{doc} has no {from:?}"));
    let rest = &text[start..];
    rest[..rest.find(to).unwrap_or(rest.len())].to_string()
}

/// The comment (after `#`) of the line of `doc` that starts with `command`.
fn comment(doc: &str, command: &str) -> String {
    let text = doc_text(doc);
    let line = text
        .lines()
        .find(|l| l.starts_with(command))
        .unwrap_or_else(|| panic!("{doc} has no line starting with {command:?}"));
    line.split_once('#').map(|(_, c)| c.to_string()).unwrap_or_default()
}

type Crd = k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// The printer columns of `crd` as kubectl heads them (in capitals): those it prints, then with
/// those `-o wide` adds.
fn printer_columns(crd: &Crd) -> (Vec<String>, Vec<String>) {
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default();
    let names = |wide: bool| -> Vec<String> {
        columns
            .iter()
            .filter(|c| wide || c.priority.unwrap_or(0) == 0)
            .map(|c| c.name.to_uppercase())
            .collect()
    };
    (names(false), names(true))
}

/// Every place the docs list the columns of `kubectl get rollouts` and `kubectl get
/// listenersets` lists the CRDs' printer columns (what `baton crds` generates), in order.
#[test]
fn the_docs_list_the_columns_kubectl_get_prints() {
    let (rollouts, rollouts_wide) = printer_columns(&baton::api::rollout::crd());
    let (sets, sets_wide) = printer_columns(&baton::api::listenerset::crd());
    assert!(rollouts.len() < rollouts_wide.len() && sets.len() < sets_wide.len());
    assert_eq!(
        capitals(&comment("README.md", "kubectl get rollouts ")),
        rollouts,
        "README.md"
    );
    assert_eq!(
        capitals(&comment("README.md", "kubectl get listenersets ")),
        sets,
        "README.md"
    );
    let rollouts_doc = ("docs/rollouts.md", "`kubectl get rollouts` shows ");
    let sets_doc = ("docs/listeners.md", "`kubectl get listenersets` (the same columns: ");
    for ((doc, from), to, want) in [
        (rollouts_doc, "; `-o wide`", &rollouts),
        (rollouts_doc, ". ", &rollouts_wide),
        (sets_doc, ", and with `-o wide`", &sets),
        (sets_doc, ")", &sets_wide),
    ] {
        assert_eq!(&capitals(&between(doc, from, to)), want, "{doc}, after {from:?}");
    }
}
