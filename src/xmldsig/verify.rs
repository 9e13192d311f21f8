//! Verifying a document's signature under the profile: the digest of the document without its
//! signature, then ECDSA P-256 over the canonical `SignedInfo`; and the checks on the certificate
//! that signed it. Pure: the caller finds the certificate and passes `now`.

use ring::digest::{digest, SHA256 as RING_SHA256};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use time::OffsetDateTime;

use super::c14n::{C14nError, C14nLimits};
use super::prepare::prepare;
use super::profile::{ProfileError, SignatureElement};
use crate::domain::{SmkiRole, UserId};
use crate::identity::CertIdentity;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("the document cannot be canonicalised")]
    Canonicalisation(#[from] C14nError),
    #[error("the digest of the document does not match the signed DigestValue")]
    Digest,
    #[error("the signature value does not verify with the certificate's key")]
    SignatureValue,
}

/// Why a found certificate may not sign this request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerRefusal {
    #[error("the signing certificate is not valid at this time")]
    NotValidNow,
    #[error("the signing certificate's role is {0}, not 87 (User XML signing)")]
    Role(SmkiRole),
    #[error("the signing certificate does not chain to a configured trust anchor")]
    Untrusted,
    #[error("the signing certificate names User {certificate}, not the originator {originator}")]
    OtherUser {
        certificate: UserId,
        originator: UserId,
    },
    #[error("the signing certificate's key is not EC P-256")]
    KeyType,
    #[error("the signing certificate is revoked by its issuer's CRL")]
    Revoked,
}

/// Verifies `doc`'s signature with the public key (an uncompressed P-256 point) of the
/// certificate it names, for a caller that has the key already: [`prepare`], then
/// [`Prepared::verify`](super::Prepared::verify). Returns the signature it read.
pub fn verify_document(
    doc: &[u8],
    public_key: &[u8],
    limits: &C14nLimits,
) -> Result<SignatureElement, VerifyError> {
    let prepared = prepare(doc, limits)?;
    prepared.verify(public_key)?;
    Ok(prepared.signature)
}

/// The ECDSA P-256 operation: `value` (raw `r‖s`) signs `signed` with `public_key`.
pub(super) fn ecdsa_p256(
    signed: &[u8],
    value: &[u8; 64],
    public_key: &[u8],
) -> Result<(), VerifyError> {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(signed, value)
        .map_err(|_| VerifyError::SignatureValue)
}

/// The certificate checks for a User's request signature: XML-signing role, P-256, valid now,
/// chained to a trust anchor, naming the RequestID's originator. In that order.
pub fn check_signer(
    cert: &CertIdentity,
    chained: bool,
    originator: UserId,
    now: OffsetDateTime,
) -> Result<(), SignerRefusal> {
    if cert.role != SmkiRole::XmlSigning {
        return Err(SignerRefusal::Role(cert.role));
    }
    if !cert.key_is_p256 {
        return Err(SignerRefusal::KeyType);
    }
    if !cert.is_valid_at(now) {
        return Err(SignerRefusal::NotValidNow);
    }
    if !chained {
        return Err(SignerRefusal::Untrusted);
    }
    if cert.user_id != originator {
        return Err(SignerRefusal::OtherUser {
            certificate: cert.user_id,
            originator,
        });
    }
    Ok(())
}

pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest(&RING_SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
