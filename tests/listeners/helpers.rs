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
