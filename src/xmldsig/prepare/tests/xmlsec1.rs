//! `xmlsec1` (libxml2 and xmlsec) as an independent verifier: the DCC signing tool's signed
//! response, changed in ways a reader that is not exact could trip on, is never accepted by the
//! reading path when `xmlsec1` refuses it; and the changes that leave the signed content as it
//! was are accepted by both. (`xmlsec1` accepts some that the reading path refuses: elements
//! or a malformed name inside the signature's fields, which it does not read when given the
//! key, and namespace declarations XML forbids, which libxml2 only warns about.)

use std::path::Path;
use std::process::Command;

use super::super::prepare;
use super::{put, ATTRIBUTES, TOLERATED};
use crate::identity::identity_from_pem;
use crate::testing::{anchors, have_tool};
use crate::xmldsig::c14n::C14nLimits;

const SAMPLE: &str = "duis-samples/responses/signing-tool__readfw-response.xml";
const CERT: &str = "certs/zaz1-public/dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem";

fn xmlsec1_verifies(cert: &Path, file: &Path) -> bool {
    Command::new("xmlsec1")
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(cert)
        .arg(file)
        .output()
        .expect("xmlsec1 ran a moment ago")
        .status
        .success()
}

#[test]
fn never_accepts_what_xmlsec1_refuses() {
    let (Some(anchors), true) = (anchors(), have_tool("xmlsec1", "--version")) else {
        return;
    };
    let cert = anchors.join(CERT);
    let key = identity_from_pem(&std::fs::read(&cert).unwrap())
        .unwrap()
        .public_key;
    let signed = std::fs::read_to_string(anchors.join(SAMPLE)).unwrap();
    let after = |marker: &str| signed.find(marker).unwrap() + marker.len();
    let tag_end = |open: &str| {
        let at = signed.find(open).unwrap();
        at + signed[at..].find('>').unwrap()
    };
    let mut docs = vec![
        signed.clone(),
        format!("\u{FEFF}{signed}"),
        signed.replace('\n', "\r\n"),
        signed.replacen("<ds:SignatureValue>", "<ds:SignatureValue><!--c-->", 1),
    ];
    for at in [
        after("<sr:Body>"),
        after("<sr:GBCSPayload>"),
        after("<ds:SignedInfo>"),
        after("<ds:SignatureValue>"),
        signed.find("<ds:SignatureValue>").unwrap(),
        after("<ds:X509IssuerName>"),
        after("</ds:Signature>"),
    ] {
        docs.extend(TOLERATED.iter().map(|t| put(&signed, at, t)));
        docs.push(put(&signed, at, "<!--c-->"));
    }
    for at in [
        tag_end("<sr:Response"),
        tag_end("<ds:Signature"),
        tag_end("<ds:SignedInfo"),
        tag_end("<ds:Reference"),
    ] {
        docs.extend(ATTRIBUTES.iter().map(|a| put(&signed, at, a)));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.xml");
    let mut both = 0;
    for doc in &docs {
        let ours =
            prepare(doc.as_bytes(), &C14nLimits::default()).is_ok_and(|p| p.verify(&key).is_ok());
        std::fs::write(&file, doc).unwrap();
        let theirs = xmlsec1_verifies(&cert, &file);
        assert!(theirs || !ours, "accepted what xmlsec1 refuses:\n{doc}");
        both += usize::from(ours && theirs);
    }
    // The original, the byte-order mark, CR LF line ends, every comment, and the whitespace
    // and references in the base64 that real signers write.
    assert!(both >= 30, "both accept only {both} of {}", docs.len());
}
