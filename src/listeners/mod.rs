//! ListenerSet controller: the pure [`assigner`] (placement) and [`decide`] (one reconcile's
//! decisions), and the reconciler shell [`controller`].
pub mod assigner;
pub mod controller;
pub mod decide;

pub use crate::api::LISTENERS_MANAGER as MANAGER;
