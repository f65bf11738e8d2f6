//! `crds/` is exactly what `baton crds` prints, and applies the way users apply CRDs: client-side
//! `kubectl apply -f crds/` (which stores the whole object in an annotation, limited to 262,144
//! bytes) against the simulator, which enforces kube-apiserver's limit.
use std::process::Command;

use baton_sim::{Sim, SimConfig};

#[test]
fn committed_crds_are_the_generated_ones() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/baton.dev_crds.yaml")).expect("crds file");
    let generated = baton::api::crds_yaml().expect("generate");
    assert!(committed == generated, "crds/ is out of date: run `make crds`");
}

#[tokio::test]
async fn kubectl_apply_client_side_accepts_every_crd() {
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let home = std::env::temp_dir().join(format!("baton-crds-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("home");
    let crds_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/");
    let kubeconfig = sim.kubeconfig_path().to_path_buf();
    let home2 = home.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/kubectl")
            .env("HOME", &home2)
            .env("KUBECONFIG", &kubeconfig)
            .args([
                "--cache-dir",
                &home2.join("cache").to_string_lossy(),
                "apply",
                "-f",
                crds_dir,
            ])
            .output()
            .expect("kubectl runs")
    })
    .await
    .expect("join");
    let _ = std::fs::remove_dir_all(&home);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl apply -f crds/ failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("customresourcedefinition.apiextensions.k8s.io/rollouts.baton.dev created"),
        "{stdout}"
    );
    assert!(
        stdout.contains("customresourcedefinition.apiextensions.k8s.io/listenersets.baton.dev created"),
        "{stdout}"
    );
    // Each object (as the last-applied annotation stores it) is well under the limit.
    for crd in [baton::api::rollout::crd(), baton::api::listenerset::crd()] {
        let size = serde_json::to_vec(&crd).expect("json").len();
        assert!(
            size < 131_072,
            "{} is {size} bytes as JSON",
            crd.metadata.name.unwrap_or_default()
        );
    }
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
