//! XML signatures in the DUIS profile: enveloped, whole document, SHA-256 digest, ECDSA P-256
//! over `SignedInfo` canonicalised exclusively, `KeyInfo` = issuer and serial.
//! Canonicalisation, the profile, reading and verifying, and signing are separate pieces, each
//! tested on its own. One function reads a signature, [`prepare`], for the gateway and the
//! command line alike. Layer 0: keys and randomness come in through [`SignBytes`].

pub mod c14n;
/// The multi-pass reader the one reading path is tested and fuzzed against (`--cfg fuzzing`, as
/// cargo-fuzz builds): never a path the gateway takes.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod oracle;
mod prepare;
mod profile;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

pub use prepare::{prepare, Prepared};
pub use profile::{
    decimal_to_bytes, ProfileError, SignatureElement, DS_NAMESPACE, ECDSA_SHA256,
    ENVELOPED_SIGNATURE, EXC_C14N, SHA256,
};
pub use sign::{sign_document, strip_signature, SignBytes, SignError};
pub use verify::{check_signer, verify_document, SignerRefusal, VerifyError};
