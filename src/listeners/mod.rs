//! ListenerSet controller.
pub mod assigner;
