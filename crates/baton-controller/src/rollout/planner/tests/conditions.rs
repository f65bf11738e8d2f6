//! Status: a quiet healthy rollout and condition transition times.

use super::*;

#[test]
fn healthy_rollout_is_quiet_and_status_is_stable() {
    let inp = healthy("v1", 3);
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(p.events.is_empty(), "{:?}", p.events);
    assert_eq!(Some(&p.status), inp.status.as_ref());
    let st = &p.status;
    assert_eq!(st.phase, Some(RolloutPhase::Healthy));
    assert_eq!(st.current_revision, Some(rev("v1", 1).name));
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.available_replicas,
            st.updated_replicas
        ),
        (3, 3, 3, 3)
    );
    assert_eq!(st.versions, [("v1".to_string(), 3)].into());
    assert_eq!(st.instances.len(), 3);
    assert_eq!(st.instances[1].name, "svc-1");
    assert_eq!(st.instances[1].revision, 1);
    assert_eq!(st.selector.as_deref(), Some("app=svc"));
    assert_eq!(condition(st, ConditionType::Available).status, "True");
    let prog = condition(st, ConditionType::Progressing);
    assert_eq!(
        (prog.status.as_str(), prog.reason.as_str()),
        ("True", "NewRevisionAvailable")
    );
    assert_eq!(p.requeue_after, None);
}

#[test]
fn condition_transition_time_only_moves_on_status_change() {
    let mut inp = healthy("v1", 2);
    let before = condition(inp.status.as_ref().unwrap(), ConditionType::Available).clone();
    inp.now = at(5000);
    let p = plan(&inp);
    assert_eq!(condition(&p.status, ConditionType::Available), &before);
    inp.pods.truncate(0);
    let p = plan(&inp);
    let c = condition(&p.status, ConditionType::Available);
    assert_eq!(c.status, "False");
    assert_eq!(c.last_transition_time, Time(at(5000)));
}

#[test]
fn notifications_ready_says_what_is_wrong_with_the_sinks() {
    let mut inp = healthy("v1", 2);
    let types = |p: &Plan| -> Vec<String> { p.status.conditions.iter().map(|c| c.type_.clone()).collect() };
    assert!(
        !types(&plan(&inp)).contains(&"NotificationsReady".to_string()),
        "no sinks, no condition"
    );

    inp.spec.notifications = vec![serde_json::from_value(serde_json::json!(
        {"sink": {"secretRef": {"name": "hook"}}, "events": ["Completed"]}
    ))
    .unwrap()];
    inp.sink_problems = Some(vec![]);
    let ready = plan(&inp);
    let c = condition(&ready.status, ConditionType::NotificationsReady);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "SinksReady"));
    assert_eq!(c.message, "1 notification sink ready");

    inp.status = Some(ready.status.clone());
    inp.now = at(1100);
    inp.sink_problems = Some(vec!["Secret default/hook does not exist".into()]);
    let broken = plan(&inp);
    let c = condition(&broken.status, ConditionType::NotificationsReady);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "SinkInvalid"));
    assert_eq!(c.message, "Secret default/hook does not exist");
    assert_eq!(c.last_transition_time.0, at(1100), "a transition");
    assert_eq!(
        broken.status.phase,
        Some(RolloutPhase::Healthy),
        "the rollout is not affected"
    );
    assert!(broken.actions.is_empty());
}
