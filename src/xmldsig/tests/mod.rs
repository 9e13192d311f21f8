//! Signing and verifying, piece by piece: the real known answers, round trips with a generated
//! key, one-byte tampering anywhere, and a profile that refuses anything else. The reading path
//! against its oracle is in `prepare/tests/`.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use time::macros::datetime;

use proptest::prelude::*;

use super::c14n::C14nLimits;
use super::*;
use crate::domain::SmkiRole;
use crate::identity::identity_from_pem;

pub(super) struct TestKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl TestKey {
    pub(super) fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self { pair, rng }
    }

    pub(super) fn public(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }
}

impl SignBytes for TestKey {
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        let sig = self
            .pair
            .sign(&self.rng, message)
            .map_err(|_| SignError::Key)?;
        sig.as_ref().try_into().map_err(|_| SignError::Key)
    }
    fn issuer_name(&self) -> &str {
        "CN=U1, OU=07"
    }
    fn serial_decimal(&self) -> &str {
        "50669612984035780968362471400449834504"
    }
}

pub(super) const REQUEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="5.4">
  <sr:Header>
    <sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000</sr:RequestID>
    <sr:CommandVariant>1</sr:CommandVariant>
    <sr:ServiceReference>4.1</sr:ServiceReference>
    <sr:ServiceReferenceVariant>4.1.1</sr:ServiceReferenceVariant>
  </sr:Header>
  <sr:Body>
    <sr:ReadInstantaneousImportRegisters/>
  </sr:Body>
</sr:Request>
"#;

pub(super) fn limits() -> C14nLimits {
    C14nLimits::default()
}

/// The signature `doc` holds, as the one reading path reads it.
fn read(doc: &[u8]) -> Result<SignatureElement, ProfileError> {
    prepare(doc, &limits()).map(|p| p.signature)
}

#[test]
fn signed_documents_verify_and_name_their_certificate() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    let sig = verify_document(signed.as_bytes(), &key.public(), &limits()).unwrap();
    assert_eq!(sig.issuer.to_string().replace(' ', ""), "CN=U1,OU=07");
    assert_eq!(
        sig.serial,
        decimal_to_bytes("50669612984035780968362471400449834504").unwrap()
    );
    // The signature is the root's last child; removing it gives back the input.
    assert_eq!(
        format!(
            "{}{}",
            &signed[..sig.signature.start],
            &signed[sig.signature.end..]
        ),
        REQUEST
    );
    assert_eq!(strip_signature(&signed, &limits()).unwrap(), REQUEST);
    assert_eq!(strip_signature(REQUEST, &limits()).unwrap(), REQUEST);
    // Another key does not verify it.
    let other = TestKey::new();
    assert_eq!(
        verify_document(signed.as_bytes(), &other.public(), &limits()),
        Err(VerifyError::SignatureValue)
    );
}

/// One changed byte in the header, body, SignedInfo or signature value: each refused.
#[test]
fn one_changed_byte_anywhere_is_refused() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    let sig = read(signed.as_bytes()).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("header", signed.replacen(":1000<", ":1001<", 1)),
        (
            "body",
            signed.replacen(
                "ReadInstantaneousImportRegisters/",
                "ReadInstantaneousExportRegisters/",
                1,
            ),
        ),
        (
            "whitespace",
            signed.replacen("  <sr:Body>", "   <sr:Body>", 1),
        ),
        (
            "SignedInfo",
            signed.replacen(
                "<ds:Reference URI=\"\">",
                "<ds:Reference URI=\"\" Id=\"r\">",
                1,
            ),
        ),
        ("signature value", {
            let v = &signed[sig.signature.clone()];
            let at = sig.signature.start + v.find("<ds:SignatureValue>").unwrap() + 19;
            let mut bytes = signed.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        }),
        ("digest value", {
            let at = signed.find("<ds:DigestValue>").unwrap() + 16;
            let mut bytes = signed.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        }),
    ];
    for (what, doc) in cases {
        assert_ne!(doc, signed, "{what}: the test did not change anything");
        let got = verify_document(doc.as_bytes(), &key.public(), &limits());
        assert!(
            matches!(got, Err(VerifyError::Digest | VerifyError::SignatureValue)),
            "{what}: {got:?}"
        );
    }
    // Changing a byte of SignedInfo that canonicalisation erases is no change at all.
    let same = signed.replacen("<ds:Reference URI=\"\">", "<ds:Reference  URI=\"\">", 1);
    assert!(verify_document(same.as_bytes(), &key.public(), &limits()).is_ok());
}

