mod anchors;

use der::asn1::{Any, ObjectIdentifier, SetOfVec};
use der::{Decode, Encode, Tag};
use proptest::prelude::*;
use time::macros::datetime;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{RdnSequence, RelativeDistinguishedName};

use super::*;
use crate::pki::{Ca, LeafSpec, Usage, Validity};

fn eui(s: &str) -> Eui64 {
    Eui64::from_compact_hex(s).unwrap()
}

fn generated(spec_user: Option<Eui64>) -> Vec<u8> {
    let now = datetime!(2026-01-01 00:00:00 UTC);
    let ca = Ca::generate("test IA", Validity::days_from(now, 10)).unwrap();
    let spec = LeafSpec {
        common_name: Some("cn".to_owned()),
        user_id: spec_user,
        ..LeafSpec::new(
            SmkiRole::XmlSigning,
            eui("90B3D51F30010000"),
            Usage::XmlSigning,
            Validity::days_from(now, 5),
        )
    };
    ca.issue(&spec).unwrap().cert_der
}

/// A copy of `der` with its subject replaced (the signature no longer verifies; identity
/// extraction does not look at it).
fn with_subject(der: &[u8], attrs: &[(&str, Tag, &[u8])]) -> Vec<u8> {
    let mut cert = x509_cert::Certificate::from_der(der).unwrap();
    let rdns = attrs
        .iter()
        .map(|(oid, tag, value)| {
            let mut set = SetOfVec::new();
            let oid = ObjectIdentifier::new_unwrap(oid);
            set.insert(AttributeTypeAndValue {
                oid,
                value: Any::new(*tag, *value).unwrap(),
            })
            .unwrap();
            RelativeDistinguishedName(set)
        })
        .collect();
    cert.tbs_certificate.subject = RdnSequence(rdns);
    cert.to_der().unwrap()
}

const UID: &str = "2.5.4.45";
const OU: &str = "2.5.4.11";
const ID_BITS: &[u8] = &[0, 0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0];

#[test]
fn refuses_what_is_not_an_smki_identity() {
    let good = generated(Some(eui("90B3D51F30010000")));
    let mut trailing = good.clone();
    trailing.push(0);
    let utf8 = Tag::Utf8String;
    let bits = Tag::BitString;
    let cases: Vec<(Vec<u8>, IdentityError)> = vec![
        (Vec::new(), IdentityError::NotACertificate),
        (
            b"not a certificate".to_vec(),
            IdentityError::NotACertificate,
        ),
        (
            good[..good.len() - 1].to_vec(),
            IdentityError::NotACertificate,
        ),
        (trailing, IdentityError::NotACertificate),
        (generated(None), IdentityError::NoUserId),
        (
            with_subject(&good, &[(OU, utf8, b"87")]),
            IdentityError::NoUserId,
        ),
        (
            with_subject(
                &good,
                &[
                    (UID, bits, ID_BITS),
                    (UID, bits, ID_BITS),
                    (OU, utf8, b"87"),
                ],
            ),
            IdentityError::MultipleUserIds,
        ),
        (
            with_subject(
                &good,
                &[(UID, Tag::OctetString, &ID_BITS[1..]), (OU, utf8, b"87")],
            ),
            IdentityError::UserIdEncoding,
        ),
        (
            with_subject(
                &good,
                &[
                    (UID, bits, &[4, 0x90, 0xB3, 0xD5, 0x1F, 0x30, 1, 0, 0]),
                    (OU, utf8, b"87"),
                ],
            ),
            IdentityError::UserIdEncoding,
        ),
        (
            with_subject(&good, &[(UID, bits, &ID_BITS[..8]), (OU, utf8, b"87")]),
            IdentityError::UserIdNotEightBytes(7),
        ),
        (
            with_subject(&good, &[(UID, bits, &[0]), (OU, utf8, b"87")]),
            IdentityError::UserIdNotEightBytes(0),
        ),
        (
            with_subject(&good, &[(UID, bits, ID_BITS)]),
            IdentityError::NoRole,
        ),
        (
            with_subject(
                &good,
                &[(UID, bits, ID_BITS), (OU, utf8, b"87"), (OU, utf8, b"02")],
            ),
            IdentityError::MultipleRoles,
        ),
        (
            with_subject(&good, &[(UID, bits, ID_BITS), (OU, utf8, b"8")]),
            IdentityError::RoleSyntax("8".to_owned()),
        ),
        (
            with_subject(&good, &[(UID, bits, ID_BITS), (OU, utf8, b"supplier")]),
            IdentityError::RoleSyntax("supplier".to_owned()),
        ),
    ];
    for (i, (der, want)) in cases.into_iter().enumerate() {
        assert_eq!(identity_from_der(&der), Err(want), "case {i}");
    }
    assert_eq!(identity_from_pem(b""), Err(IdentityError::NoPemCertificate));
    let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_eq!(
        identity_from_pem(key_only),
        Err(IdentityError::NoPemCertificate)
    );
}

#[test]
fn reads_a_generated_certificate() {
    let der = generated(Some(eui("00DB123456780004")));
    let got = identity_from_der(&der).unwrap();
    assert_eq!(got.user_id, eui("00DB123456780004"));
    assert_eq!(got.role, SmkiRole::XmlSigning);
    assert_eq!(got.common_name.as_deref(), Some("cn"));
    assert_eq!(got.issuer.to_string(), "CN=test IA,OU=07");
    assert_eq!(got.not_after, datetime!(2026-01-06 00:00:00 UTC));
    assert!(got.key_is_p256);
    assert_eq!(
        got.serial.len(),
        16,
        "sixteen random octets, top bit clear, first never zero"
    );
}

#[test]
fn role_codes_in_both_forms() {
    let cases = [
        ("02", Some(0x02)),
        ("7F", Some(0x7F)),
        ("7f", Some(0x7F)),
        ("87", Some(0x87)),
        ("137", Some(0x89)),
        ("255", Some(0xFF)),
        ("256", None),
        ("089", None),
        ("8", None),
        ("0x89", None),
        ("", None),
        ("1370", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_role(text), want.map(SmkiRole::from_code), "{text:?}");
    }
}

#[test]
fn serial_numbers_in_decimal() {
    let cases: [(&[u8], &[u8], &str); 5] = [
        (&[0], &[], "0"),
        (&[1], &[1], "1"),
        (&[0x00, 0x80], &[0x80], "128"),
        (&[0x01, 0x00], &[0x01, 0x00], "256"),
        (
            &[0x49, 0x96, 0x02, 0xD2],
            &[0x49, 0x96, 0x02, 0xD2],
            "1234567890",
        ),
    ];
    for (raw, magnitude, decimal) in cases {
        assert_eq!(
            serial(raw),
            Ok((magnitude.to_vec(), decimal.to_owned())),
            "{raw:?}"
        );
    }
    assert_eq!(serial(&[0xFF]), Err(IdentityError::NegativeSerial));
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = identity_from_der(&bytes);
        let _ = identity_from_pem(&bytes);
    }

    #[test]
    fn never_panics_on_damaged_certificates(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut der = good_der().clone();
        for (at, byte) in edits {
            let i = at.index(der.len());
            der[i] = byte;
        }
        let _ = identity_from_der(&der);
        let _ = identity_from_der(&der[..cut.index(der.len())]);
    }

    #[test]
    fn decimal_matches_u128(n in any::<u128>()) {
        prop_assert_eq!(to_decimal(&n.to_be_bytes()), n.to_string());
    }
}

fn good_der() -> &'static Vec<u8> {
    static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DER.get_or_init(|| generated(Some(eui("90B3D51F30010000"))))
}
