//! Certificates for the TLS tests, made by the tests themselves with
//! rcgen (`ring`): a CA, certificates it issues (for servers and
//! clients, current or expired), written as PEM files into a directory
//! the test owns. Nothing comes from elsewhere.

use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate authority: its certificate (written as `<name>.pem`) and
/// key.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
    /// Its certificate, PEM.
    pub pem: PathBuf,
}

/// Whether an issued certificate is valid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday-ish (2020) to far ahead (2100).
    Current,
    /// Expired years ago (2000 to 2001).
    Expired,
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A server (TLS server authentication).
    Server,
    /// A client (TLS client authentication).
    Client,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate chain (the certificate itself).
    pub cert: PathBuf,
    /// Its private key (PKCS#8).
    pub key: PathBuf,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "nfy tests");
    dn.push(DnType::CommonName, cn);
    dn
}

impl Ca {
    /// A new CA named `cn`, its certificate written to `dir/<file>.pem`.
    pub fn new(dir: &Path, file: &str, cn: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = name(cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2100, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let pem = dir.join(format!("{file}.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        Ca { cert, key, pem }
    }

    /// Issues a certificate for `cn` with subject alternative names `sans`
    /// (IP addresses or DNS names), written to `dir/<file>.pem` and
    /// `dir/<file>.key`.
    pub fn issue(
        &self,
        dir: &Path,
        file: &str,
        cn: &str,
        sans: &[&str],
        role: Role,
        validity: Validity,
    ) -> Issued {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name = name(cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match role {
            Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (date_time_ymd(2020, 1, 1), date_time_ymd(2100, 1, 1)),
            Validity::Expired => (date_time_ymd(2000, 1, 1), date_time_ymd(2001, 1, 1)),
        };
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let issued = Issued {
            cert: dir.join(format!("{file}.pem")),
            key: dir.join(format!("{file}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

/// The usual set: a CA, a server certificate for `server_sans` signed by
/// it, a client certificate `CN=<client_cn>` signed by it, all current.
pub struct Pki {
    /// The CA (servers and clients trust it).
    pub ca: Ca,
    /// The server's certificate and key.
    pub server: Issued,
    /// A client's certificate and key.
    pub client: Issued,
}

impl Pki {
    /// Makes the set in `dir`.
    pub fn new(dir: &Path, server_sans: &[&str], client_cn: &str) -> Pki {
        let ca = Ca::new(dir, "ca", "nfy test CA");
        let server = ca.issue(
            dir,
            "server",
            "notifysvc",
            server_sans,
            Role::Server,
            Validity::Current,
        );
        let client = ca.issue(
            dir,
            "client",
            client_cn,
            &[],
            Role::Client,
            Validity::Current,
        );
        Pki { ca, server, client }
    }
}

/// A rustls client configuration (ring provider) that trusts the CA in
/// `ca_pem` and, with `client`, presents that certificate.
pub fn client_config(
    ca_pem: &Path,
    client: Option<&Issued>,
) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)] // ring, on purpose (see nfy_linux::tls::provider)
    let provider = rustls::crypto::ring::default_provider();
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(&c.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    std::sync::Arc::new(config)
}
