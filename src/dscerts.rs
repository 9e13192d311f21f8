//! The register of Users' Digital Signing certificates: the SMKI Organisation certificates whose
//! keys sign critical commands (a User signs the pre-command the DCC returned, and the DCC and
//! the device check that signature). Each is a supplier's (`OU=02`) or a network operator's
//! (`OU=03`) certificate with key usage digitalSignature, no extended key usage (which would make
//! it the organisation's TLS certificate) and an EC P-256 key, checked when added against the
//! configured SMKI trust anchors. Indexed by User ID: a signature on a pre-command
//! names no certificate, so every certificate the User holds in the role it acts in is tried.
//!
//! Layer 0: certificates come in as bytes (`state::load` reads the directory), the time as an
//! argument.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::domain::{SmkiRole, UserId, UserRole};
use crate::gbcs::{self, GeneralSigning, SignatureError};
use crate::identity::{identity_from_der, CertIdentity};
use crate::smki::Trust;

/// One Digital Signing certificate.
#[derive(Debug)]
pub struct DigitalSigningCert {
    pub identity: CertIdentity,
    /// Whether it chains to a configured trust anchor and its issuer has not revoked it.
    pub chained: bool,
    pub path: PathBuf,
}

/// Users' Digital Signing certificates, by User ID.
#[derive(Clone, Debug, Default)]
pub struct DigitalSigningCerts {
    by_user: HashMap<UserId, Vec<Arc<DigitalSigningCert>>>,
    len: usize,
    /// The trust (anchors and CRLs) the register was loaded with, for certificates added later.
    trust: Arc<Trust>,
}

/// Why a certificate is not a Digital Signing certificate the register holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsRefusal {
    #[error("the text is not exactly one PEM certificate")]
    NotOnePem,
    #[error("the certificate has no SMKI identity")]
    NoIdentity,
    #[error("the certificate's role is {0:?}, not a supplier's (02) or a network operator's (03)")]
    Role(SmkiRole),
    #[error("the certificate's key usage is not digitalSignature")]
    KeyUsage,
    #[error("the certificate has an extended key usage (a TLS certificate, not a signing one)")]
    ExtendedKeyUsage,
    #[error("the certificate's key is not EC P-256")]
    KeyType,
    #[error("the certificate does not chain to a configured trust anchor")]
    Untrusted,
    #[error("the certificate is revoked by its issuer's CRL")]
    Revoked,
    #[error("the register already holds a certificate with this issuer and serial")]
    Duplicate,
}

/// Why a signed pre-command is not the User's signature on the pre-command the DCC issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreCommandSignatureError {
    #[error("the payload is not the pre-command followed by a signature")]
    NotThePreCommand,
    #[error("the User holds no Digital Signing certificate in role {0:?} valid now")]
    NoCertificate(SmkiRole),
    #[error("the signature verifies with none of the User's Digital Signing certificates")]
    BadSignature,
}

/// The SMKI role of the Digital Signing certificate a User acting in `role` signs with:
/// suppliers and their agents `02`, network operators `03`, anyone else `7F`.
pub const fn signing_role(role: UserRole) -> SmkiRole {
    match role {
        UserRole::ImportSupplier
        | UserRole::ExportSupplier
        | UserRole::GasSupplier
        | UserRole::RegisteredSupplierAgent => SmkiRole::Supplier,
        UserRole::ElectricityDistributor | UserRole::GasTransporter => SmkiRole::NetworkOperator,
        UserRole::OtherUser => SmkiRole::Other,
    }
}

impl DigitalSigningCerts {
    /// An empty register whose certificates will be checked against `trust`.
    pub fn new(trust: Arc<Trust>) -> Self {
        Self {
            trust,
            ..Self::default()
        }
    }

    /// Adds one DER certificate read from `path`; one that chains to no anchor is kept but never
    /// trusted (as the XML-signing store does), so that its refusals say why.
    pub fn add(&mut self, der: &[u8], path: &Path) -> Result<(), DsRefusal> {
        let identity = checked_identity(der)?;
        let chained = self.trust.issuing_anchor(der).is_some()
            && !self.trust.is_revoked(&identity.issuer, &identity.serial);
        if self.holds(&identity) {
            return Err(DsRefusal::Duplicate);
        }
        self.by_user
            .entry(identity.user_id)
            .or_default()
            .push(Arc::new(DigitalSigningCert {
                identity,
                chained,
                path: path.to_owned(),
            }));
        self.len += 1;
        Ok(())
    }

