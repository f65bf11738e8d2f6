//! ListenerSet controller: the pure [`assigner`] (placement), [`decide`] (one reconcile's
//! decisions) and [`notices`] (the notifications they make), and the reconciler shell
//! [`controller`].
pub mod assigner;
pub mod controller;
pub mod decide;
pub mod notices;

pub use crate::api::LISTENERS_MANAGER as MANAGER;
