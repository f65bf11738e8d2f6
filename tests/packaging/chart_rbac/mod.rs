//! The chart's RBAC exercised as a real cluster would: charts/baton is installed with Helm's
//! engine into an API server that enforces RBAC and admission policies — baton-sim, or the real
//! kube-apiserver (`BATON_TEST_CLUSTER=real`: its RBAC authorizer, escalation check,
//! ValidatingAdmissionPolicies and TokenRequest) — the controller runs as the chart's
//! ServiceAccount (two replicas, leader election) and the agents as the application's
//! ServiceAccount bound by the chart's agent Role, and the whole demo scenario runs — in
//! `cluster` scope, in `namespace` scope, and with Secret reads off — with zero 401/403
//! answers to either. Negative tests: the `view` role cannot promote, an agent cannot write
//! Leases outside its namespace, the controller cannot read Secrets when that is off.
//!
//! Needs `.venv` with helm-python-sdk (`make deps`); BATON_SKIP_HELM_CHECKS=1 skips.
mod audit;
mod dashboard;
mod harness;
mod lease_guard;
mod lease_scope;
mod least_privilege;
mod namespaces;
mod real_agents;
mod releases;
mod scenario;
mod users;

use crate::support::{wait_for, LONG};
use baton::api::listenerset::ListenerSet;
use harness::{helm_available, Cluster, APPS, SECRET};
use kube::api::{Api, Patch, PatchParams};
use scenario::{Listeners, NAME};
use serde_json::{json, Value};

