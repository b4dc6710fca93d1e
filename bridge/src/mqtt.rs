//! The broker connection's options: MQTT 3.1.1, a persistent session
//! (`clean_session = false`), QoS 1, manual acknowledgements of what
//! arrives, the presence will, credentials, TLS through rustls with the
//! `ring` provider.

use std::fmt;
use std::sync::Arc;

use nfy_linux::tls::{read_certificates, read_private_key, TlsFileError};
use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
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
    /// A certificate or key file cannot be used (missing, unreadable, not
    /// PEM, nothing of the kind expected in it); names the file.
    File(TlsFileError),
    /// rustls refused the configuration.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::File(e) => e.fmt(f),
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

/// The rustls client configuration: the `ring` provider, the CA file's
/// roots (or the system's), the client certificate when given.
pub fn tls_config(options: &Options) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    match &options.ca {
        Some(ca) => {
            // The PEM files are read as the server reads its own
            // (nfy_linux::tls: rustls's pki_types::pem, no rustls-pemfile).
            for cert in read_certificates(ca).map_err(TlsError::File)? {
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
            let chain = read_certificates(cert).map_err(TlsError::File)?;
            let key = read_private_key(key).map_err(TlsError::File)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::Rustls)
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
