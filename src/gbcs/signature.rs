//! The signature on a General Signing APDU, as the DCC's public tools make it: ECDSA P-256 with
//! SHA-256 over the frame's bytes after the tag byte up to the end of the content (the whole
//! pre-command but its first byte), appended as the length `0x40` and the raw `r‖s`. A User
//! signs a critical command's pre-command with its Digital Signing key; a device signs its
//! responses and alerts to critical commands the same way. The ECDSA operation is the caller's
//! ([`SignDigitally`]), so keys stay in the layer that owns them.

use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use super::frame::{Apdu, GeneralSigning, SignatureField};
use super::FrameError;

/// An ECDSA P-256 key that signs bytes.
pub trait SignDigitally {
    /// The raw `r‖s` signature over `message` (SHA-256 inside).
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignatureError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the frame carries no signature")]
    Unsigned,
    #[error("the frame is signed already")]
    AlreadySigned,
    #[error("the signature does not verify with the key")]
    Invalid,
    #[error("the signed frame is not the pre-command followed by its signature")]
    NotThePreCommand,
    #[error("the key refused to sign")]
    Key,
}

/// The bytes a signature on `frame` signs: its encoding without the signature field, less the
/// tag byte.
pub fn signed_bytes(frame: &GeneralSigning) -> Result<Vec<u8>, FrameError> {
    let mut bytes = frame.encode_unsigned()?;
    bytes.remove(0);
    Ok(bytes)
}

/// Signs `frame`, which must carry no signature yet (absent or empty).
pub fn sign(
    mut frame: GeneralSigning,
    key: &dyn SignDigitally,
) -> Result<GeneralSigning, SignatureError> {
    if let SignatureField::Ecdsa(_) = frame.signature {
        return Err(SignatureError::AlreadySigned);
    }
    frame.signature = SignatureField::Ecdsa(key.sign(&signed_bytes(&frame)?)?);
    Ok(frame)
}

/// Signs a pre-command as a User does (the DCC tools' `signGroupingHeader`): the result is the
/// pre-command's bytes, `0x40` and the signature.
pub fn sign_precommand(
    precommand: &[u8],
    key: &dyn SignDigitally,
) -> Result<Vec<u8>, SignatureError> {
    let frame = GeneralSigning::decode(precommand)?;
    if frame.signature != SignatureField::Absent {
        return Err(SignatureError::AlreadySigned);
    }
    Ok(sign(frame, key)?.encode()?)
}

/// Verifies `frame`'s signature with `public_key` (an uncompressed P-256 point, 65 octets).
pub fn verify(frame: &GeneralSigning, public_key: &[u8]) -> Result<(), SignatureError> {
    let SignatureField::Ecdsa(sig) = &frame.signature else {
        return Err(SignatureError::Unsigned);
    };
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(&signed_bytes(frame)?, sig)
        .map_err(|_| SignatureError::Invalid)
}

/// Verifies the signature on a frame as it travels (behind a MAC header or not).
pub fn verify_apdu(apdu: &Apdu, public_key: &[u8]) -> Result<(), SignatureError> {
    verify(apdu.general_signing(), public_key)
}

/// The check on a User's signed pre-command (Command Variants 5–7): `signed` must be exactly
/// `precommand` (the bytes the DCC returned for the same request), `0x40` and a signature that
/// verifies with the User's Digital Signing key. Returns the signed frame.
pub fn verify_signed_precommand(
    precommand: &[u8],
    signed: &[u8],
    public_key: &[u8],
) -> Result<GeneralSigning, SignatureError> {
    let frame = GeneralSigning::decode(signed)?;
    let SignatureField::Ecdsa(_) = frame.signature else {
        return Err(SignatureError::Unsigned);
    };
    if signed.len() != precommand.len() + 65 || !signed.starts_with(precommand) {
        return Err(SignatureError::NotThePreCommand);
    }
    verify(&frame, public_key)?;
    Ok(frame)
}
