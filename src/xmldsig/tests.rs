//! Signing and verifying, piece by piece: the real known answers, round trips with a generated
//! key, one-byte tampering anywhere, and a profile that refuses anything else.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use time::macros::datetime;

use proptest::prelude::*;

use super::c14n::{self, C14nLimits};
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
    let sig = read_signature(signed.as_bytes()).unwrap();
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

#[test]
fn the_profile_refuses_anything_else() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    let swap = |from: &str, to: &str| signed.replacen(from, to, 1);
    let cases: Vec<(&str, String, ProfileError)> = vec![
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
    ];
    for (what, doc, want) in cases {
        assert_ne!(doc, signed, "{what}: the test did not change anything");
        assert_eq!(read_signature(doc.as_bytes()), Err(want), "{what}");
    }
    assert_eq!(
        read_signature(REQUEST.as_bytes()),
        Err(ProfileError::Missing)
    );
    let twice = signed.replacen(
        "<sr:Header>",
        &format!(
            "<sr:Header>{}",
            &signed[read_signature(signed.as_bytes()).unwrap().signature]
        ),
        1,
    );
    assert_eq!(
        read_signature(twice.as_bytes()),
        Err(ProfileError::Multiple)
    );
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
    let read = |p: &str| std::fs::read(anchors.join("duis-samples").join(p)).unwrap();
    let good = read("responses/signing-tool__readfw-response.xml");
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
            &read("negative/signing-tool__readfw-response-badsignature.xml"),
            &cert.public_key,
            &limits()
        ),
        Err(VerifyError::SignatureValue)
    );
    assert_eq!(
        read_signature(&read(
            "negative/signing-tool__readfw-response-no-signature.xml"
        )),
        Err(ProfileError::Missing)
    );
    let renumbered = read_signature(&read(
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
        fn read_signature_never_panics(doc in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_signature(&doc);
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

/// Reading the signature from the root's start tag and the signature alone gives exactly what
/// reading the whole document gives, and verifies the same.
#[test]
fn reading_at_the_parsers_span_equals_reading_the_whole() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    let whole = read_signature(signed.as_bytes()).unwrap();
    let at = read_signature_at(signed.as_bytes(), whole.signature.clone()).unwrap();
    assert_eq!(at, whole);
    verify_read(signed.as_bytes(), &at, &key.public(), &limits()).unwrap();
    assert!(read_signature_at(signed.as_bytes(), 0..10).is_err());
    assert!(read_signature_at(signed.as_bytes(), whole.signature.start..signed.len() + 1).is_err());

    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let doc =
        std::fs::read(anchors.join("duis-samples/responses/signing-tool__readfw-response.xml"))
            .unwrap();
    let cert = std::fs::read(
        anchors.join("certs/zaz1-public/dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem"),
    )
    .unwrap();
    let cert = identity_from_pem(&cert).unwrap();
    let whole = read_signature(&doc).unwrap();
    let at = read_signature_at(&doc, whole.signature.clone()).unwrap();
    assert_eq!(at, whole);
    verify_read(&doc, &at, &cert.public_key, &limits()).unwrap();
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

/// What the one-pass reader finds in the small document for the signature at `span`, where it
/// accepts, is what the quick-xml reader finds there.
fn fast_agrees(doc: &[u8], span: std::ops::Range<usize>) -> Result<bool, TestCaseError> {
    let Some(mini) = locate::mini_document(doc, &span) else {
        return Ok(false);
    };
    let fast = read_at::read_signature_fast(&mini.bytes);
    if let Some(sig) = &fast {
        prop_assert_eq!(Ok(sig.clone()), read_signature(&mini.bytes));
    }
    Ok(fast.is_some())
}

/// The span of the root's last element child, as the gateway's parser finds it.
pub(super) fn last_child(doc: &[u8]) -> Option<std::ops::Range<usize>> {
    let top = c14n::root(doc, &limits()).ok()?;
    Some(c14n::children(doc, top.span, &limits()).ok()?.pop()?.span)
}

#[test]
fn the_one_pass_reader_agrees_on_every_public_sample() {
    let signed = SIGNED.with(|s| s.clone());
    let span = last_child(signed.as_bytes()).unwrap();
    assert!(
        fast_agrees(signed.as_bytes(), span).unwrap(),
        "reads the signed request"
    );
    // A CR LF inside the issuer name: quick-xml keeps the CR, so the fast path must not
    // accept it with the line end normalised.
    let at = signed.find("<ds:X509IssuerName>").unwrap();
    let at = at + signed[at..].find('=').unwrap() + 1;
    let crlf = format!("{}\r\n{}", &signed[..at], &signed[at..]);
    let span = last_child(crlf.as_bytes()).unwrap();
    fast_agrees(crlf.as_bytes(), span).unwrap();
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let mut accepted = 0;
    for path in files_under(&anchors.join("duis-samples")) {
        let doc = std::fs::read(&path).unwrap();
        let Some(span) = last_child(&doc) else {
            continue;
        };
        let read = fast_agrees(&doc, span).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        accepted += usize::from(read);
    }
    assert!(accepted > 0, "some sample is signed and read");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    /// One byte of a signed request's signature replaced, or a piece of markup inserted in it:
    /// the one-pass reader accepts only what the quick-xml reader accepts, with the same fields.
    #[test]
    fn the_one_pass_reader_agrees_on_edited_signatures(
        at in 0usize..2000,
        byte in prop::sample::select(b"<>/&;:=\"' \r\n\tax0#".to_vec()),
        insert in prop::sample::select(vec!["", "<!--c-->", "<![CDATA[x]]>", "&#13;", "&amp;", "<ds:X/>", "\r\n", " a='1'"]),
    ) {
        let signed = SIGNED.with(|s| s.clone());
        let mut span = last_child(signed.as_bytes()).unwrap();
        let mut doc = signed.into_bytes();
        let i = span.start + at % span.len();
        if insert.is_empty() {
            doc[i] = byte;
        } else {
            doc.splice(i..i, insert.bytes());
            span.end += insert.len();
        }
        fast_agrees(&doc, span)?;
    }
}

thread_local! {
    pub(super) static SIGNED: String = sign_document(REQUEST, &TestKey::new(), &limits()).unwrap();
}

/// Found by fuzzing: with a byte-order mark, the spans read must still be the document's own
/// (they were three bytes short), so that a BOM-prefixed signed document verifies.
#[test]
fn a_byte_order_mark_does_not_shift_the_spans() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), signed.as_bytes()].concat();
    let whole = read_signature(&with_bom).unwrap();
    assert!(with_bom[whole.signature.clone()].starts_with(b"<ds:Signature"));
    assert!(with_bom[whole.signature.clone()].ends_with(b"</ds:Signature>"));
    assert_eq!(
        read_signature_at(&with_bom, whole.signature.clone()).unwrap(),
        whole
    );
    verify_read(&with_bom, &whole, &key.public(), &limits()).unwrap();
}
