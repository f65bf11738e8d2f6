//! The control plane's certificates, made here with `rcgen`: a CA, kube-apiserver's serving
//! certificate, a client certificate per identity (CN = user, O = group, as kube-apiserver's
//! x509 authenticator reads them) and the ServiceAccount token signing key. Everything is written
//! under `<dir>/pki`; [`Pki::load`] reopens it so a test process can mint client certificates
//! for a control plane another process started.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use crate::Error;

const CA_NAME: &str = "baton-cluster-ca";

/// The CA (its key kept to sign client certificates) and the paths of every file written.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    ca: Issuer<'static, KeyPair>,
}

/// A client certificate and its key, PEM.
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
}

fn ca_params() -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn tls(e: rcgen::Error) -> Error {
    Error::Pki(e.to_string())
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

impl Pki {
    /// A fresh CA, serving certificate and ServiceAccount key in `<dir>/pki`.
    pub fn create(dir: &Path) -> Result<Pki, Error> {
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki).map_err(|e| Error::io(&pki, e))?;
        let ca_key = KeyPair::generate().map_err(tls)?;
        let ca_cert = ca_params()?.self_signed(&ca_key).map_err(tls)?;
        write(&pki.join("ca.crt"), &ca_cert.pem())?;
        write(&pki.join("ca.key"), &ca_key.serialize_pem())?;
        let sa = KeyPair::generate().map_err(tls)?;
        write(&pki.join("sa.key"), &sa.serialize_pem())?;
        write(&pki.join("sa.pub"), &sa.public_key_pem())?;
        let me = Pki {
            dir: pki.clone(),
            ca_pem: ca_cert.pem(),
            ca: Issuer::new(ca_params()?, ca_key),
        };
        me.serving("apiserver", "kube-apiserver")?;
        Ok(me)
    }

    /// The CA of a control plane started earlier in `dir`.
    pub fn load(dir: &Path) -> Result<Pki, Error> {
        let pki = dir.join("pki");
        let read = |name: &str| {
            let p = pki.join(name);
            std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))
        };
        let key = KeyPair::from_pem(&read("ca.key")?).map_err(tls)?;
        Ok(Pki {
            ca_pem: read("ca.crt")?,
            ca: Issuer::new(ca_params()?, key),
            dir: pki,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `<name>.crt` and `<name>.key`: a serving certificate for loopback and the in-cluster names
    /// of the `kubernetes` Service.
    fn serving(&self, name: &str, cn: &str) -> Result<(), Error> {
        let names: Vec<String> = [
            "localhost",
            "127.0.0.1",
            "10.96.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut p = CertificateParams::new(names).map_err(tls)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(tls)?;
        let cert = p.signed_by(&key, &self.ca).map_err(tls)?;
        write(&self.path(&format!("{name}.crt")), &cert.pem())?;
        write(&self.path(&format!("{name}.key")), &key.serialize_pem())
    }

    /// A client certificate for user `user`, in `group` when given (rcgen writes one
    /// organization per name, so one group).
    pub fn client(&self, user: &str, group: Option<&str>) -> Result<ClientCert, Error> {
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        p.distinguished_name.push(DnType::CommonName, user);
        if let Some(g) = group {
            p.distinguished_name.push(DnType::OrganizationName, g);
        }
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(tls)?;
        let cert = p.signed_by(&key, &self.ca).map_err(tls)?;
        Ok(ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
