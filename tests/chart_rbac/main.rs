//! The chart's RBAC exercised as a real cluster would: charts/baton is
//! installed with Helm's engine into a simulator that enforces RBAC, the controller runs as the
//! chart's ServiceAccount (two replicas, leader election) and the agents as the application's
//! ServiceAccount bound by the chart's agent Role, and the whole demo scenario runs — in
//! `cluster` scope, in `namespace` scope, and with Secret reads off — with zero 401/403
//! answers to either. Negative tests: the `view` role cannot promote, an agent cannot write
//! Leases outside its namespace, the controller cannot read Secrets when that is off.
//!
//! Needs `.venv` with helm-python-sdk (`make deps`); BATON_SKIP_HELM_CHECKS=1 skips.
#[path = "../support/helm.rs"]
mod helm;
#[path = "../support/mod.rs"]
mod support;

#[path = "../dashboard/harness.rs"]
mod dashboard_harness;

mod dashboard;
mod harness;
mod lease_guard;
mod lease_scope;
mod least_privilege;
mod scenario;

use baton::api::listenerset::ListenerSet;
use baton_sim::auth::UserInfo;
use harness::{agent_user, controller_user, helm_available, Cluster, APPS, RELEASE_NS, SECRET};
use kube::api::{Api, Patch, PatchParams};
use scenario::{Listeners, NAME};
use serde_json::{json, Value};
use support::{wait_for, LONG};

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
/// Lease guard), and both did work.
fn assert_no_denials(c: &Cluster) {
    let audit = &c.sim.core.auth.audit;
    for user in [controller_user(), agent_user()] {
        let denied: Vec<String> = audit
            .recent()
            .into_iter()
            .filter(|e| e.key.user == user && matches!(e.key.code, 401 | 403 | 422))
            .map(|e| e.message)
            .collect();
        assert_eq!(audit.count_code(&user, 403), 0, "403s for {user}: {denied:#?}");
        assert_eq!(audit.count_code(&user, 401), 0, "401s for {user}: {denied:#?}");
        assert_eq!(audit.count_code(&user, 422), 0, "422s for {user}: {denied:#?}");
        let writes: u64 = audit
            .counts()
            .iter()
            .filter(|(k, _)| k.user == user && matches!(k.verb.as_str(), "update" | "patch" | "create"))
            .map(|(_, n)| n)
            .sum();
        assert!(writes > 0, "{user} wrote nothing: the scenario did not exercise it");
    }
}

