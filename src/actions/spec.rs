//! The actions that change a Rollout's spec — pause/resume, pin/unpin, undo, set image — each
//! checked against the Rollout (and its history) before anything is written, each writing its
//! cause (the CLI's command line, or what the dashboard did) as `kubernetes.io/change-cause` in
//! the same conditional write.
use crate::api::ROLLOUT_RESOURCE;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodSpec;
use kube::api::{Api, Patch};
use kube::ResourceExt;
use serde_json::{json, Value};

use super::revision_log::{last_good, outcome, revisions, Outcome, Skipped};
use super::{Actor, Done};
use crate::api::listenerset::is_label_value;
use crate::api::rollout::{annotations, labels, Pin, Rollout};
use crate::rollout::planner::{parse_slot, slot_name};
use crate::session::{CliError, Session};

mod image;

/// A spec change: JSON patch operations and annotations to set besides the change cause.
struct Change {
    ops: Vec<Value>,
    extra: Vec<(&'static str, String)>,
}

impl Change {
    fn ops(ops: Vec<Value>) -> Self {
        Change { ops, extra: Vec::new() }
    }
}

/// The operation that sets annotation `key` to `value` on an object with `annotations`.
fn annotation_op(annotations: Option<&BTreeMap<String, String>>, key: &str, value: &str) -> Value {
    match annotations {
        Some(_) => json!({
            "op": "add",
            "path": format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1")),
            "value": value,
        }),
        None => json!({"op": "add", "path": "/metadata/annotations", "value": {key: value}}),
    }
}

/// Times a change is built again when the spec changed under it.
const ATTEMPTS: usize = 5;

/// Read Rollout `name`, build the change from it (None: nothing to write), and write it as one
/// JSON patch conditional on the spec it was built from (`metadata.generation`: the status
/// writes of a rollout in progress do not count), with the change cause. When someone changed
/// the spec in between, read and build again. Returns the Rollout as read, if a change was
/// written.
async fn change_spec(
    s: &Session,
    api: &Api<Rollout>,
    name: &str,
    who: Actor<'_>,
    build: impl Fn(&Rollout) -> Result<Option<Change>, CliError>,
) -> Result<Option<Rollout>, CliError> {
    for _ in 0..ATTEMPTS {
        let r = api.get(name).await.map_err(|e| s.error(&e))?;
        let Some(change) = build(&r)? else { return Ok(None) };
        let mut ops = vec![json!({"op": "test", "path": "/metadata/generation", "value": r.metadata.generation})];
        ops.extend(change.ops);
        let mut annotations = r.metadata.annotations.clone();
        for (k, v) in std::iter::once((annotations::CHANGE_CAUSE, who.cause.to_string())).chain(change.extra) {
            ops.push(annotation_op(annotations.as_ref(), k, &v));
            annotations.get_or_insert_with(BTreeMap::new).insert(k.to_string(), v);
        }
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).map_err(|e| CliError::msg(e.to_string()))?;
        match api.patch(name, &who.patch_params(), &Patch::Json::<()>(patch)).await {
            Ok(_) => return Ok(Some(r)),
            // A failed `test` is a 422 like an invalid value: try again only if the spec changed.
            Err(e @ kube::Error::Api(_)) => {
                let now = api.get(name).await.map_err(|e| s.error(&e))?;
                if now.metadata.generation == r.metadata.generation {
                    return Err(s.error(&e));
                }
            }
            Err(e) => return Err(s.error(&e)),
        }
    }
    Err(CliError::msg(format!("rollout {name} kept changing; try again")))
}

/// Pause (`spec.paused: true`) or resume the rollout.
pub async fn set_paused(s: &Session, api: &Api<Rollout>, name: &str, paused: bool, who: Actor<'_>) -> Done {
    change_spec(s, api, name, who, |_| {
        Ok(Some(Change::ops(vec![
            json!({"op": "add", "path": "/spec/paused", "value": paused}),
        ])))
    })
    .await?;
    Ok(format!(
        "{ROLLOUT_RESOURCE}/{name} {}",
        if paused { "paused" } else { "resumed" }
    ))
}

