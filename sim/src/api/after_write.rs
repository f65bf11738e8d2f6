//! Follow-up work after a committed write: CRDs register or unregister their resources, and
//! the in-process controllers' hooks run.

use crate::resources::{Registry, ResKey, ResourceType};
use crate::store::Written;

use super::Core;

impl Core {
    /// Follow-up work after a committed write: CRDs register or unregister their resources,
    /// then every [`super::AfterWrite`] hook runs.
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
                if kind != crate::store::EventKind::Deleted && !w.obj.deleting {
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
}
