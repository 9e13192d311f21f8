//! The signature reader on arbitrary bytes: reading the whole document and reading at the span
//! the whole read found must agree, and verifying with an arbitrary key must fail cleanly.
//! Nothing may panic.
#![no_main]

use dccgw::xmldsig::c14n::C14nLimits;
use dccgw::xmldsig::{read_signature, read_signature_at, verify_read};
use libfuzzer_sys::fuzz_target;

/// A valid uncompressed P-256 point is not needed: verification must fail, not panic.
const KEY: [u8; 65] = [4; 65];

fuzz_target!(|data: &[u8]| {
    let Ok(whole) = read_signature(data) else {
        return;
    };
    let at = read_signature_at(data, whole.signature.clone());
    assert_eq!(at.as_ref().ok(), Some(&whole), "reading at the span agrees");
    let _ = verify_read(data, &whole, &KEY, &C14nLimits::default());
});
