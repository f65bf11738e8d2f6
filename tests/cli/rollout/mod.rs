//! The `baton rollout …` commands: the real binary and real kubectl against the test's API
//! server (`KUBECONFIG` = its admin kubeconfig, whose namespace is the test's), with the operator
//! running in-process. They run on both backends: baton-sim, and the real control plane
//! (`BATON_TEST_CLUSTER=real`), where each test works in a namespace of its own.

mod history;
mod pins;
mod promote;
mod status;
mod tree;
mod undo;

use crate::cli_support::{baton, Run};
use crate::support::*;
use serde_json::json;

const NAME: &str = "svc";

/// `baton rollout <args>`.
async fn cli(env: &Env, args: &[&str]) -> Run {
    let mut all = vec!["rollout"];
    all.extend_from_slice(args);
    baton(&env.admin_kubeconfig(), &all).await
}

/// `baton rollout <args>`, expecting it to exit with `expected`.
async fn cli_exits(env: &Env, args: &[&str], expected: i32) -> Run {
    let r = cli(env, args).await;
    assert_eq!(r.code, expected, "baton rollout {args:?}: {r}");
    r
}

/// The Rollout at `version` (3 instances), given up on after 3 seconds without progress.
fn fast(env: &Env, version: &str, image: &str) -> serde_json::Value {
    let mut m = env.manifest(NAME, 3, version, image);
    m["spec"]["progressDeadlineSeconds"] = json!(3);
    m
}

/// A test world with the operator running and v1 of the Rollout deployed and Healthy.
async fn v1_deployed() -> (Env, OperatorTask) {
    let env = Env::start().await;
    let op = env.start_operator().await;
    env.apply(&env.manifest_v(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    (env, op)
}
