//! TLS for the simulator's port. Go clients (kubectl, Helm) send credentials only over TLS
//! (client-go's `clientcmd` drops tokens for `http://` servers), so the kubeconfigs the
//! simulator writes point at `https://` with the simulator's own CA; the same port keeps
//! answering plain HTTP (a connection whose first byte is not a TLS handshake), which kube-rs
//! clients built by [`crate::client_for`] and raw-HTTP tests use.
//!
//! A CA and a server certificate (for `localhost`, `127.0.0.1`, `::1`, the bound address and
//! the in-cluster names of the `kubernetes` Service) are made at start with `rcgen`; nothing
//! is written to disk but the CA in the kubeconfigs.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// The first byte of a TLS connection (a handshake record).
pub const HANDSHAKE: u8 = 0x16;

/// The simulator's CA (PEM, for kubeconfigs) and the acceptor serving its certificate.
#[derive(Clone)]
pub struct Tls {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

impl Tls {
    /// A fresh CA and a server certificate for `addr`.
    pub fn generate(addr: SocketAddr) -> Result<Tls, String> {
        let e = |e: rcgen::Error| e.to_string();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "baton-sim-ca");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(e)?).map_err(e)?;
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".into(),
            "::1".into(),
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
            "kubernetes.default.svc.cluster.local".into(),
        ];
        let ip = addr.ip().to_string();
        if !names.contains(&ip) && !addr.ip().is_unspecified() {
            names.push(ip);
        }
        let mut params = CertificateParams::new(names).map_err(e)?;
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        let key = KeyPair::generate().map_err(e)?;
        let cert = params.signed_by(&key, &ca).map_err(e)?;
        let chain = vec![cert.der().clone(), ca.der().clone()];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| e.to_string())?;
        // HTTP/1.1 only, as the server speaks (Go clients fall back from h2 through ALPN).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            ca_pem: ca.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}
