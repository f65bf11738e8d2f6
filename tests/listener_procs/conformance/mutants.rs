//! The suite catches a client that breaks a rule: a copy of each client's sources with one rule
//! broken at a marked line (`conformance: ack-after-stop`, `conformance: valid-until-timer`), its
//! sample app built from the copy, must fail the case that covers that rule — with violations
//! of that rule, not with a run that could not go on. A patch that no longer applies (its
//! marker or text gone) fails the test too.
use std::sync::Arc;

use crate::harness::Cluster;

use super::{run_case, Build, Case, Client, Failure, Mutation};

/// What a run of `m` must show: a violation of the rule it breaks.
fn shows(m: Mutation, line: &str) -> bool {
    match m {
        // Released while still stopping: another pod starts it meanwhile, and the tap sees
        // the acknowledgement before the stop.
        Mutation::AckBeforeStop => {
            line.starts_with("duplicate") || line.contains("in two apps") || line.contains("acknowledged version")
        }
        Mutation::NoValidUntilTimer => line.contains("past its validUntil") || line.starts_with("duplicate"),
    }
}

/// `case` run by the sample app of a copy of `client` with `m` applied must break `m`'s rule.
pub async fn mutant(client: Client, m: Mutation, case: Case) {
    let name = format!(
        "mut-{}-{}",
        match m {
            Mutation::AckBeforeStop => "ack",
            Mutation::NoValidUntilTimer => "timer",
        },
        client.short()
    );
    let scratch = Cluster::shared().scratch().to_path_buf();
    let built = tokio::task::spawn_blocking(move || Build::mutant(client, m, &scratch)).await;
    let build = match built {
        Ok(Ok(b)) => Arc::new(b),
        Ok(Err(e)) => panic!("the {client:?} client with {m:?}: {e}"),
        Err(e) => panic!("the {client:?} client with {m:?}: {e}"),
    };
    let (t, outcome) = run_case(case, client, &build, &name).await;
    let found = match outcome {
        Err(Failure::Broken(v)) => v,
        Err(Failure::Harness(e)) => {
            panic!("the {client:?} client with {m:?}: the {case:?} run could not be judged: {e}")
        }
        Ok(()) => t.map(|t| t.violations()).unwrap_or_default(),
    };
    assert!(
        found.iter().any(|l| shows(m, l)),
        "the {client:?} client with {m:?} passed {case:?}: the suite does not catch it ({found:?})"
    );
    println!(
        "the {client:?} client with {m:?} fails {case:?}, {} violations, the first: {}",
        found.len(),
        found.iter().find(|l| shows(m, l)).map_or("", String::as_str)
    );
}
