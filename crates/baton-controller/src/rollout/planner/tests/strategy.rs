//! Surge and unavailability budgets and batch sizes.

use super::*;

#[test]
fn batch_counts_round_up_dedup_and_end_at_total() {
    let mut st = RolloutStrategy::default();
    assert_eq!(batch_counts(&st, 4), vec![4]);
    st.batches = vec![IntOrString::Int(1), pct("50%"), pct("100%")];
    assert_eq!(batch_counts(&st, 4), vec![1, 2, 4]);
    assert_eq!(batch_counts(&st, 3), vec![1, 2, 3]);
    assert_eq!(batch_counts(&st, 1), vec![1]);
    assert_eq!(batch_counts(&st, 0), Vec::<usize>::new());
    st.batches = vec![pct("10%"), IntOrString::Int(2)];
    assert_eq!(batch_counts(&st, 10), vec![1, 2, 10]);
    st.batches = vec![IntOrString::Int(0), IntOrString::Int(20)];
    assert_eq!(batch_counts(&st, 5), vec![5]);
}

#[test]
fn budgets_round_like_deployments() {
    let mut st = RolloutStrategy::default();
    assert_eq!(budgets(&st, 10), (1, 0));
    st.max_surge = pct("25%");
    st.max_unavailable = pct("25%");
    assert_eq!(budgets(&st, 10), (3, 2));
    st.max_surge = IntOrString::Int(0);
    st.max_unavailable = pct("10%");
    assert_eq!(budgets(&st, 5), (1, 0));
}
