//! Small accessors for a ListenerSet's status, shared by the scenarios.

use baton::api::listenerset::ListenerSet;

pub(crate) fn set_status(set: &ListenerSet) -> (i32, i32, i32, i32) {
    let st = set.status.clone().unwrap_or_default();
    (st.running, st.pending, st.orphaned, st.suspended)
}

pub(crate) fn condition(set: &ListenerSet, t: &str) -> Option<(String, String, String)> {
    let c = set.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// A Ready pod `pod` without an agent and a set `lonely` of 2 listeners selecting only it, with a
/// 60 s lease: what it is given stays starting (nothing acknowledges, and the lease is long).
pub(crate) async fn lonely_set(w: &crate::listener_world::World, pod: &str) {
    use k8s_openapi::api::core::v1::Pod;
    let lonely: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod, "namespace": crate::listener_world::NS, "labels": {"app": "lonely"}},
        "spec": {"containers": [{"name": "app", "image": "app:v1"}]}}))
    .expect("a pod");
    w.pods()
        .create(&kube::api::PostParams::default(), &lonely)
        .await
        .expect("the lonely pod");
    w.wait_ready(pod).await;
    w.create_set("lonely", "lonely", crate::listener_world::listeners(2), 60)
        .await;
}
