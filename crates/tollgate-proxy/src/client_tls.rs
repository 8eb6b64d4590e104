//! Mutual TLS on the TLS listeners: the client CA's verifier, swapped on reload
//! as the server certificates are (tls.rs loads both), and the identity a
//! verified client certificate carries into the request for Kong's mtls-auth.
//!
//! Pingora's rustls listener takes one `ClientCertVerifier` when it is built;
//! `ClientVerifier` is that one, and delegates to the verifier of the running
//! config, so a reload can add, change or drop the CA without a restart.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use pingora_proxy::Session;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error as TlsError, SignatureScheme};
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// How one config verifies client certificates (`server.client_ca`, loaded).
#[derive(Clone)]
pub struct ClientCa(pub(crate) Arc<dyn ClientCertVerifier>);

/// The verifier the listeners were built with; `install` swaps what it asks.
pub struct ClientVerifier {
    current: ArcSwap<Arc<dyn ClientCertVerifier>>,
}

impl ClientVerifier {
    pub fn new(ca: ClientCa) -> Arc<Self> {
        Arc::new(ClientVerifier { current: ArcSwap::from_pointee(ca.0) })
    }

    pub fn install(&self, ca: ClientCa) {
        self.current.store(Arc::new(ca.0));
    }
}

impl fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientVerifier({:?})", self.current.load())
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current.load().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current.load().client_auth_mandatory()
    }

    /// No CA names in the certificate request (Kong's `send_ca_dn = false`):
    /// they would borrow from a verifier a reload may drop, and clients send
    /// the certificate they were given either way.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        self.current.load().verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.current.load().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.current.load().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().supported_verify_schemes()
    }
}

/// What a verified client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Subject alternative names (DNS, email, URI), then the common name: the
    /// names mtls-auth matches against consumers, in that order.
    pub names: Vec<String>,
    /// The first 8 bytes of the certificate's SHA-256, in hex: the credential id.
    pub fingerprint: String,
}

impl ClientIdentity {
    /// `None` when the DER is not a certificate x509-parser reads (rustls
    /// verified it already, so that does not happen with a CA configured).
    pub fn of(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) | GeneralName::RFC822Name(n) | GeneralName::URI(n) => {
                        names.push((*n).to_string())
                    }
                    _ => {}
                }
            }
        }
        names.extend(cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_string));
        let digest = Sha256::digest(der);
        Some(ClientIdentity { names, fingerprint: crate::keyauth::digest_prefix_hex(&digest.into()) })
    }

    /// The identity of the connection `session` arrived on, when its caller
    /// presented a certificate the listener verified.
    pub fn of_session(session: &Session) -> Option<&ClientIdentity> {
        session.digest()?.ssl_digest.as_ref()?.extension.get::<ClientIdentity>()
    }
}

/// Reads the client certificate once per connection, after the handshake,
/// into the connection's TLS digest, where every request on it finds it.
///
/// The chain is checked again against the verifier in force: a resumed TLS
/// session brings back the certificate of its first handshake without
/// verifying it, and the CA may have been replaced since (a rotation, a
/// revoked intermediate), so only a chain the current CA accepts is an identity.
pub struct IdentityCallback {
    pub verifier: Arc<ClientVerifier>,
}

#[async_trait]
impl TlsAccept for IdentityCallback {
    async fn handshake_complete_callback(&self, tls: &TlsRef) -> Option<Arc<dyn Any + Send + Sync>> {
        let (leaf, intermediates) = tls.peer_cert_chain_der()?.split_first()?;
        self.verifier.verify_client_cert(leaf, intermediates, UnixTime::now()).ok()?;
        let identity = ClientIdentity::of(leaf.as_ref())?;
        Some(Arc::new(identity))
    }
}

/// The verifier without `client_ca`: asks for no certificate and accepts none.
/// (rustls' `NoClientAuth` panics when asked to verify, which a handshake that
/// began before a reload removed the CA could make it do.)
#[derive(Debug)]
pub(crate) struct NoClientCerts;

impl ClientCertVerifier for NoClientCerts {
    fn offer_client_auth(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        Err(TlsError::General(NO_CLIENT_CA.into()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::General(NO_CLIENT_CA.into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::General(NO_CLIENT_CA.into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Vec::new()
    }
}

const NO_CLIENT_CA: &str = "client certificates are not accepted: no server.client_ca";
