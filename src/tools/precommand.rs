//! `dccgw sign-precommand`: what the DCC's signing tools do for a critical request. It reads a
//! Transform's answer (the Command Variant 4 request's signed `I0`), signs the pre-command in it
//! with the User's Digital Signing key (ECDSA P-256 over the pre-command after its first byte,
//! appended as `0x40` and `r‖s`), and writes the request that sends it back: Command Variant 5
//! (or 6, 7) with `SignedPreCommand`, under the Transform's RequestID, unsigned or XML-signed.

use std::path::Path;

use crate::domain::{CommandVariant, SmkiRole};
use crate::duis::critical::{read_transform_response, write_signed_precommand_request};
use crate::gbcs;
use crate::signer::{Signer, SignerError};

use super::ToolError;

/// The Digital Signing key and certificate, and the XML-signing pair if the request is to be
/// signed too.
pub struct PreCommandKeys<'a> {
    pub key: &'a Path,
    pub cert: &'a Path,
    pub xml: Option<(&'a Path, &'a Path)>,
}

/// The signed pre-command's request, from the Transform answer `response`.
pub fn sign_precommand(
    response: &[u8],
    keys: &PreCommandKeys<'_>,
    variant: CommandVariant,
) -> Result<String, ToolError> {
    if !matches!(variant.get(), 5..=7) {
        return Err(ToolError::CommandVariant(variant));
    }
    let transform = read_transform_response(response).map_err(ToolError::NotATransform)?;
    let signer = Signer::load(keys.key, keys.cert, None)?;
    let role = signer.identity().role;
    if !matches!(role, SmkiRole::Supplier | SmkiRole::NetworkOperator) {
        return Err(ToolError::Key(SignerError::Role {
            path: keys.cert.to_owned(),
            role,
            expected: SmkiRole::Supplier,
        }));
    }
    let signed =
        gbcs::sign_precommand(&transform.precommand, &signer).map_err(ToolError::PreCommand)?;
    let request =
        write_signed_precommand_request(&transform.request_id, variant, transform.srv, &signed);
    match keys.xml {
        Some((key, cert)) => super::sign(request.as_bytes(), key, cert, None),
        None => Ok(request),
    }
}
