//! Tests of the GBCS module: frames on the public samples and on generated input, signatures
//! against openssl, each named use case's content field by field against the samples, the
//! DUIS-body encoding, and the SRV table against the public mapping table.

mod body;
mod credentials;
mod dlms;
pub(super) mod frames;
mod reads;
mod signatures;
mod table;
mod tariff;

use crate::domain::Eui64;
use crate::gbcs::dlms::AccessRequest;
use crate::gbcs::{Apdu, GeneralSigning, MacProtected};

/// The public test data's supplier, network operator and electricity meter.
pub(super) const SUPPLIER: Eui64 = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0]);
pub(super) const NETWORK_OPERATOR: Eui64 =
    Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x02, 0, 0]);
pub(super) const METER: Eui64 = Eui64::from_bytes([0, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0]);

/// Two DLMS access requests compared specification by specification and value by value, then
/// as bytes.
pub(super) fn assert_same_request(ours: &[u8], sample: &[u8], name: &str) {
    let a = AccessRequest::decode(ours).unwrap();
    let b = AccessRequest::decode(sample).unwrap();
    assert_eq!(a.invoke_id, b.invoke_id, "{name}: invoke id");
    assert_eq!(a.specs.len(), b.specs.len(), "{name}: how many attributes");
    for (i, (x, y)) in a.specs.iter().zip(&b.specs).enumerate() {
        assert_eq!(x, y, "{name}: specification {i}");
    }
    assert_eq!(a.data.len(), b.data.len(), "{name}: how many values");
    for (i, (x, y)) in a.data.iter().zip(&b.data).enumerate() {
        assert_eq!(x, y, "{name}: value {i}");
    }
    assert_eq!(ours, sample, "{name}: bytes");
}

/// `frame` with the signature field of `sample` (a signature made with a key the public data
/// does not include).
pub(super) fn frame_with_signature_of(mut frame: GeneralSigning, sample: &Apdu) -> GeneralSigning {
    frame.signature = sample.general_signing().signature.clone();
    frame
}

/// `inner` behind a MAC header with `sample`'s invocation counter and MAC.
pub(super) fn mac_wrapped_like(inner: GeneralSigning, sample: &Apdu) -> Apdu {
    let Apdu::Mac(m) = sample else {
        panic!("the sample has no MAC header")
    };
    Apdu::Mac(MacProtected {
        invocation_counter: m.invocation_counter,
        inner,
        mac: m.mac,
    })
}
