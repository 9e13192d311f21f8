//! The one signature-reading path on arbitrary bytes, against its multi-pass oracle
//! (`xmldsig::oracle`, reachable under cargo-fuzz's `--cfg fuzzing`): whatever the reading path
//! reads, the oracle reads the same signature and the same signed bytes (or the same digest
//! mismatch); the oracle may refuse only where its canonicalisation walks refuse. What it reads
//! must be where it says, and verifying with an arbitrary key must fail cleanly. Nothing may
//! panic.
#![no_main]

use dccgw::xmldsig::c14n::C14nLimits;
use dccgw::xmldsig::{oracle, prepare, VerifyError};
use libfuzzer_sys::fuzz_target;

/// A valid uncompressed P-256 point is not needed: verification must fail, not panic.
const KEY: [u8; 65] = [4; 65];

fuzz_target!(|data: &[u8]| {
    let limits = C14nLimits::default();
    let want = oracle::prepare(data, &limits);
    let Ok(prepared) = prepare(data, &limits) else {
        // The reading path may refuse only what the oracle refuses too (or cannot canonicalise).
        assert!(
            matches!(
                want,
                Err(_) | Ok((_, Err(VerifyError::Canonicalisation(_))))
            ),
            "the reading path refused what the oracle read: {want:?}"
        );
        return;
    };
    let got = (
        prepared.signature.clone(),
        prepared.signed_bytes().map(<[u8]>::to_vec),
    );
    assert_eq!(Ok(got), want, "the reading path and the oracle disagree");
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
