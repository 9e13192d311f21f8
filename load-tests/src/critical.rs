//! The User's half of a critical request, done on the lane between the two requests of the pair:
//! read the Transform's answer (`I0` with `ResponseMessage/PreCommand`), sign the pre-command
//! with the User's Digital Signing key (`dccgw::gbcs::sign_precommand`, as `dccgw
//! sign-precommand` does), write the request that carries it back under the same RequestID
//! (`SignedPreCommand`, Command Variant 5, 6 or 7) and XML-sign it with the User's key. The
//! gateway's own library does each step, so the bytes are the ones a real User would send.
//!
//! The answer's DCC signature is not checked here (the generator measures the gateway; the
//! gateway's tests check its signatures with xmlsec1).

use bytes::Bytes;

use dccgw::domain::{CommandVariant, RequestId};
use dccgw::duis::body::BodyError;
use dccgw::duis::critical::{read_transform_response, write_signed_precommand_request};
use dccgw::gbcs::{self, SignatureError};
use dccgw::signer::Signer;
use dccgw::xmldsig::{self, c14n::C14nLimits, SignError};

/// Every User's keys, by population index: XML signing for all, Digital Signing for the
/// suppliers and network operators.
pub struct UserKeys {
    pub xml: Vec<Signer>,
    pub digital: Vec<Option<Signer>>,
}

/// Why a Transform's answer could not be turned into its signed pre-command's request.
#[derive(Debug, thiserror::Error)]
pub enum CriticalError {
    #[error("the answer is not a Transform's answer with a pre-command")]
    NotATransform(#[source] BodyError),
    #[error("the answer names RequestID {got}, not {sent}")]
    OtherRequest { sent: RequestId, got: RequestId },
    #[error("the User holds no Digital Signing key")]
    NoKey,
    #[error("the pre-command cannot be signed")]
    PreCommand(#[source] SignatureError),
    #[error("the request cannot be XML-signed")]
    Sign(#[source] SignError),
}

/// The XML-signed request that carries back, as Command Variant `cv`, the pre-command in
/// `answer` (the answer to request `sent`) signed by User `user`.
pub fn signed_precommand_request(
    answer: &[u8],
    sent: &RequestId,
    cv: CommandVariant,
    keys: &UserKeys,
    user: usize,
) -> Result<Bytes, CriticalError> {
    let transform = read_transform_response(answer).map_err(CriticalError::NotATransform)?;
    if transform.request_id != *sent {
        return Err(CriticalError::OtherRequest {
            sent: *sent,
            got: transform.request_id,
        });
    }
    let digital = keys
        .digital
        .get(user)
        .and_then(Option::as_ref)
        .ok_or(CriticalError::NoKey)?;
    let xml_key = keys.xml.get(user).ok_or(CriticalError::NoKey)?;
    let signed =
        gbcs::sign_precommand(&transform.precommand, digital).map_err(CriticalError::PreCommand)?;
    let request = write_signed_precommand_request(sent, cv, transform.srv, &signed);
    let xml = xmldsig::sign_document(&request, xml_key, &C14nLimits::default())
        .map_err(CriticalError::Sign)?;
    Ok(Bytes::from(xml.into_bytes()))
}
