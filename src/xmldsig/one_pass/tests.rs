//! The one pass against the multi-pass path (`read_signature_at`, then `signed_bytes`): the same
//! signature, the same signed bytes, the same errors — on real samples, on signed requests, on
//! spans that are not the signature, under tighter limits, and on random edits.

use std::ops::Range;

use proptest::prelude::*;

use super::super::c14n::C14nLimits;
use super::super::tests::{files_under, last_child, limits, TestKey, REQUEST, SIGNED};
use super::super::{
    read_signature_at, sign_document, signed_bytes, ProfileError, SignatureElement, VerifyError,
};
use super::{one_pass, prepare_at};
use crate::identity::identity_from_pem;

type Outcome = Result<(SignatureElement, Result<Vec<u8>, VerifyError>), ProfileError>;

/// What the multi-pass path gives: the signature read, then the signed bytes or the error.
fn multi_pass(doc: &[u8], span: Range<usize>, limits: &C14nLimits) -> Outcome {
    let sig = read_signature_at(doc, span)?;
    let mut buf = Vec::new();
    let signed = signed_bytes(doc, &sig, limits, &mut buf).map(|()| buf);
    Ok((sig, signed))
}

/// `prepare_at` gives what the multi-pass path gives, and so does the one pass wherever it
/// accepts; returns whether it accepted.
fn agree(doc: &[u8], span: Range<usize>, limits: &C14nLimits) -> Result<bool, TestCaseError> {
    let want = multi_pass(doc, span.clone(), limits);
    let outcome = |p: &super::Prepared| (p.signature.clone(), p.signed_bytes().map(<[u8]>::to_vec));
    let got = prepare_at(doc, span.clone(), limits).map(|p| outcome(&p));
    prop_assert_eq!(&got, &want);
    let fast = one_pass(doc, &span, limits);
    if let Some(p) = &fast {
        prop_assert_eq!(&Ok(outcome(p)), &want);
    }
    Ok(fast.is_some())
}

#[test]
fn a_signed_request_takes_the_one_pass_and_verifies() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    let doc = signed.as_bytes();
    let span = last_child(doc).unwrap();
    assert!(agree(doc, span.clone(), &limits()).unwrap(), "one pass");
    let prepared = prepare_at(doc, span.clone(), &limits()).unwrap();
    assert_eq!(prepared.verify(&key.public()), Ok(()));
    assert_eq!(
        prepared.verify(&TestKey::new().public()),
        Err(VerifyError::SignatureValue)
    );
    // A changed header: read, but the digest does not match.
    let tampered = signed.replacen(":1000<", ":1001<", 1);
    let prepared = prepare_at(tampered.as_bytes(), span.clone(), &limits()).unwrap();
    assert_eq!(prepared.verify(&key.public()), Err(VerifyError::Digest));
    assert!(agree(tampered.as_bytes(), span.clone(), &limits()).unwrap());
    // Spans that are not the signature: refused as before.
    for wrong in [0..10, span.start + 1..span.end, span.start..span.end - 1] {
        assert!(!agree(doc, wrong.clone(), &limits()).unwrap(), "{wrong:?}");
        assert!(prepare_at(doc, wrong, &limits()).is_err());
    }
}

