//! Authentication as kube-apiserver does it: bearer tokens, anonymous requests, 401 for a token
//! nobody issued; ServiceAccount tokens from TokenRequest (bound to a pod: its name and uid in
//! the user's extra), which stop working when the ServiceAccount or the pod is gone; TokenReview;
//! `kubectl create token` and `kubectl auth whoami` with real kubectl.
use crate::common;

use baton_sim::Sim;
use common::kubectl::Kubectl;
use common::{raw_with, sim};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};

async fn create_sa(sim: &Sim, ns: &str, name: &str) -> ServiceAccount {
    let sas: Api<ServiceAccount> = Api::namespaced(sim.client().await.unwrap(), ns);
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .expect("create ServiceAccount")
}

async fn create_pod(sim: &Sim, ns: &str, name: &str, sa: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(sim.client().await.unwrap(), ns);
    let pod = json!({"metadata": {"name": name}, "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "app:v1"}]}});
    pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap())
        .await
        .expect("create pod")
}

/// A raw request with bearer `token` ("" sends no Authorization header).
async fn as_token(sim: &Sim, method: &str, path: &str, token: &str) -> common::RawResponse {
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Bearer {token}")
    };
    raw_with(sim, method, path, &[("Authorization", &auth)], b"").await
}

async fn whoami(sim: &Sim, token: &str) -> Value {
    let r = raw_with(
        sim,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#,
    )
    .await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["status"]["userInfo"].clone()
}

#[tokio::test]
async fn anonymous_requests_and_unknown_tokens() {
    let sim = sim().await;
    // No credentials: system:anonymous, who may read /version and the health endpoints only.
    assert_eq!(as_token(&sim, "GET", "/version", "").await.code, 200);
    assert_eq!(as_token(&sim, "GET", "/healthz", "").await.code, 200);
    let r = as_token(&sim, "GET", "/api/v1/pods", "").await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" at the cluster scope",
            "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
    );
    let r = as_token(&sim, "GET", "/apis", "").await;
    assert_eq!(
        r.json()["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/apis\""
    );
    // A token no authenticator accepts: 401, whatever the path.
    for path in ["/api/v1/pods", "/version"] {
        let r = as_token(&sim, "GET", path, "not-a-token").await;
        assert_eq!(r.code, 401);
        assert_eq!(
            r.json(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    }
    // The default kubeconfig's identity is an admin in system:masters.
    let me = whoami(&sim, baton_sim::ADMIN).await;
    assert_eq!(me["username"], baton_sim::ADMIN);
    assert_eq!(me["groups"], json!(["system:masters", "system:authenticated"]));
    // The audit counted both denials and the 401s.
    assert_eq!(sim.core.auth.audit.count_code("system:anonymous", 403), 2);
    assert_eq!(sim.core.auth.audit.count_code("", 401), 2);
}

#[tokio::test]
async fn token_request_bound_to_a_pod_carries_its_claims() {
    let sim = sim().await;
    let sa = create_sa(&sim, "default", "agent").await;
    let pod = create_pod(&sim, "default", "app-0", "agent").await;
    let sas: Api<ServiceAccount> = Api::namespaced(sim.client().await.unwrap(), "default");
    let req: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "app-0", "uid": pod.metadata.uid}}
    }))
    .unwrap();
    let tr = sas
        .create_token_request("agent", &PostParams::default(), &req)
        .await
        .expect("TokenRequest");
    let spec = tr.spec.clone();
    assert_eq!(
        spec.audiences,
        vec!["https://kubernetes.default.svc.cluster.local".to_string()]
    );
    assert_eq!(spec.expiration_seconds, Some(3600));
    let status = tr.status.expect("status");
    let token = status.token;
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let me = whoami(&sim, &token).await;
    assert_eq!(me["username"], "system:serviceaccount:default:agent");
    assert_eq!(me["uid"], json!(sa.metadata.uid));
    assert_eq!(
        me["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert_eq!(me["extra"]["authentication.kubernetes.io/pod-name"], json!(["app-0"]));
    assert_eq!(
        me["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([pod.metadata.uid])
    );
    assert_eq!(
        me["extra"]["authentication.kubernetes.io/node-name"],
        json!(["sim-node-1"])
    );
    assert!(me["extra"]["authentication.kubernetes.io/credential-id"][0]
        .as_str()
        .is_some_and(|c| c.starts_with("JTI=")));

    // A forced delete of the pod ends the token at once; a pod of the same name does not revive it.
    let pods: Api<Pod> = Api::namespaced(sim.client().await.unwrap(), "default");
    pods.delete("app-0", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    common::wait_for("the pod is gone", std::time::Duration::from_secs(30), || async {
        pods.get_opt("app-0").await.unwrap().is_none().then_some(())
    })
    .await;
    assert_eq!(as_token(&sim, "GET", "/version", &token).await.code, 401);
    create_pod(&sim, "default", "app-0", "agent").await;
    assert_eq!(as_token(&sim, "GET", "/version", &token).await.code, 401);
}

#[tokio::test]
async fn tokens_die_with_their_service_account() {
    let sim = sim().await;
    create_sa(&sim, "default", "worker").await;
    let token = sim.service_account_token("default", "worker", None).unwrap();
    assert_eq!(as_token(&sim, "GET", "/version", &token).await.code, 200);
    let sas: Api<ServiceAccount> = Api::namespaced(sim.client().await.unwrap(), "default");
    sas.delete("worker", &DeleteParams::default()).await.unwrap();
    assert_eq!(as_token(&sim, "GET", "/version", &token).await.code, 401);
    // A new ServiceAccount of the same name has another uid: the old token stays dead.
    create_sa(&sim, "default", "worker").await;
    assert_eq!(as_token(&sim, "GET", "/version", &token).await.code, 401);
    let review = tokenreview(&sim, &token, &[]).await;
    assert_eq!(review["authenticated"], json!(null));
    assert!(
        review["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not match claim")),
        "{review}"
    );
}

async fn tokenreview(sim: &Sim, token: &str, audiences: &[&str]) -> Value {
    let reviews: Api<TokenReview> = Api::all(sim.client().await.unwrap());
    let tr: TokenReview = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences}
    }))
    .unwrap();
    let out = reviews.create(&PostParams::default(), &tr).await.expect("TokenReview");
    serde_json::to_value(out.status).unwrap()
}