/// Signed requests each changed to break one rule of the profile, and the refusal each gets.
pub(super) fn outside_the_profile(signed: &str) -> Vec<(&'static str, String, ProfileError)> {
    let swap = |from: &str, to: &str| signed.replacen(from, to, 1);
    vec![
        ("rsa", swap(ECDSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"), ProfileError::Algorithm { field: "signature", found: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256".into() }),
        ("inclusive c14n", swap(EXC_C14N, "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"), ProfileError::Algorithm { field: "canonicalization", found: "http://www.w3.org/TR/2001/REC-xml-c14n-20010315".into() }),
        ("sha1", swap(SHA256, "http://www.w3.org/2000/09/xmldsig#sha1"), ProfileError::Algorithm { field: "digest", found: "http://www.w3.org/2000/09/xmldsig#sha1".into() }),
        ("uri", swap("URI=\"\"", "URI=\"#x\""), ProfileError::ReferenceUri),
        ("two transforms", swap("</ds:Transforms>", "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>"), ProfileError::Structure("Transforms")),
        ("xpath transform child", swap("enveloped-signature\"/>", "enveloped-signature\"><ds:XPath>1</ds:XPath></ds:Transform>"), ProfileError::Structure("Transform")),
        ("second reference", swap("</ds:SignedInfo>", "<ds:Reference URI=\"\"/></ds:SignedInfo>"), ProfileError::Structure("Reference")),
        ("not last", swap("</sr:Request>", "<sr:Extra/></sr:Request>"), ProfileError::Missing),
        ("serial", swap("50669612984035780968362471400449834504", "-1"), ProfileError::SerialNumber),
        ("key value", swap("<ds:X509Data>", "<ds:KeyValue/><ds:X509Data>"), ProfileError::Structure("KeyInfo")),
        ("short digest", swap("<ds:DigestValue>", "<ds:DigestValue>AAAA"), ProfileError::Encoding("DigestValue")),
        ("doctype", format!("<!DOCTYPE r>{}", &signed[signed.find("<sr:Request").unwrap()..]), ProfileError::Forbidden),
        ("signature in the header", swap("<sr:Header>", &format!("<sr:Header>{}", &signed[signed.find("<ds:Signature").unwrap()..signed.find("</sr:Request>").unwrap()])), ProfileError::Multiple),
        ("field too long", swap("<ds:X509IssuerName>", &format!("<ds:X509IssuerName>{}", " ".repeat(4096))), ProfileError::Structure("X509IssuerName")),
        ("text too long between fields", swap("<ds:SignatureValue>", &format!("{}<ds:SignatureValue>", " ".repeat(4097))), ProfileError::Structure("Signature")),
    ]
}

#[test]
fn the_profile_refuses_anything_else() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    for (what, doc, want) in outside_the_profile(&signed) {
        assert_ne!(doc, signed, "{what}: the test did not change anything");
        assert_eq!(read(doc.as_bytes()), Err(want), "{what}");
    }
    assert_eq!(read(REQUEST.as_bytes()), Err(ProfileError::Missing));
}

/// The published known answer: a response signed by the DCC's signing tool verifies with the
/// published certificate; its bad-signature twin does not.
#[test]
fn known_answers_from_the_dcc_signing_tool() {
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let cert = std::fs::read(
        anchors.join("certs/zaz1-public/dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem"),
    )
    .unwrap();
    let cert = identity_from_pem(&cert).unwrap();
    assert_eq!(cert.role, SmkiRole::DccXmlSigning);
    let sample = |p: &str| std::fs::read(anchors.join("duis-samples").join(p)).unwrap();
    let good = sample("responses/signing-tool__readfw-response.xml");
    let sig = verify_document(&good, &cert.public_key, &limits()).unwrap();
    assert_eq!(sig.serial, decimal_to_bytes(&cert.serial_decimal).unwrap());
    assert!(
        cert.issuer.matches(&sig.issuer),
        "{} vs {}",
        cert.issuer,
        sig.issuer
    );
    assert_eq!(
        verify_document(
            &sample("negative/signing-tool__readfw-response-badsignature.xml"),
            &cert.public_key,
            &limits()
        ),
        Err(VerifyError::SignatureValue)
    );
    assert_eq!(
        read(&sample(
            "negative/signing-tool__readfw-response-no-signature.xml"
        )),
        Err(ProfileError::Missing)
    );
    let renumbered = read(&sample(
        "negative/signing-tool__readfw-response-nonexist-serial.xml",
    ))
    .unwrap();
    assert_ne!(renumbered.serial, sig.serial);
    // The base64 in SignatureValue is wrapped with `&#13;` and a space, as real signers do.
    let text = String::from_utf8(good.clone()).unwrap();
    assert!(text.contains("&#13;"));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .encode(sig.value)
            .len(),
        88
    );
}

