//! Known answers from real DUIS signatures: the canonical bytes must reproduce a real digest
//! and a real ECDSA P-256 signature, found through the element look-ups the verifier will use.

use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use super::super::{canonicalize, children, root, text_content, C14nLimits, C14nMode, Element};
use crate::duis::DS_NAMESPACE;
use crate::testing::anchors;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The parts of an enveloped signature a verifier reads.
struct Signed {
    doc: Vec<u8>,
    signature: Element,
    signed_info: Element,
    digest_value: Vec<u8>,
    signature_value: Vec<u8>,
}

fn child(doc: &[u8], parent: &Element, local: &str) -> Element {
    children(doc, parent.span.clone(), &C14nLimits::default())
        .expect("well-formed")
        .into_iter()
        .find(|e| e.is(DS_NAMESPACE, local))
        .unwrap_or_else(|| panic!("no ds:{local}"))
}

fn base64_text(doc: &[u8], element: &Element) -> Vec<u8> {
    let text = text_content(doc, element.span.clone(), &C14nLimits::default()).expect("text");
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(compact).expect("base64")
}

fn read_signed(relative: &str) -> Option<Signed> {
    let doc = std::fs::read(anchors()?.join(relative)).expect("sample is readable");
    let limits = C14nLimits::default();
    let top = root(&doc, &limits).expect("has a root");
    let signature = children(&doc, top.span.clone(), &limits)
        .expect("well-formed")
        .pop()
        .expect("the root has children");
    assert!(
        signature.is(DS_NAMESPACE, "Signature"),
        "last child is ds:Signature"
    );
    let signed_info = child(&doc, &signature, "SignedInfo");
    let reference = child(&doc, &signed_info, "Reference");
    assert_eq!(reference.attribute("URI"), Some(""));
    let digest_value = base64_text(&doc, &child(&doc, &reference, "DigestValue"));
    let signature_value = base64_text(&doc, &child(&doc, &signature, "SignatureValue"));
    Some(Signed {
        doc,
        signature,
        signed_info,
        digest_value,
        signature_value,
    })
}

/// SHA-256 of the document minus its signature, canonicalised in `mode`.
fn reference_digest(s: &Signed, mode: C14nMode) -> Vec<u8> {
    let mut out = Vec::new();
    canonicalize(
        &s.doc,
        None,
        Some(s.signature.span.clone()),
        mode,
        &C14nLimits::default(),
        &mut out,
    )
    .expect("canonicalises");
    digest(&SHA256, &out).as_ref().to_vec()
}

fn signature_verifies(s: &Signed) -> bool {
    let pem = std::fs::read(
        anchors()
            .expect("anchors were found a moment ago")
            .join("certs/zaz1-public/dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem"),
    )
    .expect("certificate is readable");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let cert = pem.parse_x509().expect("certificate");
    let key = cert.public_key().subject_public_key.data.to_vec();
    let mut signed_info = Vec::new();
    canonicalize(
        &s.doc,
        Some(s.signed_info.span.clone()),
        None,
        C14nMode::Exclusive,
        &C14nLimits::default(),
        &mut signed_info,
    )
    .expect("canonicalises");
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
        .verify(&signed_info, &s.signature_value)
        .is_ok()
}

#[test]
fn real_response_digest_and_signature_reproduce() {
    let Some(s) = read_signed("duis-samples/responses/signing-tool__readfw-response.xml") else {
        return;
    };
    assert_eq!(s.signature_value.len(), 64, "raw r||s");
    assert_eq!(reference_digest(&s, C14nMode::Inclusive), s.digest_value);
    // The Reference has no canonicalisation transform, so the node-set is made octets by
    // inclusive c14n; the exclusive form (the root's unused ns3/ra declarations dropped) is
    // a different digest.
    assert_ne!(reference_digest(&s, C14nMode::Exclusive), s.digest_value);
    assert!(signature_verifies(&s));
}

#[test]
fn bad_signature_sample_keeps_its_digest_but_fails() {
    let Some(s) =
        read_signed("duis-samples/negative/signing-tool__readfw-response-badsignature.xml")
    else {
        return;
    };
    assert_eq!(reference_digest(&s, C14nMode::Inclusive), s.digest_value);
    assert!(!signature_verifies(&s));
}

#[test]
fn signed_request_sample_carries_placeholders_not_a_known_answer() {
    let relative =
        "duis-samples/requests/signing-tool__ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS-signed.XML";
    let Some(s) = read_signed(relative) else {
        return;
    };
    // Its own comment says so: digest and signature are base64("default").
    assert_eq!(s.digest_value, b"default");
    assert_eq!(s.signature_value, b"default");
    assert_ne!(reference_digest(&s, C14nMode::Inclusive), s.digest_value);
}