/// What is wrong with pinning `instances` of `r` to `version` (given the versions its
/// revisions hold), if anything.
pub fn pin_problems(r: &Rollout, instances: &[String], version: Option<&str>, known: &[String]) -> Vec<String> {
    let name = r.name_any();
    let replicas = r.spec.replicas.max(0);
    let mut problems = Vec::new();
    let range = match replicas {
        0 => "it has no instances (spec.replicas: 0)".to_string(),
        1 => format!("its only instance is {}", slot_name(&name, 0)),
        n => format!(
            "its instances are {} to {} (spec.replicas: {n})",
            slot_name(&name, 0),
            slot_name(&name, n - 1)
        ),
    };
    let unknown: Vec<&str> = instances
        .iter()
        .filter(|i| parse_slot(&name, i).is_none_or(|slot| slot >= replicas))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "rollout {name} has no instance {}: {range}",
            unknown.join(", ")
        ));
    }
    match version {
        Some(v) if v != r.spec.version && !known.iter().any(|k| k == v) => {
            let mut versions: Vec<&str> = known.iter().map(String::as_str).collect();
            versions.push(&r.spec.version);
            versions.sort();
            versions.dedup();
            problems.push(format!(
                "version {v} is not in the history of rollout {name} (versions: {}); see `baton rollout history {name}`",
                versions.join(", ")
            ));
        }
        Some(_) => {}
        None => {
            let pinned: Vec<&str> = r
                .spec
                .pins
                .iter()
                .flat_map(|p| p.instances.iter().map(String::as_str))
                .collect();
            let not_pinned: Vec<&str> = instances
                .iter()
                .map(String::as_str)
                .filter(|i| !pinned.contains(i) && !unknown.contains(i))
                .collect();
            if !not_pinned.is_empty() {
                problems.push(format!(
                    "{} {} not pinned (pinned: {})",
                    not_pinned.join(", "),
                    if not_pinned.len() == 1 { "is" } else { "are" },
                    if pinned.is_empty() {
                        "none".to_string()
                    } else {
                        pinned.join(", ")
                    }
                ));
            }
        }
    }
    problems
}

/// `pins` with `instances` pinned to `version`, or unpinned (all, when none are named).
fn pins_after(pins: &[Pin], instances: &[String], version: Option<&str>) -> Vec<Pin> {
    let mut pins = pins.to_vec();
    for p in pins.iter_mut() {
        if instances.is_empty() && version.is_none() {
            p.instances.clear();
        } else {
            p.instances.retain(|i| !instances.contains(i));
        }
    }
    pins.retain(|p| !p.instances.is_empty());
    if let Some(v) = version {
        pins.push(Pin {
            instances: instances.to_vec(),
            version: v.to_string(),
        });
    }
    pins
}

/// Pin `instances` to `version`, or unpin them (all, when none are named).
pub async fn pin(
    s: &Session,
    api: &Api<Rollout>,
    name: &str,
    instances: &[String],
    version: Option<&str>,
    who: Actor<'_>,
) -> Done {
    let r = api.get(name).await.map_err(|e| s.error(&e))?;
    let known: Vec<String> = revisions(&s.client, &s.namespace, &r)
        .await
        .map_err(|e| s.error(&e))?
        .iter()
        .filter_map(|rev| rev.labels().get(labels::VERSION).cloned())
        .collect();
    let written = change_spec(s, api, name, who, |r| {
        let problems = pin_problems(r, instances, version, &known);
        if !problems.is_empty() {
            return Err(CliError::msg(problems.join("; ")));
        }
        let after = pins_after(&r.spec.pins, instances, version);
        if same_pins(&after, &r.spec.pins) {
            return Ok(None);
        }
        let pins = serde_json::to_value(after).map_err(|e| CliError::msg(e.to_string()))?;
        Ok(Some(Change::ops(vec![
            json!({"op": "add", "path": "/spec/pins", "value": pins}),
        ])))
    })
    .await?;
    // As kubectl says of a patch that changes nothing: nothing was written.
    let unchanged = if written.is_none() { " (no change)" } else { "" };
    Ok(match version {
        Some(v) => format!(
            "{ROLLOUT_RESOURCE}/{name} pinned {} to {v}{unchanged}",
            instances.join(",")
        ),
        None if instances.is_empty() => format!("{ROLLOUT_RESOURCE}/{name} unpinned all instances{unchanged}"),
        None => format!("{ROLLOUT_RESOURCE}/{name} unpinned {}{unchanged}", instances.join(",")),
    })
}

/// Whether two lists of pins keep the same instances on the same versions.
fn same_pins(a: &[Pin], b: &[Pin]) -> bool {
    let of = |pins: &[Pin]| -> BTreeMap<String, String> {
        pins.iter()
            .flat_map(|p| p.instances.iter().map(|i| (i.clone(), p.version.clone())))
            .collect()
    };
    of(a) == of(b)
}

