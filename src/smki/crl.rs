//! Certificate revocation lists: one per issuing authority, signed by it. A CRL is read whole
//! and checked once, when it is loaded: its signature by a configured anchor, and no critical
//! extension (a delta CRL, an indirect CRL, an issuing-distribution-point scope) that would make
//! its list mean something other than "these serials of this issuer are revoked". A CRL past its
//! `nextUpdate` still applies — what it revokes stays revoked — and its `nextUpdate` is exported
//! for the operators to act on.

use std::collections::HashSet;

use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::{magnitude, Anchor, Signed};
use crate::identity::DistinguishedName;

/// Serials on one CRL, at most; a longer list is refused (and the previous one kept).
pub const MAX_REVOKED: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error("not a DER certificate revocation list")]
    Malformed,
    #[error("the CRL's issuer is not a configured trust anchor, or did not sign it")]
    UnknownIssuer,
    #[error("the CRL has a critical extension {0} that is not processed")]
    UnknownCriticalExtension(String),
    #[error("the CRL lists more than {MAX_REVOKED} certificates")]
    TooLong,
}

/// One issuer's revoked serials, from its CRL.
#[derive(Debug, Clone)]
pub struct Revocations {
    pub issuer: DistinguishedName,
    serials: HashSet<Vec<u8>>,
    /// `thisUpdate` and `nextUpdate`, in unix seconds.
    pub this_update: i64,
    pub next_update: Option<i64>,
}

impl Revocations {
    /// Reads and checks a CRL against `anchors`.
    pub fn from_der(der: &[u8], anchors: &[Anchor]) -> Result<Self, CrlError> {
        let (rest, crl) =
            CertificateRevocationList::from_der(der).map_err(|_| CrlError::Malformed)?;
        if !rest.is_empty() {
            return Err(CrlError::Malformed);
        }
        let issuer = DistinguishedName::from_x509(crl.issuer()).map_err(|_| CrlError::Malformed)?;
        let signed = Signed {
            tbs: crl.tbs_cert_list.as_ref(),
            algorithm: crl.signature_algorithm.algorithm.to_id_string(),
            signature: crl.signature_value.data.as_ref(),
        };
        if !anchors
            .iter()
            .any(|a| a.subject.matches(&issuer) && a.signed(&signed))
        {
            return Err(CrlError::UnknownIssuer);
        }
        let critical = crl
            .extensions()
            .iter()
            .chain(
                crl.iter_revoked_certificates()
                    .flat_map(|r| r.extensions().iter()),
            )
            .find(|e| e.critical);
        if let Some(ext) = critical {
            return Err(CrlError::UnknownCriticalExtension(ext.oid.to_id_string()));
        }
        if crl.tbs_cert_list.revoked_certificates.len() > MAX_REVOKED {
            return Err(CrlError::TooLong);
        }
        let serials = crl
            .iter_revoked_certificates()
            .map(|r| magnitude(r.raw_serial()).to_vec())
            .collect();
        Ok(Self {
            issuer,
            serials,
            this_update: crl.last_update().timestamp(),
            next_update: crl.next_update().map(|t| t.timestamp()),
        })
    }

    /// Whether `serial` (magnitude, big-endian) is on the list.
    pub fn lists(&self, serial: &[u8]) -> bool {
        self.serials.contains(magnitude(serial))
    }

    pub fn len(&self) -> usize {
        self.serials.len()
    }

    pub fn is_empty(&self) -> bool {
        self.serials.is_empty()
    }
}
