//! The broker connection's options: MQTT 3.1.1, a persistent session
//! (`clean_session = false`), QoS 1, manual acknowledgements of what
//! arrives, the presence will, credentials, TLS through rustls with the
//! `ring` provider.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::Options;
use crate::payload::Presence;
use crate::topic::Topics;

/// Publishes the bridge may have in flight to the broker at once (MQTT
/// packet identifiers in use).
pub const INFLIGHT: u16 = 256;

/// Largest MQTT packet, both ways: a notification's frame limit on the
/// local server is 64 KiB; this leaves room for the JSON around it.
pub const MAX_PACKET: usize = 256 * 1024;

/// Why the broker options could not be built.
#[derive(Debug)]
pub enum TlsError {
    /// A PEM file could not be read.
    Read(PathBuf, std::io::Error),
    /// A PEM file holds nothing usable.
    Empty(PathBuf, &'static str),
    /// rustls refused the configuration.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read(p, e) => write!(f, "{}: {e}", p.display()),
            TlsError::Empty(p, what) => write!(f, "{}: no {what} in it", p.display()),
            TlsError::Rustls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The presence payload (online or not) of this bridge.
pub fn presence(options: &Options, online: bool) -> Vec<u8> {
    serde_json::to_vec(&Presence {
        terminal: options.terminal.to_string(),
        online,
        exports: options.file.exports.clone(),
    })
    .unwrap_or_default()
}

/// The rumqttc options for `options`.
pub fn mqtt_options(options: &Options, topics: &Topics) -> Result<MqttOptions, TlsError> {
    let b = &options.broker;
    let mut o = MqttOptions::new(options.client_id.clone(), b.host.clone(), b.port);
    o.set_clean_session(false)
        .set_keep_alive(options.keep_alive)
        .set_manual_acks(true)
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_request_channel_capacity(64 * 1024)
        .set_last_will(LastWill::new(
            topics.presence(&options.terminal),
            presence(options, false),
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &options.username {
        o.set_credentials(user.clone(), options.password.clone().unwrap_or_default());
    }
    if b.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls_config(options)?),
        )));
    }
    Ok(o)
}

fn read_pem(path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| TlsError::Read(path.to_owned(), e))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut read_pem(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Read(path.to_owned(), e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty(path.to_owned(), "certificate"));
    }
    Ok(certs)
}

/// The rustls client configuration: the `ring` provider, the CA file's
/// roots (or the system's), the client certificate when given.
pub fn tls_config(options: &Options) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    match &options.ca {
        Some(ca) => {
            for cert in certificates(ca)? {
                roots.add(cert).map_err(TlsError::Rustls)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system store may hold certificates rustls cannot use;
                // the others still count.
                let _ = roots.add(cert);
            }
        }
    }
    // rustls deprecates `ring` for lacking post-quantum key exchange; we
    // keep it on purpose: aws-lc-rs needs a C/cmake build that
    // cross-compiles for the terminals' ARM poorly.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_root_certificates(roots);
    match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut read_pem(key)?)
                .map_err(|e| TlsError::Read(key.clone(), e))?
                .ok_or_else(|| TlsError::Empty(key.clone(), "private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::Rustls)
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
