//! XML signatures in the DUIS profile (brief §5): enveloped, whole document, SHA-256 digest,
//! ECDSA P-256 over `SignedInfo` canonicalised exclusively, `KeyInfo` = issuer and serial.
//! Canonicalisation, reading the signature, verifying and signing are separate pieces, each
//! tested on its own. Layer 0: keys and randomness come in through [`SignBytes`].

pub mod c14n;
mod locate;
mod one_pass;
mod profile;
mod read_at;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

pub use one_pass::{prepare_at, Prepared};
pub use profile::{
    decimal_to_bytes, read_signature, read_signature_at, ProfileError, SignatureElement,
    DS_NAMESPACE, ECDSA_SHA256, ENVELOPED_SIGNATURE, EXC_C14N, SHA256,
};
pub use sign::{sign_document, strip_signature, SignBytes, SignError};
pub use verify::{
    check_signer, signed_bytes, verify_document, verify_read, SignerRefusal, VerifyError,
};
