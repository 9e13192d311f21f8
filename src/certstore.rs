//! The store of User XML-signing certificates, indexed by (issuer, serial) as a signature's
//! `KeyInfo` names them, each checked when added against the configured SMKI trust anchors. One
//! key may appear under several serials after re-issue. `state::load` fills it from a directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::domain::{SmkiRole, UserId};
use crate::identity::{identity_from_der, CertIdentity, DistinguishedName, IdentityError};

/// ecdsa-with-SHA256, the SMKI profile's only signature algorithm.
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";

/// A loaded certificate and whether it chains to a trust anchor.
#[derive(Debug)]
pub struct StoredCert {
    pub identity: CertIdentity,
    pub chained: bool,
    pub path: PathBuf,
}

#[derive(Clone, Debug, Default)]
pub struct CertStore {
    /// Serial magnitude (no leading zero octets) → certificates with that serial.
    by_serial: HashMap<Vec<u8>, Vec<Arc<StoredCert>>>,
    len: usize,
    /// The anchors the store was loaded with, for certificates added later.
    anchors: Vec<TrustAnchor>,
}

/// Why a certificate offered at run time (admin API) was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertRefusal {
    #[error("the text is not exactly one PEM certificate")]
    NotOnePem,
    #[error("the certificate has no SMKI identity")]
    NoIdentity,
    #[error("the certificate's role is {0:?}, not User XML signing (87)")]
    Role(SmkiRole),
    #[error("the certificate does not chain to a configured trust anchor")]
    Untrusted,
    #[error("the store already holds a certificate with this issuer and serial")]
    Duplicate,
}

/// A trust anchor: an issuing CA's name and public key.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    subject: DistinguishedName,
    public_key: Vec<u8>,
}

impl TrustAnchor {
    /// Every certificate in PEM text, as anchors (none when the text holds no usable one).
    pub fn from_pem(pem: &[u8]) -> Vec<Self> {
        rustls_pemfile::certs(&mut &pem[..])
            .filter_map(Result::ok)
            .filter_map(|der| {
                let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
                Some(Self {
                    subject: DistinguishedName::from_x509(cert.subject()).ok()?,
                    public_key: cert.public_key().subject_public_key.data.to_vec(),
                })
            })
            .collect()
    }
}

/// Whether `der` is signed (ecdsa-with-SHA256) by an anchor whose subject is its issuer.
pub fn chains_to(der: &[u8], anchors: &[TrustAnchor]) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    if cert.signature_algorithm.algorithm.to_id_string() != ECDSA_WITH_SHA256 {
        return false;
    }
    let Ok(issuer) = DistinguishedName::from_x509(cert.issuer()) else {
        return false;
    };
    let tbs = cert.tbs_certificate.as_ref();
    let signature = cert.signature_value.data.as_ref();
    anchors.iter().any(|a| {
        a.subject.matches(&issuer)
            && UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &a.public_key)
                .verify(tbs, signature)
                .is_ok()
    })
}

fn magnitude(serial: &[u8]) -> &[u8] {
    let first = serial
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(serial.len().saturating_sub(1));
    &serial[first..]
}

impl CertStore {
    /// An empty store whose certificates will be checked against `anchors`.
    pub fn new(anchors: Vec<TrustAnchor>) -> Self {
        Self {
            anchors,
            ..Self::default()
        }
    }

    /// Adds one DER certificate read from `path`, checked against the store's anchors. A
    /// certificate without an SMKI identity is refused: no signature could name it usefully.
    pub fn add(&mut self, der: &[u8], path: &Path) -> Result<(), IdentityError> {
        let identity = identity_from_der(der)?;
        let chained = chains_to(der, &self.anchors);
        let key = magnitude(&identity.serial).to_vec();
        self.by_serial
            .entry(key)
            .or_default()
            .push(Arc::new(StoredCert {
                identity,
                chained,
                path: path.to_owned(),
            }));
        self.len += 1;
        Ok(())
    }

    /// The certificate a signature names by issuer and serial. Issuers compare as
    /// distinguished names (case and spacing aside), not as strings; an exact RDN order is
    /// preferred, any order accepted.
    pub fn find(&self, issuer: &DistinguishedName, serial: &[u8]) -> Option<Arc<StoredCert>> {
        let candidates = self.by_serial.get(magnitude(serial))?;
        candidates
            .iter()
            .find(|c| c.identity.issuer.matches(issuer))
            .or_else(|| {
                candidates
                    .iter()
                    .find(|c| c.identity.issuer.matches_in_any_order(issuer))
            })
            .cloned()
    }

    /// A copy of the store with the User XML-signing certificate in `pem` added (as the admin
    /// API adds one without a restart): it must be one certificate with an SMKI identity, role
    /// `87`, chained to one of the store's trust anchors, not already held. Returns the User ID
    /// it names, for the caller to check against the party register.
    pub fn with_pem(&self, pem: &str, origin: &Path) -> Result<(CertStore, UserId), CertRefusal> {
        let ders: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| CertRefusal::NotOnePem)?;
        let [der] = ders.as_slice() else {
            return Err(CertRefusal::NotOnePem);
        };
        let identity = identity_from_der(der.as_ref()).map_err(|_| CertRefusal::NoIdentity)?;
        if identity.role != SmkiRole::XmlSigning {
            return Err(CertRefusal::Role(identity.role));
        }
        if !chains_to(der.as_ref(), &self.anchors) {
            return Err(CertRefusal::Untrusted);
        }
        if self.find(&identity.issuer, &identity.serial).is_some() {
            return Err(CertRefusal::Duplicate);
        }
        let user = identity.user_id;
        let mut next = self.clone();
        next.add(der.as_ref(), origin)
            .map_err(|_| CertRefusal::NoIdentity)?;
        Ok((next, user))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
