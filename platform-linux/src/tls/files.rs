//! Certificates and keys from PEM files (through rustls's
//! `pki_types::pem`, the successor of the deprecated `rustls-pemfile`).
//!
//! Each function reads its file once and says what is wrong with it,
//! naming the file: missing or unreadable, no item of the kind expected,
//! a malformed PEM section, a CA certificate rustls cannot use.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

/// A certificate or key file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl TlsFileError {
    /// `problem` with file `path`.
    pub fn new(path: &Path, problem: impl Into<String>) -> TlsFileError {
        TlsFileError {
            path: path.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for TlsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for TlsFileError {}

/// What `error` says about a PEM file holding `what`.
fn pem_problem(error: &pem::Error, what: &str) -> String {
    match error {
        pem::Error::NoItemsFound => format!("no {what} in it (PEM expected)"),
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        other => format!("not a valid PEM file: {other:?}"),
    }
}

/// Every certificate of the PEM file `path`, in order (a chain: the
/// end-entity certificate first). At least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let what = "certificate";
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsFileError::new(path, pem_problem(&e, what)))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsFileError::new(path, pem_problem(&e, what)))?;
    if certs.is_empty() {
        return Err(TlsFileError::new(
            path,
            pem_problem(&pem::Error::NoItemsFound, what),
        ));
    }
    Ok(certs)
}

/// The first private key of the PEM file `path` (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsFileError::new(path, pem_problem(&e, "private key")))
}

/// The CA certificates of the PEM file `path`, as trust anchors. Every
/// certificate in it must be usable as one.
pub fn read_roots(path: &Path) -> Result<RootCertStore, TlsFileError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in read_certificates(path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            TlsFileError::new(
                path,
                format!("certificate {} is not usable as a CA: {e}", i + 1),
            )
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_files_are_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = read_certificates(&missing).unwrap_err();
        assert_eq!(e.path, missing);
        assert!(e.problem.starts_with("cannot read it"), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let e = read_certificates(&empty).unwrap_err();
        assert!(e.problem.contains("no certificate"), "{e}");
        let e = read_private_key(&empty).unwrap_err();
        assert!(e.problem.contains("no private key"), "{e}");
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = read_certificates(&broken).unwrap_err();
        assert!(e.problem.contains("not a valid PEM file"), "{e}");
        // A certificate that is no certificate at all cannot be a CA.
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = read_roots(&junk).unwrap_err();
        assert!(e.problem.contains("not usable as a CA"), "{e}");
    }
}
