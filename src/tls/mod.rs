//! The mTLS front door: a rustls server configuration that requires a client certificate chained
//! to the configured SMKI trust anchors and carrying an SMKI identity, and the reading of that
//! identity once per connection.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};

use crate::domain::{SmkiRole, UserId};
use crate::identity;

#[cfg(test)]
mod tests;

/// Who is at the other end of a connection, read from its client certificate once at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub user_id: UserId,
    pub role: SmkiRole,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no private key")]
    NoKey { path: PathBuf },
    #[error("{path} holds a certificate that is not a usable trust anchor")]
    BadTrustAnchor {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("the TLS configuration is not usable")]
    Config(#[source] rustls::Error),
    #[error("the client verifier cannot be built")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

/// Why a handshake failed, as a closed set for the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    Timeout,
    NoClientCertificate,
    UntrustedCertificate,
    ExpiredCertificate,
    NoSmkiIdentity,
    Protocol,
    Io,
}

impl HandshakeFailure {
    pub const ALL: [Self; 7] = [
        Self::Timeout,
        Self::NoClientCertificate,
        Self::UntrustedCertificate,
        Self::ExpiredCertificate,
        Self::NoSmkiIdentity,
        Self::Protocol,
        Self::Io,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::NoClientCertificate => "no_client_certificate",
            Self::UntrustedCertificate => "untrusted_certificate",
            Self::ExpiredCertificate => "expired_certificate",
            Self::NoSmkiIdentity => "no_smki_identity",
            Self::Protocol => "protocol",
            Self::Io => "io",
        }
    }

    /// Classifies the error `tokio_rustls` returns from a failed accept.
    pub fn classify(err: &io::Error) -> Self {
        let Some(tls) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return Self::Io;
        };
        match tls {
            rustls::Error::NoCertificatesPresented => Self::NoClientCertificate,
            rustls::Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            ) => Self::ExpiredCertificate,
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure) => {
                Self::NoSmkiIdentity
            }
            rustls::Error::InvalidCertificate(_) => Self::UntrustedCertificate,
            _ => Self::Protocol,
        }
    }
}

/// Builds the server configuration from PEM files: HTTP/2 and HTTP/1.1 by ALPN, client
/// certificates required.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &[PathBuf],
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let mut roots = RootCertStore::empty();
    for path in client_ca {
        for ca in load_certs(path)? {
            roots.add(ca).map_err(|source| TlsError::BadTrustAnchor {
                path: path.clone(),
                source,
            })?;
        }
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(TlsError::Verifier)?;
    let verifier = Arc::new(SmkiClientVerifier { inner: webpki });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads the identity of an accepted connection's client. The verifier has already refused
/// certificates without one, so `None` here means a broken invariant, and the caller drops the
/// connection.
pub fn peer_identity(conn: &rustls::ServerConnection) -> Option<PeerIdentity> {
    let leaf = conn.peer_certificates()?.first()?;
    let id = identity::identity_from_der(leaf.as_ref()).ok()?;
    Some(PeerIdentity {
        user_id: id.user_id,
        role: id.role,
    })
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_owned(),
        })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// WebPKI chain verification, then the SMKI profile: the client certificate must carry a User
/// ID (`x500UniqueIdentifier`) and a role (`OU`). A certificate without them fails the handshake.
#[derive(Debug)]
struct SmkiClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for SmkiClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        identity::identity_from_der(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        })?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
