//! Verify signature: the phase that proves who signed a request.

use time::OffsetDateTime;

use super::Gateway;
use crate::domain::UserId;
use crate::duis::ParsedRequest;
use crate::error::Error;
use crate::xmldsig::{self, ProfileError, SignerRefusal};

impl Gateway {
    /// Verify signature: the document's one `ds:Signature`, made with a known User XML-signing
    /// certificate that may sign for the originator now, over exactly this document.
    pub(super) fn verify_signature(
        &self,
        body: &[u8],
        request: &ParsedRequest,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let originator: UserId = request.header.request_id.originator;
        // The parser found the one ds:Signature as the root's last child (or none).
        let span = request
            .signature
            .clone()
            .ok_or(Error::Signature(ProfileError::Missing.into()))?;
        // One walk reads the signature, checks the digest and canonicalises SignedInfo; a digest
        // mismatch is reported only after the signer checks, as the refusal order requires.
        let prepared =
            xmldsig::prepare(body, &self.c14n_limits).map_err(|e| Error::Signature(e.into()))?;
        let sig = &prepared.signature;
        // Two readers that disagree on where the signature is: the request is not signed as
        // the parser read it.
        if sig.signature != span {
            return Err(Error::Signature(ProfileError::Missing.into()));
        }
        let cert = self
            .state
            .user_certs()
            .find(&sig.issuer, &sig.serial)
            .ok_or(Error::UnknownSigner)?;
        xmldsig::check_signer(&cert.identity, cert.chained, originator, now)
            .map_err(Error::Signer)?;
        if cert.revoked {
            return Err(Error::Signer(SignerRefusal::Revoked));
        }
        prepared
            .verify(&cert.identity.public_key)
            .map_err(Error::Signature)
    }
}
