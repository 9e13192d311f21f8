//! The store of User XML-signing certificates, indexed by (issuer, serial) as a signature's
//! `KeyInfo` names them, each checked when added against the configured SMKI trust (anchors and
//! CRLs): whether an anchor issued it, and whether its issuer revoked it. One key may appear under
//! several serials after re-issue. `state::load` fills it from a directory; a reload builds a new
//! store against the new trust.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain::{SmkiRole, UserId};
use crate::identity::{identity_from_der, CertIdentity, DistinguishedName, IdentityError};
use crate::smki::{magnitude, Trust};

/// A loaded certificate and whether it chains to a trust anchor.
#[derive(Debug)]
pub struct StoredCert {
    pub identity: CertIdentity,
    pub chained: bool,
    /// Its issuer's CRL lists it.
    pub revoked: bool,
    pub path: PathBuf,
}

#[derive(Clone, Debug, Default)]
pub struct CertStore {
    /// Serial magnitude (no leading zero octets) → certificates with that serial.
    by_serial: HashMap<Vec<u8>, Vec<Arc<StoredCert>>>,
    len: usize,
    /// The trust the store was loaded with, for certificates added later.
    trust: Arc<Trust>,
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
    #[error("the certificate is revoked by its issuer's CRL")]
    Revoked,
    #[error("the store already holds a certificate with this issuer and serial")]
    Duplicate,
}

impl CertStore {
    /// An empty store whose certificates will be checked against `trust`.
    pub fn new(trust: Arc<Trust>) -> Self {
        Self {
            trust,
            ..Self::default()
        }
    }

    /// The trust (anchors and CRLs) the store checks against.
    pub fn trust(&self) -> &Arc<Trust> {
        &self.trust
    }

    /// Adds one DER certificate read from `path`, checked against the store's anchors. A
    /// certificate without an SMKI identity is refused: no signature could name it usefully.
    pub fn add(&mut self, der: &[u8], path: &Path) -> Result<(), IdentityError> {
        let identity = identity_from_der(der)?;
        let chained = self.trust.issuing_anchor(der).is_some();
        let revoked = self.trust.is_revoked(&identity.issuer, &identity.serial);
        let key = magnitude(&identity.serial).to_vec();
        self.by_serial
            .entry(key)
            .or_default()
            .push(Arc::new(StoredCert {
                identity,
                chained,
                revoked,
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
        if self.trust.issuing_anchor(der.as_ref()).is_none() {
            return Err(CertRefusal::Untrusted);
        }
        if self.trust.is_revoked(&identity.issuer, &identity.serial) {
            return Err(CertRefusal::Revoked);
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

    /// Every certificate held.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<StoredCert>> {
        self.by_serial.values().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
