//! The one signature-reading path on arbitrary bytes: what it reads must be where it says
//! (the signature and `SignedInfo` are elements of the document, one inside the other), and
//! verifying with an arbitrary key must fail cleanly. Nothing may panic.
#![no_main]

use dccgw::xmldsig::c14n::C14nLimits;
use dccgw::xmldsig::{prepare, VerifyError};
use libfuzzer_sys::fuzz_target;

/// A valid uncompressed P-256 point is not needed: verification must fail, not panic.
const KEY: [u8; 65] = [4; 65];

fuzz_target!(|data: &[u8]| {
    let Ok(prepared) = prepare(data, &C14nLimits::default()) else {
        return;
    };
    let sig = &prepared.signature;
    let (outer, inner) = (&sig.signature, &sig.signed_info);
    assert!(outer.start <= inner.start && inner.end <= outer.end && outer.end <= data.len());
    assert!(data[outer.clone()].starts_with(b"<") && data[outer.clone()].ends_with(b">"));
    assert!(data[inner.clone()].starts_with(b"<") && data[inner.clone()].ends_with(b">"));
    assert!(matches!(
        prepared.verify(&KEY),
        Err(VerifyError::Digest | VerifyError::SignatureValue)
    ));
});
