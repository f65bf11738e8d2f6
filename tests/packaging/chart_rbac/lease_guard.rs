//! The chart's Lease guard: three attacks by an
//! application pod of the set's own ServiceAccount, against a running set with real agents —
//! refused with the guard, and (the same test with `leaseGuard.enabled=false`) successful
//! without it, which is what makes the refusals meaningful:
//!
//! 1. a pod that copies another pod's name and uid (readable from the Lease) into a real
//!    `baton agent` runs that pod's listeners too (duplicates);
//! 2. a raw Lease write by a pod steals a listener and resets its fencing token to 0;
//! 3. a write to the leader Lease (by a pod whose namespace holds it) stops the operator.
//!
//! Deleting or injecting a listener's Lease (also by a server-side apply that would create it)
//! is refused by RBAC either way, and no Lease an app pod reads carries a credential.
//!
//! Legitimate agents keep renewing and releasing throughout (no 401/403/422 for them).
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::harness::{agent_command, Cluster, APPS, APP_SA};
use crate::support::process::{http, LoggedChild};
use crate::support::{healthy_on, wait_for, LONG};

const SET: &str = "guarded";
/// The field manager of the raw writes (without the guard, the steal succeeds and is recorded).
const ATTACKER: &str = "attacker";

/// Two instances, a set of 4 inline listeners, one controller; returns the listener Leases.
async fn running_set(c: &mut Cluster) -> Vec<Lease> {
    c.start_controller(0).await;
    c.attach_agents(SET);
    let rollouts: Api<baton::api::rollout::Rollout> = Api::namespaced(c.admin.clone(), &c.apps);
    let r = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "user-service", "namespace": c.apps},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": APP_SA}}, "version": "v1",
                 "template": {"metadata": {"labels": {"app": APP_SA}}, "spec": {"serviceAccountName": APP_SA, "containers": [{"name": "app", "image": "app:v1"}]}}}});
    rollouts
        .create(&PostParams::default(), &serde_json::from_value(r).unwrap())
        .await
        .unwrap();
    wait_for("v1 healthy", LONG, || async {
        rollouts
            .get("user-service")
            .await
            .ok()
            .filter(|r| healthy_on(r, "v1", 2))
    })
    .await;
    let sets: Api<baton::api::listenerset::ListenerSet> = Api::namespaced(c.admin.clone(), &c.apps);
    let set = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": SET, "namespace": c.apps},
        "spec": {"selector": {"matchLabels": {"app": APP_SA}}, "listeners": (1..=4).map(|i| json!({"id": format!("l{i}")})).collect::<Vec<_>>(),
                 "leaseDurationSeconds": 10}});
    sets.create(&PostParams::default(), &serde_json::from_value(set).unwrap())
        .await
        .unwrap();
    wait_for("4 listeners running", LONG, || async {
        let st = sets.get(SET).await.ok()?.status?;
        (st.running == 4).then_some(())
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(c.admin.clone(), &c.apps);
    leases
        .list(&kube::api::ListParams::default().labels(&format!("baton.dev/listenerset={SET}")))
        .await
        .unwrap()
        .items
}

fn holder(l: &Lease) -> String {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

/// A pod of the application's ServiceAccount that the set does not select.
async fn intruder(c: &Cluster) -> Pod {
    let pods: Api<Pod> = Api::namespaced(c.admin.clone(), &c.apps);
    let p = json!({"metadata": {"name": "intruder", "labels": {"app": "other"}},
        "spec": {"serviceAccountName": APP_SA, "containers": [{"name": "c", "image": "tool:v1"}]}});
    pods.create(&PostParams::default(), &serde_json::from_value(p).unwrap())
        .await
        .unwrap()
}

/// (code, message) of a raw write, as `client`, of Lease `ns/name` as read now and changed by
/// `change` (a merge patch of the whole Lease, conditional on its resourceVersion: the verb the
/// agent Role grants); retried while the Lease changes under it (agents renew it), as an
/// attacker would.
async fn write(c: &Cluster, client: &kube::Client, ns: &str, name: &str, change: impl Fn(&mut Lease)) -> (u16, String) {
    let read: Api<Lease> = Api::namespaced(c.admin.clone(), ns);
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    for _ in 0..20 {
        let mut lease = read.get(name).await.expect("the Lease");
        change(&mut lease);
        let params = PatchParams {
            field_manager: Some(ATTACKER.into()),
            ..PatchParams::default()
        };
        match api.patch(name, &params, &Patch::Merge(&lease)).await {
            Ok(_) => return (200, String::new()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(kube::Error::Api(s)) => return (s.code, s.message),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("Lease {ns}/{name} kept changing");
}

/// Run the three attacks; `guarded`: the chart's Lease guard is installed.
async fn attacks(guarded: bool) {
    let values = json!({"replicaCount": 1, "leaseGuard": {"enabled": guarded},
        "controller": {"leaderElection": {"leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "500ms"}},
        "agentRole": {"create": true, "namespace": APPS, "serviceAccounts": [APP_SA]}});
    let mut c = Cluster::install(values, false).await;
    let policy = format!("{}-lease-guard", c.fullname());
    let guard = format!("ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request:");
    let leases = running_set(&mut c).await;
    let victim_lease = leases.first().expect("a listener Lease").clone();
    let victim = holder(&victim_lease);
    let victim_uid = victim_lease
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .map(|o| o.uid.clone())
        .unwrap();
    let live = baton::api::listenerset::liveness::liveness_lease_name(&victim_uid);
    let victim_leases: Vec<String> = leases
        .iter()
        .filter(|l| holder(l) == victim)
        .filter_map(|l| l.metadata.name.clone())
        .collect();
    let bad = intruder(&c).await;
    let apps = c.apps.clone();
    let token_client = c.service_account(&apps, APP_SA, Some("intruder")).await;

    // 1. A real agent with the victim's name and uid, but its own pod's token.
    let kubeconfig = c.w.dir.path().join("intruder.kubeconfig");
    c.w.service_account_kubeconfig(&apps, APP_SA, Some("intruder"), &kubeconfig)
        .await;
    let file = c.w.dir.path().join("intruder-listeners.json");
    let mut cmd = agent_command(&kubeconfig, SET, &file, (&apps, &victim, &victim_uid), &[]);
    let mut impostor = LoggedChild::spawn(&mut cmd, "addr").expect("starting the impostor");
    let addr = impostor.wait_addr(LONG).await.expect("the impostor serves");
    let running = |addr| async move {
        let (_, body) = http(addr, "GET", "/listeners", Duration::from_secs(10)).await?;
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(doc["listeners"].as_array().map_or(0, Vec::len))
    };
    if guarded {
        // Its first acquisition is refused by the guard, naming the pod it really is.
        let msg = wait_for("the impostor's write refused", LONG, || async {
            c.answers()
                .into_iter()
                .find(|a| {
                    a.code == 403
                        && a.message
                            .contains("pod intruder may write only the ListenerSet Leases it holds")
                })
                .map(|a| a.message)
        })
        .await;
        assert!(msg.contains(&guard), "{msg}");
        assert_eq!(running(addr).await, Some(0), "the impostor runs no listener");
        // And its own log says so, at WARN, with the API server's words.
        let warned = wait_for("the impostor's log names the refusal", LONG, || async {
            impostor
                .log_text()
                .lines()
                .find(|l| l.contains("\"WARN\"") && l.contains("refused") && l.contains("pod intruder may write only"))
                .map(str::to_string)
        })
        .await;
        assert!(warned.contains(&policy), "{warned}");
    } else {
        let n = wait_for("the impostor running the victim's listeners", LONG, || async {
            running(addr).await.filter(|n| *n == victim_leases.len())
        })
        .await;
        assert_eq!(
            n,
            victim_leases.len(),
            "without the guard the impostor duplicates every listener of {victim}"
        );
    }
    impostor.terminate();
    let _ = impostor.wait_exit(LONG).await;

    // 2. A raw write stealing a listener with token 0.
    let admin_leases: Api<Lease> = Api::namespaced(c.admin.clone(), &apps);
    let target = victim_leases[0].clone();
    let before = admin_leases
        .get(&target)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0);
    let owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference =
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "name": "intruder", "uid": bad.metadata.uid}))
            .unwrap();
    let (code, msg) = write(&c, &token_client, &apps, &target, |l| {
        let spec = l.spec.get_or_insert_with(Default::default);
        spec.holder_identity = Some("intruder".into());
        spec.lease_transitions = Some(0);
        l.metadata.owner_references = Some(vec![owner.clone()]);
    })
    .await;
    if guarded {
        assert_eq!((code, msg), (403, format!("leases.coordination.k8s.io \"{target}\" is forbidden: {guard} pod intruder may write only the ListenerSet Leases it holds")));
        // The rightful holder may not change its own token or hand its Lease on either.
        let own = c.service_account(&apps, APP_SA, Some(&victim)).await;
        let (code, msg) = write(&c, &own, &apps, &target, |l| {
            l.spec.get_or_insert_with(Default::default).lease_transitions = Some(before + 7);
        })
        .await;
        assert_eq!(code, 403);
        assert!(
            msg.ends_with("a pod may not change a Lease's fencing token (leaseTransitions), duration or acquire time"),
            "{msg}"
        );
        let (code, msg) = write(&c, &own, &apps, &target, |l| {
            l.spec.get_or_insert_with(Default::default).holder_identity = Some("intruder".into());
        })
        .await;
        assert_eq!(code, 403);
        assert!(
            msg.ends_with("a pod may renew or release its Lease, not hand it to another holder"),
            "{msg}"
        );
        // On its own liveness Lease it may write the leaving mark (the demo's agents do, as they
        // shut down), and no other annotation.
        let (code, msg) = write(&c, &own, &apps, &live, |l| {
            let notes = l.metadata.annotations.get_or_insert_with(Default::default);
            notes.insert("example.com/note".into(), "x".into());
        })
        .await;
        assert_eq!(code, 403, "{msg}");
        assert!(
            msg.ends_with("a pod may not change a Lease's labels, annotations or finalizers"),
            "{msg}"
        );
        let now = admin_leases.get(&target).await.unwrap();
        assert_eq!(
            (holder(&now), now.spec.unwrap().lease_transitions.unwrap_or(0)),
            (victim.clone(), before)
        );
    } else {
        assert_eq!(code, 200, "without the guard the steal succeeds: {msg}");
    }

    deletes_injections_and_harvesting(&token_client, &apps, &target).await;

    // 3. The leader Lease, writable by the application's ServiceAccount where the operator
    // runs in the application's namespace (here: a Role like the agent's in baton-system).
    let release_ns = c.release_ns().to_string();
    let rbac: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(c.admin.clone(), &release_ns);
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(c.admin.clone(), &release_ns);
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "app-leases"},
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "patch"]}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    rbac.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "app-leases"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app-leases"},
        "subjects": [{"kind": "ServiceAccount", "name": APP_SA, "namespace": apps}]}))
        .unwrap(),
    )
    .await
    .unwrap();
    let leader_leases: Api<Lease> = Api::namespaced(c.admin.clone(), &release_ns);
    let leading = holder(&leader_leases.get("baton-controller").await.unwrap());
    let (code, msg) = write(&c, &token_client, &release_ns, "baton-controller", |l| {
        l.spec.get_or_insert_with(Default::default).holder_identity = Some("intruder".into());
    })
    .await;
    if guarded {
        assert_eq!((code, msg), (403, format!("leases.coordination.k8s.io \"baton-controller\" is forbidden: {guard} only the baton controller writes its leader Lease")));
        assert_eq!(holder(&leader_leases.get("baton-controller").await.unwrap()), leading);
        // Legitimate agents kept working: the only refusals of the application's ServiceAccount
        // are the intruder's and the writes the test made on purpose. A 5xx (kube-apiserver's
        // 504 "request did not complete" on a loaded machine) is no refusal: the agent retries.
        let refused: Vec<String> = c
            .answers()
            .into_iter()
            .filter(|a| a.user == c.agent_user() && (400..500).contains(&a.code) && a.code != 409 && a.code != 404)
            .map(|a| a.message)
            .filter(|m| !m.contains("pod intruder may write only"))
            .collect();
        let prefix = format!("forbidden: {guard}");
        let expected = [
            format!("leases.coordination.k8s.io \"{target}\" is {prefix} a pod may not change a Lease's fencing token (leaseTransitions), duration or acquire time"),
            format!("leases.coordination.k8s.io \"{target}\" is {prefix} a pod may renew or release its Lease, not hand it to another holder"),
            format!("leases.coordination.k8s.io \"{live}\" is {prefix} a pod may not change a Lease's labels, annotations or finalizers"),
            format!("leases.coordination.k8s.io \"{target}\" is forbidden: User \"{}\" cannot delete resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{apps}\"", c.agent_user()),
            format!("leases.coordination.k8s.io is forbidden: User \"{}\" cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{apps}\"", c.agent_user()),
            // A server-side apply that would create needs `create` too: refused in the RBAC
            // authorizer's words, with the name.
            format!("leases.coordination.k8s.io \"guarded-injected\" is forbidden: User \"{}\" cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{apps}\"", c.agent_user()),
            format!("leases.coordination.k8s.io \"baton-controller\" is {prefix} only the baton controller writes its leader Lease"),
        ];
        assert_eq!(refused, expected, "legitimate agents refused");
    } else {
        assert_eq!(code, 200, "without the guard the leader Lease is taken: {msg}");
    }
}

