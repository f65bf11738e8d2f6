//! ListenerSet controller: the pure [`assigner`] (placement), [`decide`] (one reconcile's
//! decisions) and [`notify`] (the notifications they make), and the reconciler shell
//! [`controller`].
pub mod assigner;
pub mod controller;
pub mod decide;
pub mod notify;

pub use crate::api::LISTENERS_MANAGER as MANAGER;
