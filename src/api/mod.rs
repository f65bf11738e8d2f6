//! Custom resource types of group `baton.dev`, version `v1alpha1`.
pub mod listenerset;
pub mod pod;
pub mod rollout;
pub mod schema_bounds;

/// Every CRD baton serves, as the multi-document YAML `baton crds` prints and `crds/` holds.
pub fn crds_yaml() -> Result<String, String> {
    let mut out = String::new();
    for crd in [rollout::crd(), listenerset::crd()] {
        let y = serde_saphyr::to_string(&crd).map_err(|e| format!("serialising CRD: {e}"))?;
        out.push_str("---\n");
        out.push_str(&y);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