/// As the intruder, guard or not (RBAC refuses these): delete a listener's Lease, create one
/// (inject a listener for itself), or create one by server-side apply with `patch` alone; and
/// no Lease it can read names a credential in its managed fields.
async fn deletes_injections_and_harvesting(intruder: &kube::Client, apps: &str, target: &str) {
    let api: Api<Lease> = Api::namespaced(intruder.clone(), apps);
    let code = |r: Result<_, kube::Error>| match r {
        Ok(_) => 200,
        Err(kube::Error::Api(s)) => s.code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        code(api.delete(target, &Default::default()).await.map(|_| ())),
        403,
        "delete"
    );
    let injected: Lease = serde_json::from_value(json!({"metadata": {"name": "guarded-injected",
        "labels": {"baton.dev/listenerset": SET}}, "spec": {"holderIdentity": "intruder"}}))
    .unwrap();
    assert_eq!(
        code(api.create(&PostParams::default(), &injected).await.map(|_| ())),
        403,
        "create"
    );
    let applied = api
        .patch(
            "guarded-injected",
            &PatchParams::apply("intruder"),
            &Patch::Apply(&injected),
        )
        .await;
    assert_eq!(code(applied.map(|_| ())), 403, "a server-side apply that creates");
    let all = api
        .list(&Default::default())
        .await
        .expect("the agent Role lists Leases");
    let managers: std::collections::BTreeSet<String> = all
        .items
        .iter()
        .flat_map(|l| l.metadata.managed_fields.iter().flatten())
        .map(|m| m.manager.clone().unwrap_or_default())
        .collect();
    assert!(
        managers.iter().all(|m| m == "baton" || m == ATTACKER || m.is_empty()),
        "managers in the Leases an app pod can read: {managers:?}"
    );
    let text = serde_json::to_string(&all.items).unwrap();
    assert!(!text.contains("token="), "a credential in a Lease: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_guard_refuses_the_three_attacks() {
    if !super::harness::helm_available().await {
        return;
    }
    attacks(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_lease_guard_the_three_attacks_succeed() {
    if !super::harness::helm_available().await {
        return;
    }
    attacks(false).await;
}