/// Chart values every test uses: fast leader election, the agent Role for the application.
fn values(extra: Value, agent_secrets: bool) -> Value {
    let mut v = json!({
        "controller": {"leaderElection": {"leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "500ms"},
                       "drainTimeoutSeconds": 20},
        "agentRole": {"create": true, "namespace": APPS, "serviceAccounts": [harness::APP_SA],
                      "secretNames": if agent_secrets { json!([SECRET]) } else { json!([]) }}
    });
    merge(&mut v, extra);
    v
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Neither the controller nor the agents got a 401, 403 or 422 (RBAC, authentication, the
/// Lease guard), and both did work. The real control plane's audit log records writes only: a
/// refused read shows in the processes' logs, which must not have one either.
fn assert_no_denials(c: &Cluster) {
    for user in [c.controller_user(), c.agent_user()] {
        let denied = c.refused(&user, &[401, 403, 422]);
        assert_eq!(denied, Vec::<(u16, String)>::new(), "refusals of {user}");
        let writes: u64 = c.writes(&user).values().sum();
        assert!(writes > 0, "{user} wrote nothing: the scenario did not exercise it");
    }
    let agents = c.agent_logs.lock().unwrap_or_else(|p| p.into_inner());
    let logs = c.controllers.iter().map(|p| (p.pod.clone(), p.child.log_text())).chain(
        agents
            .iter()
            .map(|(pod, log)| (pod.clone(), log.lock().unwrap_or_else(|p| p.into_inner()).join("\n"))),
    );
    for (pod, log) in logs {
        let refused = log
            .lines()
            .find(|l| l.contains(" is forbidden: ") || l.contains("Unauthorized"));
        assert_eq!(refused, None, "a refusal in the log of {pod}");
    }
}

async fn two_controllers(c: &mut Cluster) {
    c.start_controller(0).await;
    c.start_controller(1).await;
}

type Leases = Api<k8s_openapi::api::coordination::v1::Lease>;

/// On the real control plane the cluster's own Leases (kube-system's leader elections) are
/// live: writes to them that the policies must refuse are server dry runs there, which
/// kube-apiserver authorizes and admits like any write, and which change nothing should the
/// policy let one through.
fn dry_run_on_real(c: &Cluster) -> bool {
    c.w.is_real()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_scope_runs_the_demo_with_no_403() {
    if !helm_available().await {
        return;
    }
    // Secrets cluster-wide: the opt-in (the default reads none; see the test below).
    let mut c = Cluster::install(values(json!({"rbac": {"secrets": {"clusterWide": true}}}), true), true).await;
    two_controllers(&mut c).await;
    scenario::run(&mut c, Listeners::FromSecret).await;
    assert_no_denials(&c);

    // An agent cannot write Leases outside its namespace (nor create any in it).
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.admin.clone(), &c.apps);
    let pod = pods
        .list(&Default::default())
        .await
        .expect("the application's pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .find(|n| n.starts_with(NAME))
        .expect("an application pod");
    let agent = c.service_account(&c.apps, harness::APP_SA, Some(&pod)).await;
    let leases: Leases = Api::namespaced(agent.clone(), c.release_ns());
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "baton-controller"},
        "spec": {"holderIdentity": pod}});
    let err = leases
        .patch(
            "baton-controller",
            &PatchParams::apply("agent").force(),
            &Patch::Apply(&lease),
        )
        .await
        .expect_err("an agent may not write the leader Lease");
    assert_eq!(
        api_message(err),
        (403, format!("leases.coordination.k8s.io \"baton-controller\" is forbidden: User \"{}\" cannot patch resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{}\"", c.agent_user(), c.release_ns()))
    );
    // RBAC lets the controller write Leases everywhere (ListenerSets may be anywhere); the
    // chart's policy keeps it to ListenerSet Leases and its own leader Lease.
    let system: Leases = Api::namespaced(c.admin.clone(), "kube-system");
    if !c.w.is_real() {
        let scheduler = json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "node-1"}});
        system
            .create(&Default::default(), &serde_json::from_value(scheduler).unwrap())
            .await
            .unwrap();
    }
    let ctl = c.service_account(c.release_ns(), c.fullname(), None).await;
    let foreign: Leases = Api::namespaced(ctl, "kube-system");
    // A merge patch: the verb the controller's role grants on Leases.
    let take = json!({"spec": {"holderIdentity": "baton"}});
    let params = PatchParams {
        dry_run: dry_run_on_real(&c),
        ..PatchParams::default()
    };
    let err = foreign
        .patch("kube-scheduler", &params, &Patch::Merge(&take))
        .await
        .expect_err("the controller may not take kube-system's Leases");
    let policy = format!("{}-controller-leases", c.fullname());
    assert_eq!(
        api_message(err),
        (403, format!("leases.coordination.k8s.io \"kube-scheduler\" is forbidden: ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request: the baton controller writes only ListenerSet Leases, agent liveness Leases and its leader Lease, not kube-system/kube-scheduler"))
    );
    let own: Leases = Api::namespaced(agent, &c.apps);
    let created = own
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "mine"}, "spec": {}})).unwrap(),
        )
        .await
        .expect_err("an agent may not create Leases");
    assert_eq!(api_message(created).0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespace_scope_runs_the_demo_with_no_403() {
    if !helm_available().await {
        return;
    }
    let v = values(
        json!({"rbac": {"scope": "namespace"}, "controller": {"watchNamespace": APPS}}),
        true,
    );
    let mut c = Cluster::install(v, true).await;
    // The controller's Role is in the watched namespace; nothing cluster-wide but the CRD reader.
    let controller = format!("{}-controller", c.fullname());
    assert_eq!(c.object("Role", &controller)["metadata"]["namespace"], c.apps.as_str());
    assert!(!c
        .release
        .manifest
        .iter()
        .any(|o| o["kind"] == "ClusterRoleBinding" && o["metadata"]["name"] == controller.as_str()));
    two_controllers(&mut c).await;
    scenario::run(&mut c, Listeners::FromSecret).await;
    assert_no_denials(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_install_reads_no_secret_and_runs_the_demo_with_no_403() {
    if !helm_available().await {
        return;
    }
    let mut c = Cluster::install(values(json!({}), false), false).await;
    two_controllers(&mut c).await;
    scenario::run(&mut c, Listeners::Inline).await;
    assert_no_denials(&c);
    // No Secret was asked for by the controller (baton-sim's audit has every read; the real
    // control plane's only writes), and it may not read one.
    if let crate::world::Backend::Sim(sim) = &c.w.backend {
        let secret_reads = sim
            .core
            .auth
            .audit
            .counts()
            .into_iter()
            .filter(|(k, _)| k.user == c.controller_user() && k.resource == "secrets")
            .count();
        assert_eq!(secret_reads, 0);
    }
    let ctl = c.service_account(c.release_ns(), c.fullname(), None).await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(ctl, &c.apps);
    let err = secrets
        .get(SECRET)
        .await
        .expect_err("the controller may not read Secrets");
    assert_eq!(
        api_message(err),
        (403, format!("secrets \"{SECRET}\" is forbidden: User \"{}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{}\"", c.controller_user(), c.apps))
    );
    // kubectl agrees, here and in a namespace no baton object names.
    for ns in [c.apps.as_str(), "kube-system", "default"] {
        let out = tokio::process::Command::new("/usr/bin/kubectl")
            .env("HOME", c.w.dir.path())
            .arg("--kubeconfig")
            .arg(c.admin_kubeconfig())
            .args([
                "auth",
                "can-i",
                "get",
                "secrets",
                "-n",
                ns,
                "--as",
                &c.controller_user(),
            ])
            .output()
            .await
            .expect("kubectl runs");
        assert_eq!(
            (out.status.code(), String::from_utf8_lossy(&out.stdout).trim()),
            (Some(1), "no"),
            "can-i get secrets -n {ns}"
        );
    }
    // A ListenerSet that needs a Secret is told why it cannot have it.
    let sets: Api<ListenerSet> = Api::namespaced(c.admin.clone(), &c.apps);
    let set = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": "needs-secret", "namespace": c.apps},
        "spec": {"selector": {"matchLabels": {"app": "nothing"}}, "listenersFrom": {"secretRef": {"name": SECRET}}}});
    sets.patch("needs-secret", &PatchParams::apply("user").force(), &Patch::Apply(&set))
        .await
        .unwrap();
    let msg = wait_for("the set reports the Secret it cannot read", LONG, || async {
        let st = sets.get("needs-secret").await.ok()?.status?;
        st.conditions
            .iter()
            .find(|c| c.message.contains("cannot be read"))
            .map(|c| c.message.clone())
    })
    .await;
    assert!(
        msg.contains(&format!(
            "the controller does not read Secrets (baton controller --read-secrets=false); with the chart, list namespace {} in rbac.secrets.namespaces",
            c.apps
        )),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_in_listed_namespaces_run_the_demo_with_no_403() {
    if !helm_available().await {
        return;
    }
    let mut c = Cluster::install(values(json!({"rbac": {"secrets": {"namespaces": [APPS]}}}), true), true).await;
    // Secret access is a Role in the listed namespace, not in the ClusterRole.
    let cluster_role = c.object("ClusterRole", &format!("{}-controller", c.fullname()));
    assert!(!cluster_role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["resources"].as_array().unwrap().contains(&json!("secrets"))));
    assert_eq!(
        c.object("Role", &format!("{}-controller-secrets", c.fullname()))["metadata"]["namespace"],
        c.apps.as_str()
    );
    two_controllers(&mut c).await;
    scenario::run(&mut c, Listeners::FromSecret).await;
    assert_no_denials(&c);
}

fn api_message(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("not an API error: {other}"),
    }
}