#[test]
fn signer_checks_in_order() {
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let pem =
        std::fs::read(anchors.join("certs/zaz1-public/xml-sign-90B3D51F30010000-ds.pem")).unwrap();
    let cert = identity_from_pem(&pem).unwrap();
    let supplier = cert.user_id;
    let other = "90-B3-D5-1F-30-02-00-00".parse().unwrap();
    let now = datetime!(2026-01-01 00:00 UTC);
    let before = cert.not_before - time::Duration::days(1);
    assert_eq!(check_signer(&cert, true, supplier, now), Ok(()));
    assert_eq!(
        check_signer(&cert, false, supplier, now),
        Err(SignerRefusal::Untrusted)
    );
    assert_eq!(
        check_signer(&cert, true, supplier, before),
        Err(SignerRefusal::NotValidNow)
    );
    assert_eq!(
        check_signer(&cert, true, other, now),
        Err(SignerRefusal::OtherUser {
            certificate: supplier,
            originator: other
        })
    );
    let dsp = std::fs::read(anchors.join("certs/zaz1-public/dsp-xml-sign-90B3D51F30000002-ds.pem"))
        .unwrap();
    let dsp = identity_from_pem(&dsp).unwrap();
    assert_eq!(
        check_signer(&dsp, true, dsp.user_id, now),
        Err(SignerRefusal::Role(SmkiRole::DccXmlSigning))
    );
}

mod decimal {
    use super::*;

    proptest! {
        #[test]
        fn serials_convert_like_u128(n in any::<u128>()) {
            let bytes = decimal_to_bytes(&n.to_string()).unwrap();
            let expected = n.to_be_bytes();
            let first = expected.iter().position(|&b| b != 0).unwrap_or(15);
            prop_assert_eq!(bytes, expected[first..].to_vec());
        }

        /// Up to the 60 digits accepted, as the digit-by-digit schoolbook method gives.
        #[test]
        fn long_serials_convert_digit_by_digit(s in "[0-9]{1,60}") {
            let mut want: Vec<u8> = vec![0];
            for d in s.bytes().map(|b| b - b'0') {
                let mut carry = u16::from(d);
                for byte in want.iter_mut().rev() {
                    let v = u16::from(*byte) * 10 + carry;
                    *byte = (v & 0xFF) as u8;
                    carry = v >> 8;
                }
                if carry > 0 {
                    want.insert(0, carry as u8);
                }
            }
            let first = want.iter().position(|&b| b != 0).unwrap_or(want.len() - 1);
            prop_assert_eq!(decimal_to_bytes(&s), Some(want.split_off(first)));
        }

        #[test]
        fn reading_never_panics(doc in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(prepared) = prepare(&doc, &limits()) {
                let _ = prepared.verify(&[4; 65]);
            }
        }
    }

    #[test]
    fn non_decimals_are_refused() {
        for bad in ["", "-1", "1.0", " 1", "0x10", &"9".repeat(61)] {
            assert_eq!(decimal_to_bytes(bad), None, "{bad}");
        }
        assert_eq!(decimal_to_bytes("0"), Some(vec![0]));
        assert_eq!(decimal_to_bytes("256"), Some(vec![1, 0]));
        assert_eq!(decimal_to_bytes(&"0".repeat(60)), Some(vec![0]));
        assert_eq!(decimal_to_bytes(&"9".repeat(60)).map(|b| b.len()), Some(25));
    }
}

/// Every file under `dir`, recursively.
pub(super) fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

thread_local! {
    pub(super) static SIGNED: String = sign_document(REQUEST, &TestKey::new(), &limits()).unwrap();
}

/// With a byte-order mark, the spans read are still the document's own, and a BOM-prefixed
/// signed document verifies.
#[test]
fn a_byte_order_mark_does_not_shift_the_spans() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), signed.as_bytes()].concat();
    let whole = verify_document(&with_bom, &key.public(), &limits()).unwrap();
    assert!(with_bom[whole.signature.clone()].starts_with(b"<ds:Signature"));
    assert!(with_bom[whole.signature.clone()].ends_with(b"</ds:Signature>"));
    assert!(with_bom[whole.signed_info.clone()].starts_with(b"<ds:SignedInfo>"));
    assert!(with_bom[whole.signed_info.clone()].ends_with(b"</ds:SignedInfo>"));
}