#[tokio::test]
async fn token_request_refusals_and_audiences() {
    let sim = sim().await;
    create_sa(&sim, "default", "a").await;
    create_sa(&sim, "default", "b").await;
    create_pod(&sim, "default", "runs-as-b", "b").await;
    let post = |body: Value| {
        let sim = &sim;
        async move {
            raw_with(
                sim,
                "POST",
                "/api/v1/namespaces/default/serviceaccounts/a/token",
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    let r = post(json!({"spec": {"expirationSeconds": 599}})).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    let r = post(json!({"spec": {"boundObjectRef": {"kind": "Pod", "name": "runs-as-b"}}})).await;
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "cannot bind token for serviceaccount \"a\" to pod running with serviceaccount \"b\""
    );
    let r = post(json!({"spec": {"boundObjectRef": {"kind": "Pod", "name": "missing"}}})).await;
    assert_eq!(
        (r.code, r.json()["message"].clone()),
        (404, json!("pods \"missing\" not found"))
    );
    let r = post(json!({"spec": {"boundObjectRef": {"kind": "ConfigMap", "name": "x"}}})).await;
    assert_eq!(r.code, 400);
    let r = raw_with(
        &sim,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/nobody/token",
        &[],
        b"{}",
    )
    .await;
    assert_eq!(r.code, 404);
    // A token for another audience is not accepted by the API server, but TokenReview with
    // that audience vouches for it (kube-rs's own create_token_request test does this).
    let r = post(json!({"spec": {"audiences": ["api"]}})).await;
    assert_eq!(r.code, 201);
    let token = r.json()["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(as_token(&sim, "GET", "/version", &token).await.code, 401);
    let review = tokenreview(&sim, &token, &["api"]).await;
    assert_eq!(review["authenticated"], true);
    assert_eq!(review["audiences"], json!(["api"]));
    assert_eq!(review["user"]["username"], "system:serviceaccount:default:a");
}

/// An admin's kubectl, after it made ServiceAccount `default:robot` and pod `robot-pod` that
/// runs as it.
async fn robot_pod(sim: &Sim) -> Kubectl {
    let admin = Kubectl::new(sim);
    admin.ok(&["create", "serviceaccount", "robot", "-n", "default"]).await;
    admin
        .ok(&[
            "run",
            "robot-pod",
            "--image=app:v1",
            "--overrides",
            r#"{"spec":{"serviceAccountName":"robot"}}"#,
        ])
        .await;
    admin
}

/// `kubectl auth whoami -o json` says: ServiceAccount `default:robot`, bound to `robot-pod`.
fn assert_robot_pod(whoami: &str) {
    let me: Value = serde_json::from_str(whoami).unwrap_or_else(|e| panic!("{e}: {whoami}"));
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:default:robot"
    );
    assert_eq!(
        me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["robot-pod"])
    );
}

#[tokio::test]
async fn kubectl_create_token_and_whoami() {
    let sim = sim().await;
    let admin = robot_pod(&sim).await;
    let token = admin
        .ok(&[
            "create",
            "token",
            "robot",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "robot-pod",
            "--duration",
            "20m",
        ])
        .await;
    let token = token.trim();
    let out = admin.ok(&["--token", token, "auth", "whoami", "-o", "json"]).await;
    assert_robot_pod(&out);
    // Through the kubeconfig the simulator writes for a ServiceAccount, too.
    let robot = Kubectl::as_service_account(&sim, "default", "robot", Some("robot-pod"));
    let table = robot.ok(&["auth", "whoami"]).await;
    assert!(table.contains("system:serviceaccount:default:robot"), "{table}");
    assert!(
        table.contains("Extra: authentication.kubernetes.io/pod-name"),
        "{table}"
    );
    let run = admin.run(&["--token", "forged", "get", "pods"]).await;
    let (code, err) = (run.code, run.stderr);
    assert_eq!(code, 1);
    assert!(
        err.contains("error: You must be logged in to the server (Unauthorized)"),
        "{err}"
    );
}

#[tokio::test]
async fn baton_sim_kubeconfig_writes_a_service_account_kubeconfig() {
    let sim = sim().await;
    let admin = robot_pod(&sim).await;
    let out = admin.home().join("robot.kubeconfig");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton-sim"))
        .arg("kubeconfig")
        .arg("--kubeconfig")
        .arg(sim.kubeconfig_path())
        .args([
            "-n",
            "default",
            "--service-account",
            "robot",
            "--pod",
            "robot-pod",
            "--out",
        ])
        .arg(&out)
        .output()
        .await
        .expect("baton-sim runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let robot = Kubectl::with_kubeconfig(out);
    assert_robot_pod(&robot.ok(&["auth", "whoami", "-o", "json"]).await);
    // A ServiceAccount that does not exist: the API server's message, exit 1.
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton-sim"))
        .arg("kubeconfig")
        .arg("--kubeconfig")
        .arg(sim.kubeconfig_path())
        .args(["--service-account", "nobody", "--out", "/dev/null"])
        .output()
        .await
        .expect("baton-sim runs");
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr).trim(),
        "error: serviceaccounts \"nobody\" not found"
    );
}
