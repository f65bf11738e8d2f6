//! Follow-up work after a committed write: CRDs register or unregister their resources,
//! namespaces take their contents with them.

use serde_json::Value;

use crate::resources::{Registry, ResKey, ResourceType};
use crate::store::{Write, Written};

use super::{Core, DeleteOpts};

impl Core {
    /// Follow-up work after a committed write: CRDs register or unregister their resources,
    /// namespaces take their contents with them.
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
        if rt.group.is_empty() && rt.plural == "namespaces" && w.obj.deleting {
            let ns = w.obj.name.clone();
            for (key, name) in self.store.all_in_namespace(&ns) {
                if let Some(t) = self.resource(&key.group, &key.plural) {
                    let _ = self.delete(
                        &t,
                        &ns,
                        &name,
                        &DeleteOpts {
                            grace_period_seconds: Some(0),
                            ..DeleteOpts::default()
                        },
                    );
                }
            }
            let _ = self.store.write(&rt.key(), "", &ns, false, |cur| match cur {
                Some(c) => {
                    let mut v = c.value();
                    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("finalizers");
                    }
                    Ok(Write::Delete(v))
                }
                None => Ok(Write::Keep),
            });
        }
    }
}
