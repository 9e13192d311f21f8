//! The mTLS front door: a rustls server configuration that requires a client certificate in the
//! SMKI Organisation profile, chained to the configured trust anchors and not revoked (our own
//! verifier over `smki`, which also lets rustls check the handshake signature), and the reading
//! of the client's identity once per connection.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::time_provider::{DefaultTimeProvider, TimeProvider};
use rustls::CertificateError;

use crate::domain::{SmkiRole, UserId};
use crate::identity;
use crate::smki::{Anchor, Clients, Refusal, Trust};

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
}

/// Why a handshake failed, as a closed set for the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    Timeout,
    NoClientCertificate,
    UntrustedCertificate,
    ExpiredCertificate,
    RevokedCertificate,
    /// A role the listener does not admit (an XML-signing or a DCC certificate at the DUIS port).
    RoleNotAllowed,
    /// Outside the SMKI profile: key usage, extended key usage, policy, key type, an unknown
    /// critical extension.
    Profile,
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
            Self::RevokedCertificate => "revoked_certificate",
            Self::RoleNotAllowed => "role_not_allowed",
            Self::Profile => "profile",
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
            rustls::Error::InvalidCertificate(CertificateError::Revoked) => {
                Self::RevokedCertificate
            }
            rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::UnhandledCriticalExtension,
            ) => Self::Profile,
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure) => {
                Self::NoSmkiIdentity
            }
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                match other.0.downcast_ref::<Refusal>() {
                    Some(Refusal::Role(_)) => Self::RoleNotAllowed,
                    Some(Refusal::NoIdentity) => Self::NoSmkiIdentity,
                    Some(Refusal::UnknownIssuer | Refusal::NotACa) => Self::UntrustedCertificate,
                    Some(_) => Self::Profile,
                    None => Self::UntrustedCertificate,
                }
            }
            rustls::Error::InvalidCertificate(_) => Self::UntrustedCertificate,
            _ => Self::Protocol,
        }
    }
}

/// Builds the server configuration from PEM files: HTTP/2 and HTTP/1.1 by ALPN, client
/// certificates required and judged by the SMKI profile against `trust` ([`verifier`]),
/// admitting `clients`.
pub fn server_config(
    cert: &Path,
    key: &Path,
    trust: Arc<Trust>,
    clients: Clients,
) -> Result<rustls::ServerConfig, TlsError> {
    server_config_with_time(cert, key, trust, clients, Arc::new(DefaultTimeProvider))
}

/// As [`server_config`], with the clock certificates are judged by.
fn server_config_with_time(
    cert: &Path,
    key: &Path,
    trust: Arc<Trust>,
    clients: Clients,
    time: Arc<dyn TimeProvider>,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let verifier = Arc::new(SmkiClientVerifier::new(trust, clients, &provider));
    let mut config = rustls::ServerConfig::builder_with_details(provider, time)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The server configuration in force. A reload swaps it whole; each connection takes the one in
/// force when it is accepted and keeps it (established connections are not touched).
pub struct Acceptor {
    config: ArcSwap<rustls::ServerConfig>,
}

impl Acceptor {
    pub fn new(config: rustls::ServerConfig) -> Self {
        Self {
            config: ArcSwap::from_pointee(config),
        }
    }

    /// An acceptor for the next connection.
    pub fn current(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }

    /// Puts `config` in force for the connections accepted from now on.
    pub fn swap(&self, config: rustls::ServerConfig) {
        self.config.store(Arc::new(config));
    }
}

/// Trust in the anchors of `client_ca` (PEM files, each one or more CA certificates), without
/// revocation lists.
pub fn trust_from_files(client_ca: &[PathBuf]) -> Result<Trust, TlsError> {
    let mut anchors = Vec::new();
    for path in client_ca {
        let found = Anchor::from_pem(&read(path)?);
        if found.is_empty() {
            return Err(TlsError::NoCertificate { path: path.clone() });
        }
        anchors.extend(found);
    }
    Ok(Trust::new(anchors))
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

mod verifier;
pub use verifier::SmkiClientVerifier;