/// Copy revision `to` back into spec (default: the newest earlier revision whose last rollout
/// succeeded); straight there unless `batches`. A revision whose last rollout failed is
/// refused unless `force`.
pub async fn undo(
    s: &Session,
    api: &Api<Rollout>,
    name: &str,
    to: Option<i64>,
    batches: bool,
    force: bool,
    who: Actor<'_>,
) -> Done {
    let rollout = api.get(name).await.map_err(|e| s.error(&e))?;
    let revs = revisions(&s.client, &s.namespace, &rollout)
        .await
        .map_err(|e| s.error(&e))?;
    let (target, skipped) = undo_target(&rollout, &revs, to, force)?;
    let data = target.data.as_ref().map(|d| d.0.clone()).unwrap_or_default();
    let (Some(template), Some(version)) = (data.get("template"), data.get("version")) else {
        return Err(CliError::msg(format!(
            "revision {} has no template/version data",
            target.revision
        )));
    };
    let target_name = target.name_any();
    change_spec(s, api, name, who, |r| {
        // The template is replaced whole (a merge patch would merge maps).
        let ops = vec![
            json!({"op": "replace", "path": "/spec/template", "value": template}),
            json!({"op": "replace", "path": "/spec/version", "value": version}),
        ];
        // Straight to the revision: a full promotion in the same write, unless it is the
        // current (last healthy) revision, which every instance returns to at once anyway.
        let current = r.status.as_ref().and_then(|st| st.current_revision.as_deref());
        let mut extra = Vec::new();
        if !batches && current != Some(target_name.as_str()) {
            extra.push((annotations::PROMOTE_FULL, super::request_time()));
        }
        Ok(Some(Change { ops, extra }))
    })
    .await?;
    let mut why = vec![version.as_str().unwrap_or("").to_string()];
    why.extend(skipped.iter().map(|(n, o)| format!("revision {n} {o}, skipped")));
    Ok(format!(
        "{ROLLOUT_RESOURCE}/{name} rolled back to revision {} ({})",
        target.revision,
        why.join("; ")
    ))
}

/// The revision `undo` copies back (see [`undo`]), with the newer ones a plain `undo` passed
/// over and why.
fn undo_target<'a>(
    rollout: &Rollout,
    revs: &'a [ControllerRevision],
    to: Option<i64>,
    force: bool,
) -> Result<(&'a ControllerRevision, Skipped), CliError> {
    let name = rollout.name_any();
    let Some(n) = to else {
        return last_good(rollout, revs).map_err(|skipped| {
            if skipped.is_empty() {
                return CliError::msg(format!("rollout {name} has no earlier revision to return to"));
            }
            let why: Vec<String> = skipped.iter().map(|(n, o)| format!("revision {n} {o}")).collect();
            CliError::msg(format!(
                "rollout {name} has no earlier revision that rolled out successfully ({}); `baton rollout undo {name} --to-revision N --force` returns to one anyway",
                why.join("; ")
            ))
        });
    };
    let Some(target) = revs.iter().find(|r| r.revision == n) else {
        return Err(CliError::msg(format!(
            "revision {n} not found; see `baton rollout history {name}`"
        )));
    };
    match outcome(rollout, &target.name_any()) {
        Outcome::Failed(why) if !force => Err(CliError::msg(format!(
            "revision {n} ({}) failed when it last rolled out: {why}; `baton rollout undo {name} --to-revision {n} --force` returns to it anyway",
            target.labels().get(labels::VERSION).map(String::as_str).unwrap_or("no version")
        ))),
        _ => Ok((target, Vec::new())),
    }
}

/// The tag of an image reference (`repo/app:v2` → `v2`), if it has one and no digest.
pub fn image_tag(image: &str) -> Option<&str> {
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next()?;
    last.split_once(':').map(|(_, t)| t).filter(|t| !t.is_empty())
}

/// The version `set image` rolls out: `--version`, else the one tag all the images share.
pub fn image_version(images: &[(String, String)], version: Option<&str>) -> Result<String, String> {
    if let Some(v) = version {
        return Ok(v.to_string());
    }
    let mut tags = Vec::new();
    for (_, image) in images {
        match image_tag(image) {
            Some(t) => tags.push(t),
            None => {
                return Err(format!(
                    "--version is required: image {image} has no tag to take it from"
                ))
            }
        }
    }
    tags.sort_unstable();
    tags.dedup();
    match tags.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(format!(
            "--version is required: the images' tags ({}) do not name one version",
            tags.join(", ")
        )),
    }
}

