//! TLS for remote peers (issue 16, **Beyond**): what the server
//! (`notifysvc --tls-port`, `server::tls`) and the client library
//! ([`ServerAddr::tls`](crate::client::ServerAddr::tls), the client's
//! TLS socket) share.
//!
//! rustls with the `ring` provider only ([`provider`]): no OpenSSL, no
//! aws-lc. Certificates and keys are PEM files read once, when the server
//! starts or the client's address is made ([`files`]); an unusable file is
//! a [`TlsFileError`] naming it (`notifysvc` exits with the
//! configuration-file status, 4). What `nfy status` shows of a peer's
//! certificate is its subject as text ([`subject`]).
//!
//! | module | holds |
//! |---|---|
//! | [`files`] | certificate chains, private keys and CA files from PEM |
//! | [`io`] | rustls's reads and writes on a socket: never blocking, never `SIGPIPE` |
//! | [`subject`] | a certificate's subject as text (`CN=lane-1, O=Shop`) |

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

pub mod files;
pub mod io;
pub mod subject;

pub use files::{read_certificates, read_private_key, read_roots, TlsFileError};
pub use subject::{subject_text, MAX_SUBJECT_TEXT};

/// The one crypto provider nfy uses: rustls's `ring` provider (pure Rust
/// and C that the ARM cross compiler builds; no aws-lc, no OpenSSL).
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange,
/// which only its aws-lc provider has; the issue rules aws-lc out.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