    /// Adds one DER certificate read from `path` as trusted in itself, with no chain: as a
    /// device holds a User's key in a trust anchor cell (the simulated devices' trust).
    pub fn add_anchored(&mut self, der: &[u8], path: &Path) -> Result<(), DsRefusal> {
        let identity = checked_identity(der)?;
        if self.holds(&identity) {
            return Err(DsRefusal::Duplicate);
        }
        self.by_user
            .entry(identity.user_id)
            .or_default()
            .push(Arc::new(DigitalSigningCert {
                identity,
                chained: true,
                path: path.to_owned(),
            }));
        self.len += 1;
        Ok(())
    }

    /// A copy of the register with the certificate in `pem` added (as the admin API adds one
    /// without a restart): one certificate, a Digital Signing one, chained to one of the
    /// register's anchors, not already held. Returns the User ID it names.
    pub fn with_pem(&self, pem: &str, origin: &Path) -> Result<(Self, UserId), DsRefusal> {
        let ders: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| DsRefusal::NotOnePem)?;
        let [der] = ders.as_slice() else {
            return Err(DsRefusal::NotOnePem);
        };
        let identity = checked_identity(der.as_ref())?;
        if self.trust.issuing_anchor(der.as_ref()).is_none() {
            return Err(DsRefusal::Untrusted);
        }
        if self.trust.is_revoked(&identity.issuer, &identity.serial) {
            return Err(DsRefusal::Revoked);
        }
        let mut next = self.clone();
        next.add(der.as_ref(), origin)?;
        Ok((next, identity.user_id))
    }

    fn holds(&self, identity: &CertIdentity) -> bool {
        self.by_user.get(&identity.user_id).is_some_and(|certs| {
            certs.iter().any(|c| {
                c.identity.serial == identity.serial && c.identity.issuer.matches(&identity.issuer)
            })
        })
    }

    /// The certificates of `user` in `role` that a signature may be checked with at `now`:
    /// chained, and valid then.
    pub fn usable(
        &self,
        user: UserId,
        role: SmkiRole,
        now: OffsetDateTime,
    ) -> impl Iterator<Item = &Arc<DigitalSigningCert>> + '_ {
        self.by_user
            .get(&user)
            .into_iter()
            .flatten()
            .filter(move |c| c.chained && c.identity.role == role && c.identity.is_valid_at(now))
    }

    /// Checks that `signed` is exactly `precommand` followed by a signature of `user`, acting
    /// in a role whose Digital Signing certificates are `role`'s, with a certificate usable at
    /// `now`. Returns the signed frame.
    pub fn verify_signed_precommand(
        &self,
        user: UserId,
        role: SmkiRole,
        now: OffsetDateTime,
        precommand: &[u8],
        signed: &[u8],
    ) -> Result<GeneralSigning, PreCommandSignatureError> {
        let mut tried = false;
        for cert in self.usable(user, role, now) {
            tried = true;
            match gbcs::verify_signed_precommand(precommand, signed, &cert.identity.public_key) {
                Ok(frame) => return Ok(frame),
                Err(SignatureError::Invalid) => {}
                Err(_) => return Err(PreCommandSignatureError::NotThePreCommand),
            }
        }
        if !tried {
            // Whether the payload is the pre-command is still told apart from a missing key.
            return match gbcs::verify_signed_precommand(precommand, signed, &[]) {
                Err(SignatureError::Invalid) => Err(PreCommandSignatureError::NoCertificate(role)),
                _ => Err(PreCommandSignatureError::NotThePreCommand),
            };
        }
        Err(PreCommandSignatureError::BadSignature)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The identity of a Digital Signing certificate, or why it is not one.
fn checked_identity(der: &[u8]) -> Result<CertIdentity, DsRefusal> {
    let identity = identity_from_der(der).map_err(|_| DsRefusal::NoIdentity)?;
    if !matches!(
        identity.role,
        SmkiRole::Supplier | SmkiRole::NetworkOperator
    ) {
        return Err(DsRefusal::Role(identity.role));
    }
    if !identity.key_is_p256 {
        return Err(DsRefusal::KeyType);
    }
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| DsRefusal::NoIdentity)?;
    match cert.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() && !ku.value.key_agreement() => {}
        _ => return Err(DsRefusal::KeyUsage),
    }
    if !matches!(cert.extended_key_usage(), Ok(None)) {
        return Err(DsRefusal::ExtendedKeyUsage);
    }
    Ok(identity)
}

#[cfg(test)]
mod tests;
