//! The one reading path against its oracle (quick-xml reading the signature, then the digest
//! and `SignedInfo` canonicalised in two more walks): the same accept or refuse, and where both
//! read, the same fields, digest decision and signed bytes — on a signed request, awkward
//! documents, other limits, every public sample (the negative ones too), hostile XML put into a
//! signed request anywhere, every way out of the profile, and random edits. And the request
//! parser finds the signature exactly where the reading path reads it.

mod xmlsec1;

use proptest::prelude::*;

use super::super::c14n::C14nLimits;
use super::super::oracle;
use super::super::tests::{files_under, limits, outside_the_profile, TestKey, REQUEST, SIGNED};
use super::super::{sign_document, strip_signature, VerifyError};
use super::prepare;
use crate::duis;
use crate::identity::identity_from_pem;

/// Whether the reading path and the oracle agree on `doc`: both refuse (the oracle may refuse
/// only in its canonicalisation walks), or both read the same signature and give the same
/// signed bytes or the same digest mismatch. Returns whether they read it.
fn agree(doc: &[u8], limits: &C14nLimits) -> Result<bool, TestCaseError> {
    let got = prepare(doc, limits).map(|p| {
        let signed = p.signed_bytes().map(<[u8]>::to_vec);
        (p.signature, signed)
    });
    let want = oracle::prepare(doc, limits);
    match (&got, &want) {
        (Ok(_), _) => {
            prop_assert_eq!(&got, &want);
            Ok(true)
        }
        (Err(_), Err(_) | Ok((_, Err(VerifyError::Canonicalisation(_))))) => Ok(false),
        (Err(refused), Ok(read)) => Err(TestCaseError::fail(format!(
            "the reading path refused ({refused}) what the oracle read: {read:?}"
        ))),
    }
}

fn agrees(doc: &[u8]) -> bool {
    agree(doc, &limits()).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(doc)))
}

#[test]
fn a_signed_request_is_read_and_verifies() {
    let key = TestKey::new();
    let signed = sign_document(REQUEST, &key, &limits()).unwrap();
    assert!(agrees(signed.as_bytes()), "read");
    let prepared = prepare(signed.as_bytes(), &limits()).unwrap();
    assert_eq!(prepared.verify(&key.public()), Ok(()));
    assert_eq!(
        prepared.verify(&TestKey::new().public()),
        Err(VerifyError::SignatureValue)
    );
    // A changed header: read, but the digest does not match.
    let tampered = signed.replacen(":1000<", ":1001<", 1);
    assert!(agrees(tampered.as_bytes()));
    let prepared = prepare(tampered.as_bytes(), &limits()).unwrap();
    assert_eq!(prepared.verify(&key.public()), Err(VerifyError::Digest));
    // The signature's own `xmlns:ds` left out (the root declares it): the same signed bytes.
    let ds = " xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">";
    let inherited = signed.replacen(&format!("<ds:Signature{ds}"), "<ds:Signature>", 1);
    assert_ne!(inherited, signed);
    assert!(agrees(inherited.as_bytes()));
    assert_eq!(
        prepare(inherited.as_bytes(), &limits())
            .unwrap()
            .verify(&key.public()),
        Ok(())
    );
}

