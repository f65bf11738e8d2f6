//! Custom resource types of group `baton.dev`, version `v1alpha1`.
pub mod listenerset;
pub mod rollout;
