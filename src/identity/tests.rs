use std::path::PathBuf;

use der::asn1::{Any, ObjectIdentifier, SetOfVec};
use der::{Decode, Encode, Tag};
use proptest::prelude::*;
use time::macros::datetime;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{RdnSequence, RelativeDistinguishedName};

use super::*;
use crate::pki::{Ca, LeafSpec, Usage, Validity};

/// The public anchors (`DCCGW_ANCHORS`, default `../shared/anchors`), or `None` with a message
/// when they are absent; under `CI=true` their absence fails the test.
fn anchor_certs() -> Option<PathBuf> {
    let root = std::env::var_os("DCCGW_ANCHORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/anchors"));
    let dir = root.join("certs/zaz1-public");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("anchors not found at {} (set DCCGW_ANCHORS)", dir.display());
    }
    eprintln!(
        "SKIPPED: anchors not found at {} (set DCCGW_ANCHORS)",
        dir.display()
    );
    None
}

fn eui(s: &str) -> Eui64 {
    Eui64::from_compact_hex(s).unwrap()
}

/// Every public certificate in the anchors, as `openssl x509 -subject -serial` shows it:
/// file, User ID, role code, CN, serial (hex).
const ANCHORS: [(&str, &str, u8, Option<&str>, &str); 19] = [
    (
        "Z1-accessControlBroker-dSPXmlSign.pem",
        "90B3D51F30000002",
        0x89,
        None,
        "0F4889EF197D41E9016966F9D5AB0402",
    ),
    (
        "Z1-accessControlBroker-ds.pem",
        "90B3D51F30000002",
        0x04,
        None,
        "587FE59553E2675B0C0E2A5C402A9F61",
    ),
    (
        "Z1-networkOperator-ds.pem",
        "90B3D51F30020000",
        0x03,
        None,
        "4FC0252E553ECD05D4F72DCFAD55C8E7",
    ),
    (
        "Z1-recovery-ds.pem",
        "90B3D51F30000001",
        0x01,
        None,
        "469AFEC2E7C0CAAEC8A400769B702BC8",
    ),
    (
        "Z1-supplier-ds.pem",
        "90B3D51F30010000",
        0x02,
        Some("GITTESTSUPPLIER"),
        "4FBC525201A1D7586C1BC1C4734DEB9F",
    ),
    (
        "Z1-supplier2-ds.pem",
        "90B3D51F30030000",
        0x02,
        Some("GITTESTSUPPLIER2"),
        "39EAFF0055CE4DAF085AC874C7C84BD3",
    ),
    (
        "Z1-transitionalCoS-ds.pem",
        "90B3D51F30000004",
        0x05,
        None,
        "3CE369AB08F102975C5490D6B88FC066",
    ),
    (
        "Z1-wanProvider-ds.pem",
        "90B3D51F30000007",
        0x06,
        None,
        "7C758B23CC7FE6923B01921F557D8B0A",
    ),
    (
        "Z1b-accessControlBroker-ds.pem",
        "90B3D51F30000002",
        0x04,
        None,
        "3A96BD63616C4F886DA7F89969772424",
    ),
    (
        "Z1b-networkOperator-ds.pem",
        "90B3D51F30020000",
        0x03,
        None,
        "68AAC8A913BCB4D9634CAE09D909A533",
    ),
    (
        "Z1b-recovery-ds.pem",
        "90B3D51F30000001",
        0x01,
        None,
        "5E0F37F0C8BC37A4BB1259F928C273CB",
    ),
    (
        "Z1b-supplier-ds.pem",
        "90B3D51F30010000",
        0x02,
        Some("GITTESTSUPPLIER"),
        "4A07BC01D9253B51FAF01F7EC7DA5B2F",
    ),
    (
        "Z1b-transitionalCoS-ds.pem",
        "90B3D51F30000004",
        0x05,
        None,
        "52881F0CB3926FDFAC03FC8827AA11BD",
    ),
    (
        "Z1b-wanProvider-ds.pem",
        "90B3D51F30000007",
        0x06,
        None,
        "491F49C6665E62B929E1CF95FF9A71E7",
    ),
    // OU=137: the decimal form of 0x89 the pre-1.4.1 tooling wrote.
    (
        "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem",
        "90B3D51F30000002",
        0x89,
        None,
        "261E9CCC40A78FD13D83BCE07DACFE08",
    ),
    (
        "dsp-xml-sign-90B3D51F30000002-ds.pem",
        "90B3D51F30000002",
        0x89,
        None,
        "7DAC7283AAD29BDD23C9EFBFDDB52A41",
    ),
    (
        "xml-sign-00DB123456780004-ds.pem",
        "00DB123456780004",
        0x87,
        None,
        "1C063B7B4F241AADA23FFFF28E88B927",
    ),
    (
        "xml-sign-90B3D51F30010000-ds.pem",
        "90B3D51F30010000",
        0x87,
        None,
        "14BE4AD2EA1D0E4EC7F7156BD24624A7",
    ),
    (
        "xml-sign-90B3D51F30020000-ds.pem",
        "90B3D51F30020000",
        0x87,
        None,
        "1ECC6ED40F92A82835DB58174B4A666D",
    ),
];

#[test]
fn every_anchor_certificate_yields_its_identity() {
    let Some(dir) = anchor_certs() else { return };
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pem"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = ANCHORS.iter().map(|a| a.0.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "the table covers every anchor certificate");

    let z1: DistinguishedName = "CN=Z1,OU=07".parse().unwrap();
    for (file, id, role, cn, serial_hex) in ANCHORS {
        let pem = std::fs::read(dir.join(file)).unwrap();
        let got = identity_from_pem(&pem).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(got.user_id, eui(id), "{file}");
        assert_eq!(got.role, SmkiRole::from_code(role), "{file}");
        assert_eq!(got.common_name.as_deref(), cn, "{file}");
        let hex: String = got.serial.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, serial_hex, "{file}");
        assert!(got.key_is_p256, "{file}");
        assert_eq!(got.public_key.len(), 65, "{file}: uncompressed P-256 point");
        assert!(got.issuer.matches(&z1), "{file}: issuer {}", got.issuer);
        assert_eq!(got.issuer.to_string(), "CN=Z1,OU=07", "{file}");
        // Where the file name carries the User ID, it is the one in the certificate.
        if let Some(named) = file.split(['-', '.']).find(|p| p.len() == 16) {
            assert_eq!(got.user_id, eui(named), "{file}");
        }
    }
}

#[test]
fn anchor_serial_and_validity_as_published() {
    let Some(dir) = anchor_certs() else { return };
    let pem = std::fs::read(dir.join("dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem")).unwrap();
    let got = identity_from_pem(&pem).unwrap();
    // The serial the anchors' README gives for the known-answer signature.
    assert_eq!(got.serial_decimal, "50669612984035780968362471400449834504");
    assert_eq!(got.not_before, datetime!(2018-01-01 00:00:00 UTC));
    assert_eq!(got.not_after, datetime!(2118-01-01 00:00:00 UTC));
    assert!(got.is_valid_at(datetime!(2030-06-01 00:00:00 UTC)));
    assert!(!got.is_valid_at(datetime!(2017-12-31 23:59:59 UTC)));

    let pem = std::fs::read(dir.join("Z1-supplier-ds.pem")).unwrap();
    let got = identity_from_pem(&pem).unwrap();
    assert_eq!(
        got.subject.to_string(),
        "x500UniqueIdentifier=#03090090B3D51F30010000,OU=02,CN=GITTESTSUPPLIER"
    );
    assert_eq!(got.not_after, datetime!(2025-10-29 23:59:59 UTC));
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