/// A byte-order mark, CR LF line ends, comments, CDATA and references in the signature, a
/// default namespace on it (as the DCC's signing tool writes), a signature one level down, and
/// limits tighter and looser than the default.
#[test]
fn awkward_documents_and_limits_agree() {
    let signed = SIGNED.with(|s| s.clone());
    let at = signed.find("<ds:Signature").unwrap();
    let sig = &signed[at..signed.find("</sr:Request>").unwrap()];
    let issuer = signed.find("<ds:X509IssuerName>").unwrap() + "<ds:X509IssuerName>".len();
    let read = [
        format!("\u{FEFF}{signed}"),
        signed.replace('\n', "\r\n"),
        signed.replacen("<ds:SignatureValue>", "<ds:SignatureValue><!--c-->", 1),
        signed.replacen("<ds:KeyInfo>", "<!--c--><ds:KeyInfo><![CDATA[ ]]>", 1),
        signed.replacen("<ds:SignatureValue>", "<ds:SignatureValue>&#13;\r\n", 1),
        format!("{}CN=U1,\r\n{}", &signed[..issuer], &signed[issuer..]),
        format!("{}&#10;{}", &signed[..issuer], &signed[issuer..]),
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
    for doc in &read {
        assert!(agrees(doc.as_bytes()), "{doc}");
    }
    // The signature one level down is not the root's child: refused.
    let nested = signed.replacen(sig, &format!("<sr:Wrap>{sig}</sr:Wrap>"), 1);
    assert!(!agrees(nested.as_bytes()));

    let doc = signed.as_bytes();
    for (limits, reads) in [
        (
            C14nLimits {
                max_depth: 4,
                ..limits()
            },
            false,
        ),
        (
            C14nLimits {
                max_attributes: 2,
                ..limits()
            },
            false,
        ),
        (
            C14nLimits {
                max_bytes: doc.len() - 1,
                ..limits()
            },
            false,
        ),
        (
            C14nLimits {
                max_bytes: doc.len(),
                ..limits()
            },
            true,
        ),
        (
            C14nLimits {
                max_depth: 100,
                max_attributes: 100,
                max_bytes: 1 << 24,
            },
            true,
        ),
    ] {
        assert_eq!(agree(doc, &limits).unwrap(), reads, "{limits:?}");
    }
    // Deeper than the default bound, within a looser one.
    let deep = format!("{}{}", "<sr:A>".repeat(70), "</sr:A>".repeat(70));
    let deep = signed.replacen("<sr:Body>", &format!("<sr:Body>{deep}"), 1);
    assert!(!agrees(deep.as_bytes()));
    let looser = C14nLimits {
        max_depth: 100,
        ..limits()
    };
    assert!(agree(deep.as_bytes(), &looser).unwrap());
}

#[test]
fn agrees_on_every_public_sample() {
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let samples = anchors.join("duis-samples");
    let mut read = 0;
    for path in files_under(&samples) {
        let doc = std::fs::read(&path).unwrap();
        read += usize::from(
            agree(&doc, &limits()).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        );
    }
    assert!(read >= 2, "the signed samples are read: {read}");

    // The known answer verifies; its bad-signature twin does not.
    let cert = std::fs::read(
        anchors.join("certs/zaz1-public/dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem"),
    )
    .unwrap();
    let cert = identity_from_pem(&cert).unwrap();
    for (file, want) in [
        ("responses/signing-tool__readfw-response.xml", Ok(())),
        (
            "negative/signing-tool__readfw-response-badsignature.xml",
            Err(VerifyError::SignatureValue),
        ),
    ] {
        let doc = std::fs::read(samples.join(file)).unwrap();
        let prepared = prepare(&doc, &limits()).unwrap();
        assert_eq!(prepared.verify(&cert.public_key), want, "{file}");
    }
}

/// What the request parser refuses as hostile or not well-formed: refused wherever it is put.
fn refused_everywhere() -> Vec<String> {
    let mut cases: Vec<String> = [
        "<!DOCTYPE r>",
        "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
        "&xxe;",
        "&AMP;",
        "<?php echo 1; ?>",
        "<?xml version=\"1.0\"?>",
        "&#0;",
        "&#xFFFE;",
        "a & b",
        "&amp",
        "&#;",
        "&;",
        "\u{1}",
        "\u{B}",
        "\u{FFFE}",
        "]]>",
        "<sr:A></sr:B>",
        "</sr:A>",
        "<sr:A b=\"1\" b=\"2\"/>",
        "<sr:A b=1/>",
        "<sr:A b=\"<\"/>",
        "<1a/>",
        "<sr:A 1b=\"x\"/>",
        "<!-- a -- b -->",
        "<zz:A/>",
        "<sr:A zz:b=\"1\"/>",
        "<sr:A xmlns:xml=\"urn:x\"/>",
        "<sr:A xmlns:r=\"relative\"/>",
        "<ds:Signature/>",
        "<x:Signature xmlns:x=\"http://www.w3.org/2000/09/xmldsig#\"/>",
    ]
    .map(String::from)
    .to_vec();
    cases.push(format!("{}{}", "<a>".repeat(70), "</a>".repeat(70)));
    let many: String = (0..33).map(|i| format!(" a{i}=\"{i}\"")).collect();
    cases.push(format!("<sr:X{many}/>"));
    cases
}

/// Well-formed, but a trap for a reader that is not exact.
pub(super) const TOLERATED: &[&str] = &[
    "<![CDATA[<ds:Signature>]]>",
    "<!--<ds:Signature>-->",
    "\r",
    "\r\n",
    "&#13;",
    "&#10;",
    "&lt;&gt;&amp;&apos;&quot;",
    "<Signature/>",
    "<sr:Signature/>",
    "<Signature xmlns=\"urn:x\"/>",
];

/// Attributes put on start tags.
pub(super) const ATTRIBUTES: &[&str] = &[
    " a='1'",
    " xmlns='urn:x'",
    " xmlns:ds='urn:x'",
    " xmlns:sr='urn:x'",
    " xml:lang='en'",
    " Algorithm='x'",
    " URI='#x'",
    " a='\r\n'",
    " xmlns:r='relative'",
    " xmlns:xml='urn:x'",
    " xmlns:ds=''",
];

/// `signed` with `what` put at `at`.
pub(super) fn put(signed: &str, at: usize, what: &str) -> String {
    format!("{}{what}{}", &signed[..at], &signed[at..])
}

#[test]
fn hostile_xml_anywhere_in_a_signed_request() {
    let signed = SIGNED.with(|s| s.clone());
    let after = |marker: &str| signed.find(marker).unwrap() + marker.len();
    let text_at = [
        0,
        after("<sr:Body>"),
        after("<sr:RequestID>"),
        after("<ds:SignatureValue>"),
        after("<ds:X509IssuerName>"),
        signed.find("<ds:SignatureValue>").unwrap(),
        after("<ds:Transforms>"),
        after("</ds:Signature>"),
        signed.len(),
    ];
    let tag_end = |open: &str| {
        let at = signed.find(open).unwrap();
        at + signed[at..].find('>').unwrap()
    };
    let tag_at = [
        tag_end("<sr:Request"),
        tag_end("<sr:Body"),
        tag_end("<ds:Signature"),
        tag_end("<ds:SignedInfo"),
        tag_end("<ds:X509IssuerName"),
    ];
    let mut read = 0;
    for at in text_at {
        for hostile in refused_everywhere() {
            let doc = put(&signed, at, &hostile);
            assert!(!agrees(doc.as_bytes()), "{hostile:?} at {at}");
        }
        for tolerated in TOLERATED {
            read += usize::from(agrees(put(&signed, at, tolerated).as_bytes()));
        }
    }
    for at in tag_at {
        for attribute in ATTRIBUTES {
            read += usize::from(agrees(put(&signed, at, attribute).as_bytes()));
        }
    }
    assert!(read > 20, "well-formed changes are read: {read}");
    // Not UTF-8, another encoding or version, a byte-order mark that is not UTF-8's.
    let mut bytes = signed.clone().into_bytes();
    bytes.push(0xFF);
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(signed.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    for doc in [
        bytes,
        utf16,
        signed.replace("UTF-8", "ISO-8859-1").into_bytes(),
        signed
            .replace("version=\"1.0\"", "version=\"1.1\"")
            .into_bytes(),
    ] {
        assert!(!agrees(&doc));
    }
}

#[test]
fn every_way_out_of_the_profile_is_refused_by_both() {
    let signed = SIGNED.with(|s| s.clone());
    for (what, doc, _) in outside_the_profile(&signed) {
        assert!(!agrees(doc.as_bytes()), "{what}");
    }
}

/// The gateway's request parser finds the signature at the span the reading path reads it at
/// (the gateway refuses a request on which they differ): on a signed request, and on every
/// public request template signed afresh.
#[test]
fn the_request_parser_finds_the_signature_where_it_is_read() {
    let key = TestKey::new();
    let same_span = |signed: &str| {
        let parsed = duis::parse_request(signed.as_bytes(), &duis::Limits::default()).unwrap();
        let prepared = prepare(signed.as_bytes(), &limits()).unwrap();
        assert_eq!(parsed.signature, Some(prepared.signature.signature.clone()));
        assert_eq!(prepared.verify(&key.public()), Ok(()));
    };
    same_span(&sign_document(REQUEST, &key, &limits()).unwrap());
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let mut signed = 0;
    for path in files_under(&anchors.join("duis-samples")) {
        let doc = std::fs::read(&path).unwrap();
        if duis::parse_request(&doc, &duis::Limits::default()).is_err() {
            continue;
        }
        let text = String::from_utf8(doc).unwrap();
        let unsigned = strip_signature(&text, &limits()).unwrap();
        same_span(&sign_document(&unsigned, &key, &limits()).unwrap());
        signed += 1;
    }
    assert!(signed > 100, "the request templates are signed: {signed}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    /// One byte of a signed request replaced, or a piece of markup inserted, anywhere in it
    /// (body, root tag, signature), read within one of several limits: the reading path and
    /// the oracle agree, and where the request parser also finds a signature it is the same.
    #[test]
    fn agrees_on_edited_requests(
        at in 0usize..4000,
        byte in prop::sample::select(b"<>/&;:=\"' \r\n\tax0#".to_vec()),
        insert in prop::sample::select(vec![
            "", "<!--c-->", "<![CDATA[x]]>", "&#13;", "&amp;", "<ds:X/>", "\r\n", " a='1'",
            " xmlns='urn:x'", " xmlns:ds='urn:x'", " xml:lang='en'", "<ds:Signature/>",
            "<ds:Signature>", "</ds:Signature>", "&xxe;", "<!DOCTYPE r>", "<?p?>",
        ]),
        tight in 0usize..4,
    ) {
        let mut doc = SIGNED.with(|s| s.clone()).into_bytes();
        let i = at % doc.len();
        if insert.is_empty() {
            doc[i] = byte;
        } else {
            doc.splice(i..i, insert.bytes());
        }
        let limits = match tight {
            0 => limits(),
            1 => C14nLimits { max_depth: 3, ..limits() },
            2 => C14nLimits { max_attributes: 3, ..limits() },
            _ => C14nLimits { max_bytes: doc.len() - 1, ..limits() },
        };
        agree(&doc, &limits)?;
        let parsed = duis::parse_request(&doc, &duis::Limits::default());
        if let (Ok(parsed), Ok(prepared)) = (parsed, prepare(&doc, &limits)) {
            if let Some(span) = parsed.signature {
                prop_assert_eq!(span, prepared.signature.signature);
            }
        }
    }
}
