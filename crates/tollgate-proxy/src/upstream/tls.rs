//! TLS towards a service's upstream: verification against the system roots
//! (Pingora's default) or the service's own CAs, and an optional client
//! certificate (mutual TLS). Files are loaded and checked when the config is
//! built, because Pingora's connector panics on a certificate or key it
//! cannot parse.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pingora_core::protocols::tls::CaType;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::utils::tls::{parse_x509, CertKey, WrappedX509};
use rustls_pki_types::PrivateKeyDer;
use sha2::{Digest, Sha256};
use tollgate_config::schema::Service;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::tls::{read_chain, read_key};

/// A service's CA or client certificate files that cannot be used; the
/// message names the setting (and the file, once it was read).
#[derive(Debug, thiserror::Error)]
pub enum TlsLoadError {
    #[error("ca_certificates[{index}]: {reason}")]
    CaFile { index: usize, reason: String },
    #[error("ca_certificates[{index}] {}: {source}", .path.display())]
    CaCertificate { index: usize, path: PathBuf, source: NotX509 },
    #[error("client_certificate.cert: {0}")]
    CertFile(String),
    #[error("client_certificate.key: {0}")]
    KeyFile(String),
    #[error("client_certificate.key: {} is not a usable private key", .0.display())]
    UnusableKey(PathBuf),
    #[error("client_certificate.cert: {} holds a certificate that is not valid X.509", .0.display())]
    NotX509(PathBuf),
}

/// Bytes that do not parse as an X.509 certificate.
#[derive(Debug, thiserror::Error)]
#[error("not a valid X.509 certificate")]
pub struct NotX509;

#[derive(Clone, Default)]
pub struct UpstreamTls {
    /// `tls_verify = false` turns certificate and name checks off.
    pub skip_verify: bool,
    pub ca: Option<Arc<CaType>>,
    pub client: Option<Arc<CertKey>>,
    /// A digest of the CA set. Pingora's pool key leaves the CAs out, so
    /// without it a connection verified against one service's CAs could be
    /// reused by another service that trusts other CAs on the same address.
    pool_key: u64,
    /// A digest of everything above, so state built for these settings (a
    /// balancer's health probes) is rebuilt when a reload changes them.
    fingerprint: u64,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("skip_verify", &self.skip_verify)
            .field("ca", &self.ca.as_ref().map(|c| c.len()))
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl UpstreamTls {
    /// The service's settings, files read relative to `base` (the config's folder).
    pub fn load(s: &Service, base: &Path) -> Result<Self, TlsLoadError> {
        let mut digest = Sha256::new();
        let ca = if s.ca_certificates.is_empty() {
            None
        } else {
            let mut all = Vec::new();
            for (i, file) in s.ca_certificates.iter().enumerate() {
                let path = base.join(file);
                let chain = read_chain(&path).map_err(|reason| TlsLoadError::CaFile { index: i, reason })?;
                for der in chain {
                    digest.update(&der);
                    let ca = wrapped(der.to_vec()).map_err(|source| TlsLoadError::CaCertificate {
                        index: i,
                        path: path.clone(),
                        source,
                    })?;
                    all.push(ca);
                }
            }
            Some(Arc::<CaType>::from(all))
        };
        let mut pool_key = [0u8; 8];
        pool_key.copy_from_slice(&digest.finalize()[..8]);
        let pool_key = if ca.is_some() { u64::from_le_bytes(pool_key) } else { 0 };
        let mut whole = Sha256::new();
        whole.update([u8::from(s.tls_verify)]);
        whole.update(pool_key.to_le_bytes());
        let client = match &s.client_certificate {
            None => None,
            Some(c) => {
                let cert_path = base.join(&c.cert);
                let key_path = base.join(&c.key);
                let chain = read_chain(&cert_path).map_err(TlsLoadError::CertFile)?;
                let key = read_key(&key_path).map_err(TlsLoadError::KeyFile)?;
                let key_der = key.secret_der().to_vec();
                // The connector converts these bytes back with try_from and
                // panics if it cannot: check the same conversion here.
                if PrivateKeyDer::try_from(key_der.clone()).is_err() {
                    return Err(TlsLoadError::UnusableKey(key_path));
                }
                let mut raw = Vec::with_capacity(chain.len());
                for der in chain {
                    if X509Certificate::from_der(&der).is_err() {
                        return Err(TlsLoadError::NotX509(cert_path));
                    }
                    whole.update(&der);
                    raw.push(der.to_vec());
                }
                whole.update(&key_der);
                Some(Arc::new(CertKey::new(raw, key_der)))
            }
        };
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&whole.finalize()[..8]);
        let fingerprint = u64::from_le_bytes(fingerprint);
        Ok(UpstreamTls { skip_verify: !s.tls_verify, ca, client, pool_key, fingerprint })
    }

    /// Changes whenever the verification, the CAs or the client certificate do.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Sets the peer's verification, CAs and client certificate.
    pub fn apply(&self, peer: &mut HttpPeer) {
        if self.skip_verify {
            peer.options.verify_cert = false;
            peer.options.verify_hostname = false;
        }
        if let Some(ca) = &self.ca {
            peer.options.ca = Some(ca.clone());
            peer.group_key = self.pool_key;
        }
        if let Some(c) = &self.client {
            peer.client_cert_key = Some(c.clone());
        }
    }
}

/// A DER certificate as Pingora holds CAs, checked first: its own parser
/// panics on bytes that are not X.509.
fn wrapped(der: Vec<u8>) -> Result<WrappedX509, NotX509> {
    if X509Certificate::from_der(&der).is_err() {
        return Err(NotX509);
    }
    Ok(WrappedX509::new(der, parse_x509))
}
