//! Follow-up work after a committed write: CRDs register or unregister their resources, and
//! the in-process controllers' hooks run.

use std::sync::Arc;

use crate::error::ApiError;
use crate::resources::{Registry, ResKey, ResourceType};
use crate::store::{Stored, Write, Written};

use super::Core;

impl Core {
    /// Follow-up work after a committed write: CRDs register or unregister their resources,
    /// then every [`super::AfterWrite`] hook runs. A CRD being deleted is served until it is
    /// gone (its custom resources are deleted meanwhile, see [`Core::refuse_create`]).
    pub(super) fn after_write(&self, rt: &ResourceType, w: &Written, dry_run: bool) {
        if dry_run {
            return;
        }
        let Some(kind) = w.kind else { return };
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            let crd = w.obj.value();
            if let Ok(types) = Registry::types_from_crd(&crd) {
                let group = types.first().map(|t| t.group.clone());
                let plural = types.first().map(|t| t.plural.clone());
                let mut reg = self.registry_mut();
                if let (Some(g), Some(p)) = (&group, &plural) {
                    reg.remove(g, p);
                }
                if kind != crate::store::EventKind::Deleted {
                    for t in types {
                        reg.insert(t);
                    }
                }
                drop(reg);
                if kind == crate::store::EventKind::Deleted {
                    if let (Some(g), Some(p)) = (group, plural) {
                        self.store.drop_resource(&ResKey { group: g, plural: p });
                    }
                }
            }
        }
        let hooks = self.hooks.read().unwrap_or_else(|p| p.into_inner()).clone();
        for h in hooks {
            h.after_write(self, rt, w);
        }
    }

    /// A write of the simulator's own controllers straight to storage (no admission, as
    /// kube-apiserver's own loopback writes of status and finalizers), followed by the work any
    /// committed write is followed by.
    pub fn write_through<F>(&self, rt: &ResourceType, ns: &str, name: &str, f: F) -> Result<Written, ApiError>
    where
        F: FnOnce(Option<&Arc<Stored>>) -> Result<Write, ApiError>,
    {
        let w = self.store.write(&rt.key(), ns, name, false, f)?;
        self.after_write(rt, &w, false);
        Ok(w)
    }
}