async fn two_controllers(c: &mut Cluster) {
    c.start_controller(0).await;
    c.start_controller(1).await;
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
    let pod = c
        .sim
        .core
        .store
        .list(
            &baton_sim::resources::ResKey {
                group: String::new(),
                plural: "pods".into(),
            },
            Some(APPS),
        )
        .0
        .into_iter()
        .find(|p| p.name.starts_with(NAME))
        .expect("an application pod");
    let agent = c
        .sim
        .client_for_service_account(APPS, harness::APP_SA, Some(&pod.name))
        .await
        .unwrap();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(agent.clone(), RELEASE_NS);
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "baton-controller"},
        "spec": {"holderIdentity": pod.name}});
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
        (403, format!("leases.coordination.k8s.io \"baton-controller\" is forbidden: User \"{}\" cannot patch resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{RELEASE_NS}\"", agent_user()))
    );
    // RBAC lets the controller write Leases everywhere (ListenerSets may be anywhere); the
    // chart's policy keeps it to ListenerSet Leases and its own leader Lease.
    let system: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(c.admin.clone(), "kube-system");
    system
        .create(
            &Default::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "node-1"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let ctl = c
        .sim
        .client_for_service_account(RELEASE_NS, "baton", None)
        .await
        .unwrap();
    let foreign: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(ctl, "kube-system");
    // A merge patch: the verb the controller's role grants on Leases.
    let take = json!({"spec": {"holderIdentity": "baton"}});
    let err = foreign
        .patch("kube-scheduler", &PatchParams::default(), &Patch::Merge(&take))
        .await
        .expect_err("the controller may not take kube-system's Leases");
    assert_eq!(
        api_message(err),
        (403, "leases.coordination.k8s.io \"kube-scheduler\" is forbidden: ValidatingAdmissionPolicy 'baton-controller-leases' with binding 'baton-controller-leases' denied request: the baton controller writes only ListenerSet Leases, agent liveness Leases and its leader Lease, not kube-system/kube-scheduler".to_string())
    );
    let own: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(agent, APPS);
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
    assert_eq!(c.object("Role", "baton-controller")["metadata"]["namespace"], APPS);
    assert!(!c
        .manifest
        .iter()
        .any(|o| o["kind"] == "ClusterRoleBinding" && o["metadata"]["name"] == "baton-controller"));
    two_controllers(&mut c).await;
    scenario::run(&mut c, Listeners::FromSecret).await;
    assert_no_denials(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_install_reads_no_secret_and_runs_the_demo_with_no_403() {
    if !helm_available().await {
        return;
    }
    let mut c = Cluster::install(values(json!({}), false), true).await;
    two_controllers(&mut c).await;
    scenario::run(&mut c, Listeners::Inline).await;
    assert_no_denials(&c);
    // No Secret was asked for by the controller, and it may not read one.
    let secret_reads = c
        .sim
        .core
        .auth
        .audit
        .counts()
        .into_iter()
        .filter(|(k, _)| k.user == controller_user() && k.resource == "secrets")
        .count();
    assert_eq!(secret_reads, 0);
    let ctl = c
        .sim
        .client_for_service_account(RELEASE_NS, "baton", None)
        .await
        .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(ctl, APPS);
    let err = secrets
        .get(SECRET)
        .await
        .expect_err("the controller may not read Secrets");
    assert_eq!(
        api_message(err),
        (403, format!("secrets \"{SECRET}\" is forbidden: User \"{}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{APPS}\"", controller_user()))
    );
    // kubectl agrees, here and in a namespace no baton object names.
    let kubeconfig = c.sim.kubeconfig_path().to_path_buf();
    for ns in [APPS, "kube-system", "default"] {
        let out = tokio::process::Command::new("/usr/bin/kubectl")
            .env("HOME", c.dir.path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["auth", "can-i", "get", "secrets", "-n", ns, "--as", &controller_user()])
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
    let sets: Api<ListenerSet> = Api::namespaced(c.admin.clone(), APPS);
    let set = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": "needs-secret", "namespace": APPS},
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
            "the controller does not read Secrets (baton controller --read-secrets=false); with the chart, list namespace {APPS} in rbac.secrets.namespaces"
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
    let cluster_role = c.object("ClusterRole", "baton-controller");
    assert!(!cluster_role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["resources"].as_array().unwrap().contains(&json!("secrets"))));
    assert_eq!(
        c.object("Role", "baton-controller-secrets")["metadata"]["namespace"],
        APPS
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn view_cannot_promote_edit_can() {
    if !helm_available().await {
        return;
    }
    let mut c = Cluster::install(values(json!({"replicaCount": 1}), false), false).await;
    c.start_controller(0).await;
    c.sim.register_user(
        "jane-token",
        UserInfo {
            username: "jane".into(),
            groups: vec!["viewers".into()],
            ..Default::default()
        },
    );
    c.sim.register_user(
        "bob-token",
        UserInfo {
            username: "bob".into(),
            groups: vec!["editors".into()],
            ..Default::default()
        },
    );
    let rb = |name: &str, role: &str, group: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": APPS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
    };
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(c.admin.clone(), APPS);
    for (n, r, g) in [("viewers", "view", "viewers"), ("editors", "edit", "editors")] {
        bindings
            .create(&Default::default(), &serde_json::from_value(rb(n, r, g)).unwrap())
            .await
            .unwrap();
    }
    let jane = c.dir.path().join("jane.kubeconfig");
    c.sim.kubeconfig_with_token("jane", "jane-token", &jane).unwrap();
    let bob = c.dir.path().join("bob.kubeconfig");
    c.sim.kubeconfig_with_token("bob", "bob-token", &bob).unwrap();
    // A rollout that waits for promotion after its first batch.
    let mut r = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": NAME, "namespace": APPS},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "version": "v1",
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:v1"}]}},
                 "strategy": {"batches": [1, "100%"], "pause": {}}}});
    let rollouts: Api<baton::api::rollout::Rollout> = Api::namespaced(c.admin.clone(), APPS);
    rollouts
        .patch(NAME, &PatchParams::apply("user").force(), &Patch::Apply(&r))
        .await
        .unwrap();
    wait_for("v1 healthy", LONG, || async {
        rollouts
            .get(NAME)
            .await
            .ok()
            .filter(|r| support::healthy_on(r, "v1", 2))
    })
    .await;
    r["spec"]["version"] = json!("v2");
    r["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:v2");
    rollouts
        .patch(NAME, &PatchParams::apply("user").force(), &Patch::Apply(&r))
        .await
        .unwrap();
    wait_for("paused after the first batch", LONG, || async {
        let r = rollouts.get(NAME).await.ok()?;
        (r.status?.phase == Some(baton::api::rollout::RolloutPhase::Paused)).then_some(())
    })
    .await;
    let out = scenario::baton(&c, &jane, &["promote", NAME]).await;
    // The API server refused: exit 5, kubectl's words.
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("Error from server (Forbidden): rollouts.baton.dev \"{NAME}\" is forbidden: User \"jane\" cannot patch resource \"rollouts\" in API group \"baton.dev\" in the namespace \"{APPS}\"")
    );
    // kubectl agrees: view may read rollouts but not patch them; edit may.
    let kubectl = |kc: std::path::PathBuf, args: Vec<String>| {
        let home = c.dir.path().join("kubectl-home");
        async move {
            let out = tokio::process::Command::new("/usr/bin/kubectl")
                .env("HOME", &home)
                .arg("--kubeconfig")
                .arg(kc)
                .args(args)
                .output()
                .await
                .expect("kubectl runs");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )
        }
    };
    let can = |verb: &str| {
        vec![
            "auth".into(),
            "can-i".into(),
            verb.into(),
            "rollouts.baton.dev".into(),
            "-n".into(),
            APPS.into(),
        ]
    };
    assert_eq!(kubectl(jane.clone(), can("get")).await, (Some(0), "yes".into()));
    assert_eq!(kubectl(jane.clone(), can("patch")).await, (Some(1), "no".into()));
    assert_eq!(kubectl(bob.clone(), can("patch")).await, (Some(0), "yes".into()));
    let out = scenario::baton(&c, &bob, &["promote", NAME]).await;
    assert!(
        out.status.success(),
        "edit promotes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("v2 healthy after the promotion", LONG, || async {
        rollouts
            .get(NAME)
            .await
            .ok()
            .filter(|r| support::healthy_on(r, "v2", 2))
    })
    .await;
}
