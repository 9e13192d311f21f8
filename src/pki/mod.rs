//! Layer 1: the dev PKI. Generates, in Rust, certificates in the SMKI Organisation profile:
//! subject `[CN=name,] OU=<2 hex role>, x500UniqueIdentifier=<EUI-64 as BIT STRING>`, EC P-256
//! keys, ecdsa-with-SHA256, key usage critical, the SMKI certificate policy, subject and
//! authority key identifiers.
//!
//! The certificates are assembled from `x509-cert`'s types and signed with `p256` directly
//! (see [`tbs`]): `x509-cert`'s `CertificateBuilder` always adds `nonRepudiation` to a leaf's key
//! usage and cannot leave it out without its `hazmat` feature, while the SMKI profile wants
//! `digitalSignature` alone; and the builder has no say over criticality or the extension order.
//! Writing the `TBSCertificate` ourselves is fifty lines and leaves nothing implicit.
//!
//! [`Ca`] is the programmatic API (tests elsewhere make expired certificates and foreign CAs with
//! it); [`init`] writes the whole dev PKI to a directory (`dccgw pki init --out certs/dev`).
//! Randomness (keys, serial numbers) comes from the operating system.

mod ca;
mod dev;
mod tbs;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::PathBuf;

use time::{Duration, OffsetDateTime};

use crate::domain::{Eui64, SmkiRole};

pub use ca::Ca;
pub use dev::{init, init_force, DevPki, DevUser, PemPair, DEV_USERS};

/// The SMKI Organisation certificate policy, `1.2.826.0.1.8641679.1.2.1.4`.
pub const SMKI_ORG_POLICY: &str = "1.2.826.0.1.8641679.1.2.1.4";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("the validity period is empty: not before {not_before}, not after {not_after}")]
    EmptyValidity {
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    },
    #[error("a certificate cannot carry the time {0} (years 1970 to 9999 only)")]
    TimeOutOfRange(OffsetDateTime),
    #[error("{0:?} is not a DNS name a certificate can carry")]
    DnsName(String),
    #[error("encoding the certificate failed")]
    Der(#[from] der::Error),
    #[error("encoding or decoding the key failed")]
    Key(#[from] p256::pkcs8::Error),
    #[error("encoding the public key failed")]
    PublicKey(#[from] p256::pkcs8::spki::Error),
    #[error("the CA certificate does not belong to the CA key")]
    KeyMismatch,
    #[error("{path} already exists and is not empty; refusing to overwrite a PKI")]
    OutputExists { path: PathBuf },
    #[error("writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A certificate's validity period. Certificates carry whole seconds; sub-second parts are
/// dropped when the certificate is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from `now` for `days` days.
    pub fn days_from(now: OffsetDateTime, days: i64) -> Self {
        Self {
            not_before: now,
            not_after: now + Duration::days(days),
        }
    }

    /// A period that ended a day before `now` (valid from 30 days to 1 day ago): for tests of
    /// expiry handling.
    pub fn expired_at(now: OffsetDateTime) -> Self {
        Self {
            not_before: now - Duration::days(30),
            not_after: now - Duration::days(1),
        }
    }
}

/// What a leaf certificate is for. TLS certificates carry the matching extended key usage;
/// an XML-signing certificate carries none (as the DCC's own do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// TLS server: extended key usage `serverAuth`.
    TlsServer,
    /// TLS client: extended key usage `clientAuth`.
    TlsClient,
    /// XMLDSig signing of DUIS messages: no extended key usage.
    XmlSigning,
    /// GBCS Digital Signing: a supplier's or network operator's key that signs critical
    /// commands (the User's signature on a pre-command). No extended key usage.
    DigitalSigning,
}

/// What to put in a leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    pub common_name: Option<String>,
    pub role: SmkiRole,
    /// The `x500UniqueIdentifier`; every SMKI Organisation certificate has one, but a test may
    /// want a certificate without.
    pub user_id: Option<Eui64>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub usage: Usage,
    pub validity: Validity,
}

impl LeafSpec {
    /// A certificate for `user_id` in `role`, without names, valid for `validity`.
    pub fn new(role: SmkiRole, user_id: Eui64, usage: Usage, validity: Validity) -> Self {
        Self {
            common_name: None,
            role,
            user_id: Some(user_id),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            usage,
            validity,
        }
    }
}

/// An issued certificate and its private key.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 PEM. Never printed by `Debug`.
    pub key_pkcs8_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pkcs8_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}