/// The images and version of `set image NAME CONTAINER=IMAGE … [--version V]`, checked before
/// anything is read or written: each image a reference a runtime can pull, the version (given,
/// or the images' tag) a label value, as it is stamped on the pods. Usage errors otherwise.
pub fn image_args(pairs: &[String], version: Option<&str>) -> Result<(Vec<(String, String)>, String), CliError> {
    let mut images = Vec::new();
    for p in pairs {
        let Some((container, image)) = p.split_once('=').filter(|(c, _)| !c.is_empty()) else {
            return Err(CliError::usage(format!("{p:?} is not CONTAINER=IMAGE")));
        };
        image::validate(image)
            .map_err(|e| CliError::usage(format!("invalid image {image:?} for container {container:?}: {e}")))?;
        images.push((container.to_string(), image.to_string()));
    }
    let v = image_version(&images, version).map_err(CliError::usage)?;
    if !is_label_value(&v) {
        let from = if version.is_some() { "" } else { " (the images' tag)" };
        return Err(CliError::usage(format!(
            "version {v:?}{from} is not a valid label value for {}: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit; give one with --version",
            labels::VERSION
        )));
    }
    Ok((images, v))
}

/// Where `images` go in `pod`: (field, index) → image, in kubectl's order (init containers,
/// then containers); `*` names every one of both. A later pair wins over an earlier one.
fn image_targets(
    pod: &PodSpec,
    images: &[(String, String)],
) -> Result<BTreeMap<(&'static str, usize), String>, CliError> {
    let init = pod.init_containers.as_deref().unwrap_or_default();
    let mut targets = BTreeMap::new();
    for (container, image) in images {
        let mut found = false;
        for (field, list) in [("initContainers", init), ("containers", pod.containers.as_slice())] {
            for (i, c) in list.iter().enumerate() {
                if container == "*" || &c.name == container {
                    targets.insert((field, i), image.clone());
                    found = true;
                }
            }
        }
        if !found {
            return Err(CliError::msg(format!("unable to find container named {container:?}")));
        }
    }
    Ok(targets)
}

/// `set image NAME CONTAINER=IMAGE … [--version V]` (`*=IMAGE`: every container and init
/// container, as kubectl's).
pub async fn set_image(
    s: &Session,
    api: &Api<Rollout>,
    name: &str,
    pairs: &[String],
    version: Option<&str>,
    who: Actor<'_>,
) -> Done {
    let (images, version) = image_args(pairs, version)?;
    let written = change_spec(s, api, name, who, |r| {
        let pod = r.spec.template.spec.clone().unwrap_or_default();
        let init = pod.init_containers.as_deref().unwrap_or_default();
        let mut ops = Vec::new();
        let mut changed = r.spec.version != version;
        for ((field, i), image) in image_targets(&pod, &images)? {
            let list = if field == "containers" {
                pod.containers.as_slice()
            } else {
                init
            };
            changed |= list.get(i).and_then(|c| c.image.as_deref()) != Some(image.as_str());
            ops.push(json!({"op": "add", "path": format!("/spec/template/spec/{field}/{i}/image"), "value": image}));
        }
        if !changed {
            return Ok(None);
        }
        ops.push(json!({"op": "replace", "path": "/spec/version", "value": version}));
        Ok(Some(Change::ops(ops)))
    })
    .await?;
    if written.is_none() {
        return Ok(format!("{ROLLOUT_RESOURCE}/{name} unchanged"));
    }
    Ok(format!("{ROLLOUT_RESOURCE}/{name} image updated (version {version})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_images_tag() {
        let one = |i: &str| vec![("app".to_string(), i.to_string())];
        assert_eq!(
            image_version(&one("registry:5000/team/app:v2.1"), None).unwrap(),
            "v2.1"
        );
        assert_eq!(image_version(&one("app"), Some("v3")).unwrap(), "v3");
        assert!(image_version(&one("registry:5000/app"), None)
            .unwrap_err()
            .contains("has no tag"));
        assert!(image_version(&one("app@sha256:abc"), None).is_err());
        let two = vec![
            ("a".to_string(), "a:v1".to_string()),
            ("b".to_string(), "b:v2".to_string()),
        ];
        assert!(image_version(&two, None).unwrap_err().contains("(v1, v2)"));
    }
}