/// A byte-order mark, CR LF line ends, comments and CDATA in the signature, a default namespace
/// on it (as the DCC's signing tool writes), and tighter limits than the reader's.
#[test]
fn awkward_documents_and_limits_agree() {
    let signed = SIGNED.with(|s| s.clone());
    let span = last_child(signed.as_bytes()).unwrap();
    let sig = &signed[span.clone()];
    let variants = [
        format!("\u{FEFF}{signed}"),
        signed.replace('\n', "\r\n"),
        signed.replacen("<ds:SignatureValue>", "<ds:SignatureValue><!--c-->", 1),
        signed.replacen("<ds:KeyInfo>", "<!--c--><ds:KeyInfo><![CDATA[ ]]>", 1),
        signed.replacen(
            sig,
            &sig.replace("ds:", "").replacen(
                "<Signature",
                "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"",
                1,
            ),
            1,
        ),
    ];
    for doc in &variants {
        let doc = doc.as_bytes();
        let span = last_child(doc).unwrap();
        agree(doc, span, &limits()).unwrap();
    }
    // The signature one level down, its prefix declared by the element between: the small
    // documents of the multi-pass path lack that declaration, so the one pass must not read it.
    let ds = " xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"";
    assert!(sig.contains(ds), "the signature declares ds");
    let bare = sig.replacen(ds, "", 1);
    let nested = signed
        .replacen(sig, &format!("<sr:Wrap{ds}>{bare}</sr:Wrap>"), 1)
        .replacen(ds, "", 1);
    assert!(!nested[..nested.find("<sr:Wrap").unwrap()].contains(ds));
    let at = nested.find("<ds:Signature").unwrap();
    let inner = at..at + bare.len();
    assert!(!agree(nested.as_bytes(), inner.clone(), &limits()).unwrap());
    assert!(prepare_at(nested.as_bytes(), inner, &limits()).is_err());

    let doc = signed.as_bytes();
    for tight in [
        C14nLimits {
            max_depth: 4,
            ..limits()
        },
        C14nLimits {
            max_attributes: 2,
            ..limits()
        },
        C14nLimits {
            max_bytes: doc.len() - 1,
            ..limits()
        },
        C14nLimits {
            max_depth: 100,
            max_attributes: 100,
            max_bytes: 1 << 24,
        },
    ] {
        agree(doc, span.clone(), &tight).unwrap();
    }
}

#[test]
fn agrees_on_every_public_sample() {
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let mut one_pass = 0;
    for path in files_under(&anchors.join("duis-samples")) {
        let doc = std::fs::read(&path).unwrap();
        let Some(span) = last_child(&doc) else {
            continue;
        };
        let check = |span: Range<usize>| {
            agree(&doc, span, &limits()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        one_pass += usize::from(check(span.clone()));
        check(span.start..span.end - 1);
        check(span.start + 1..span.end);
    }
    assert!(one_pass > 0, "some sample is signed and takes the one pass");

    // The known answer verifies through the one pass; its bad-signature twin does not.
    let cert = std::fs::read(
        anchors.join("certs/zaz1-public/dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem"),
    )
    .unwrap();
    let cert = identity_from_pem(&cert).unwrap();
    let samples = anchors.join("duis-samples");
    for (file, want) in [
        ("responses/signing-tool__readfw-response.xml", Ok(())),
        (
            "negative/signing-tool__readfw-response-badsignature.xml",
            Err(VerifyError::SignatureValue),
        ),
    ] {
        let doc = std::fs::read(samples.join(file)).unwrap();
        let span = last_child(&doc).unwrap();
        assert!(one_pass_accepts(&doc, &span), "{file}");
        let prepared = prepare_at(&doc, span, &limits()).unwrap();
        assert_eq!(prepared.verify(&cert.public_key), want, "{file}");
    }
}

fn one_pass_accepts(doc: &[u8], span: &Range<usize>) -> bool {
    one_pass(doc, span, &limits()).is_some()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    /// One byte of a signed request replaced, or a piece of markup inserted, anywhere in it
    /// (body, root tag, signature); the span the parser would find, or the old one.
    #[test]
    fn agrees_on_edited_requests(
        at in 0usize..4000,
        byte in prop::sample::select(b"<>/&;:=\"' \r\n\tax0#".to_vec()),
        insert in prop::sample::select(vec![
            "", "<!--c-->", "<![CDATA[x]]>", "&#13;", "&amp;", "<ds:X/>", "\r\n", " a='1'",
            " xmlns='urn:x'", " xmlns:ds='urn:x'", " xml:lang='en'", "<ds:Signature/>",
        ]),
        reparse in any::<bool>(),
        tight in 0usize..4,
    ) {
        let signed = SIGNED.with(|s| s.clone());
        let mut span = last_child(signed.as_bytes()).unwrap();
        let mut doc = signed.into_bytes();
        let i = at % doc.len();
        if insert.is_empty() {
            doc[i] = byte;
        } else {
            doc.splice(i..i, insert.bytes());
            if i < span.start {
                span.start += insert.len();
            }
            if i < span.end {
                span.end += insert.len();
            }
        }
        if reparse {
            if let Some(found) = last_child(&doc) {
                span = found;
            }
        }
        let limits = match tight {
            0 => limits(),
            1 => C14nLimits { max_depth: 3, ..limits() },
            2 => C14nLimits { max_attributes: 3, ..limits() },
            _ => C14nLimits { max_bytes: doc.len() - 1, ..limits() },
        };
        agree(&doc, span, &limits)?;
    }
}
