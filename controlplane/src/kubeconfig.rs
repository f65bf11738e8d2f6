//! Kubeconfigs with client certificates (kube-apiserver's x509 authenticator: CN is the user,
//! O the group), and kube-rs clients made from the same credentials.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use serde_json::json;

use crate::pki::Pki;
use crate::Error;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The kubeconfig document for `user` (a fresh client certificate) against `server`.
fn document(server: &str, pki: &Pki, user: &str, group: Option<&str>, ns: &str) -> Result<serde_json::Value, Error> {
    let cert = pki.client(user, group)?;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "baton-cluster", "cluster": {
            "server": server,
            "certificate-authority-data": b64(&pki.ca_pem),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(&cert.cert_pem),
            "client-key-data": b64(&cert.key_pem),
        }}],
        "contexts": [{"name": "baton-cluster", "context": {
            "cluster": "baton-cluster", "user": user, "namespace": ns,
        }}],
        "current-context": "baton-cluster",
    }))
}

/// Write a kubeconfig for `user` (in `group`) to `path`, atomically (a rename).
pub fn write(path: &Path, server: &str, pki: &Pki, user: &str, group: Option<&str>, ns: &str) -> Result<(), Error> {
    let doc = document(server, pki, user, group, ns)?;
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Kubeconfig(e.to_string()))?;
    replace(path, &text)
}

/// Replace the file at `path` with `text` by a rename, so a reader sees the old file or the new
/// one. The temporary file is this call's own: two threads writing one path each rename theirs
/// (one named by the process id alone was renamed by the first, and the second's rename failed).
fn replace(path: &Path, text: &str) -> Result<(), Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A client for `user` (in `group`).
pub async fn client(server: &str, pki: &Pki, user: &str, group: Option<&str>) -> Result<kube::Client, Error> {
    let doc = document(server, pki, user, group, "default")?;
    let kc: kube::config::Kubeconfig = serde_json::from_value(doc).map_err(|e| Error::Kubeconfig(e.to_string()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig(e.to_string()))?;
    Ok(kube::Client::try_from(cfg)?)
}

/// The server URL a kubeconfig written by [`write`] names.
pub fn server_of(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Kubeconfig(e.to_string()))?;
    doc.pointer("/clusters/0/cluster/server")
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Kubeconfig(format!("{}: no server", path.display())))
}

#[cfg(test)]
mod tests {
    use super::replace;

    #[test]
    fn threads_writing_one_kubeconfig_all_succeed() {
        let dir = std::env::temp_dir().join(format!("baton-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("admin.kubeconfig");
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for j in 0..200 {
                        replace(&path, &format!("{i}-{j}")).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.ends_with("-199"), "{last}");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
