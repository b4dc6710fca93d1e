//! TLS for remote peers (issue 16, **Beyond**): the `--tls-*` options and
//! the server's rustls configuration, made once at start-up.
//!
//! With `--tls-cert` and `--tls-key`, `notifysvc` listens for TLS on a
//! port of its own (`--tls-port`, default [`DEFAULT_TLS_PORT`]), on the
//! addresses the configuration opens for plain TCP ([`super::listen`]).
//! With `--tls-client-ca`, peers must present a certificate that chains to
//! one of its CAs (mutual TLS); without it, TLS only authenticates the
//! server. `--no-plain-remote` ([`PlainRemote::LoopbackOnly`]) leaves
//! plain TCP on loopback only, so every remote peer must use TLS; the Unix
//! socket and loopback TCP stay plain.
//!
//! The certificate, key and CA files are read here, once, before any
//! socket opens; an unusable one is [`ServerError::TlsFile`] (exit 4,
//! `ERR_CONFIG_FILE`, naming the file). What happens to a connection on
//! the TLS port: the server's `handshake` module (the handshake, its
//! timeout and bound) and `tls_stream` (the established connection).
//!
//! **Decision** (who is remote): a TLS connection is local or remote by
//! its address, exactly as a plain one (spec 4): from loopback it is
//! local, from anywhere else remote, and then the whitelist and every
//! remote limit apply to it as to a plain remote peer (`in`/`out` rules,
//! the 256 remote registrations, no observing, `--max-remote`,
//! `--max-remote-frame`, the rate limit). TLS adds authentication and
//! encryption, not privileges: a certificate does not make a host local,
//! and a local process gains nothing by using TLS that plain loopback TCP
//! (open to every local process, docs/reliability.md) does not give it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use super::ServerError;
use crate::tls::{self as files, TlsFileError};

/// Default TLS port (`--tls-port`): the one below the plain protocol's.
pub const DEFAULT_TLS_PORT: u16 = 5898;
/// Default handshake timeout (`--tls-handshake-timeout`).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Smallest `--tls-handshake-timeout` accepted.
pub const MIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(100);
/// Largest `--tls-handshake-timeout` accepted.
pub const MAX_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default bound on handshakes in progress (`--tls-max-handshakes`).
pub const DEFAULT_MAX_HANDSHAKES: usize = 32;
/// Largest `--tls-max-handshakes` accepted.
pub const MAX_MAX_HANDSHAKES: usize = 1024;
/// What rustls may buffer of one connection's encrypted output
/// (`set_buffer_limit`), on top of its `--max-queue`: bytes move from the
/// queue into rustls only while it holds less than this.
pub const TLS_OUT_BUFFER: usize = 32 * 1024;

/// Whether plain TCP serves remote peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlainRemote {
    /// Plain TCP listens where the configuration says (spec 4).
    #[default]
    Allowed,
    /// `--no-plain-remote`: plain TCP listens on loopback only; remote
    /// peers must use TLS.
    LoopbackOnly,
}

/// The `--tls-*` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--tls-port`; 0 picks a free one.
    pub port: u16,
    /// `--tls-cert`: the server's certificate chain (PEM, its own first).
    pub cert: PathBuf,
    /// `--tls-key`: its private key (PEM).
    pub key: PathBuf,
    /// `--tls-client-ca`: the CA certificates (PEM) a peer's certificate
    /// must chain to; `None`: peers present none (server-authenticated
    /// TLS).
    pub client_ca: Option<PathBuf>,
    /// `--tls-handshake-timeout`: a handshake not complete by then is cut.
    pub handshake_timeout: Duration,
    /// `--tls-max-handshakes`: handshakes in progress at most; a
    /// connection beyond them is closed at once.
    pub max_handshakes: usize,
}

impl TlsOptions {
    /// TLS on [`DEFAULT_TLS_PORT`] with this certificate and key, no client
    /// CA, default timeout and bound.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsOptions {
        TlsOptions {
            port: DEFAULT_TLS_PORT,
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
        }
    }
}

/// Whether peers present certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Mutual TLS: a certificate that chains to the client CA is required.
    Required,
    /// Server-authenticated TLS only.
    None,
}

/// The server's TLS set-up, made once at start-up.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The rustls configuration every TLS connection shares.
    pub config: Arc<ServerConfig>,
    /// Whether peers present certificates.
    pub client_auth: ClientAuth,
    /// The handshake timeout.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at most.
    pub max_handshakes: usize,
}

fn file_error(e: TlsFileError) -> ServerError {
    ServerError::TlsFile {
        path: e.path,
        problem: e.problem,
    }
}

/// Reads the certificate, key and client CA files of `opts` and makes the
/// rustls configuration: TLS 1.2 and 1.3, the `ring` provider.
pub fn load(opts: &TlsOptions) -> Result<ServerTls, ServerError> {
    let certs = files::read_certificates(&opts.cert).map_err(file_error)?;
    let key = files::read_private_key(&opts.key).map_err(file_error)?;
    let provider = files::provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Io {
            context: "cannot set up TLS".into(),
            source: std::io::Error::other(e),
        })?;
    let (builder, client_auth) = match &opts.client_ca {
        Some(ca) => {
            let roots = files::read_roots(ca).map_err(file_error)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ServerError::TlsFile {
                    path: ca.clone(),
                    problem: format!("not usable as the client CA: {e}"),
                })?;
            (
                builder.with_client_cert_verifier(verifier),
                ClientAuth::Required,
            )
        }
        None => (builder.with_no_client_auth(), ClientAuth::None),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::TlsFile {
            path: opts.key.clone(),
            problem: format!(
                "cannot be used with the certificate {}: {e}",
                opts.cert.display()
            ),
        })?;
    Ok(ServerTls {
        config: Arc::new(config),
        client_auth,
        handshake_timeout: opts.handshake_timeout,
        max_handshakes: opts.max_handshakes,
    })
}
